"""``python -m tests.crashing_worker POINT[=N] worker …``: a reactor process that exits as if
killed (status 137) when it reaches the crash point POINT (reactor/shell/crashpoints.py),
e.g. ``after-step=1`` right after a hand-off's second step."""

from __future__ import annotations

import sys

from reactor.entrypoints import cli
from reactor.shell import crashpoints


def main(argv: list[str]) -> int:
    point, _, at = argv[0].partition("=")
    crashpoints.arm(crashpoints.Point(point), int(at) if at else None)
    return cli.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
