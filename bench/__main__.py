"""``python -m bench``: every benchmark, one JSON line per figure on stdout (progress on stderr).

Runs ``bench/ingest.py`` (the web process; needs ``wrk``, else it says so and is skipped)
and ``bench/pipeline.py`` (the workers: hand-off latency, throughput, calls per event,
memory). Each can also run alone: ``python -m bench.ingest``, ``python -m bench.pipeline``.
"""

from __future__ import annotations

import shutil
import sys

from bench import ingest, pipeline


def main() -> int:
    if shutil.which("wrk") is None:
        print("bench: ingest skipped: wrk is not installed (apt-get install -y wrk)",
              file=sys.stderr, flush=True)
        code = 0
    else:
        code = ingest.main([])
    return code or pipeline.main([])


if __name__ == "__main__":
    sys.exit(main())
