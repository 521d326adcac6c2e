"""``python -m reactor``: the ``reactor`` command (reactor/entrypoints/cli.py)."""

import sys

from reactor.entrypoints.cli import main

sys.exit(main())
