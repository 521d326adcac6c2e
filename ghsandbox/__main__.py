"""``python -m ghsandbox``: the same as ``reactor sandbox``."""

from __future__ import annotations

import sys

from ghsandbox.cli import main

if __name__ == "__main__":
    sys.exit(main())
