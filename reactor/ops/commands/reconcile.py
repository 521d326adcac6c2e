"""``reactor reconcile [--repo O/R]``: read every open agent issue and repair what the rules
require (:mod:`reactor.shell.reconciler`) — after a Redis wipe, missed deliveries or an
outage. Progress goes to stderr one line per repository; the summary to stdout. Suspended
installations are skipped; a repository (or installation) that fails is said on its own line
and the others go on; the exit status is 1 when any failed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from reactor.core.errors import ConfigError
from reactor.core.terminal import printable
from reactor.process.settings import Settings


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``reconcile`` to ``reactor``'s subcommands."""
    about = "re-read every open agent issue and repair what the rules require"
    parser = subparsers.add_parser("reconcile", help=about, description=about)
    parser.add_argument("--repo", metavar="O/R", help="only this repository")
    parser.set_defaults(run=reconcile)
    return parser


def reconcile(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``reactor reconcile`` (the parser's ``run``)."""
    settings.require_app()
    return asyncio.run(_run(args.repo, settings))


async def _run(only: str | None, settings: Settings) -> int:
    import handlers
    from reactor.shell import reconciler
    from reactor.shell.runtime import open_context

    ctx = await open_context(settings, router=handlers.router, turn_router=handlers.turn_router)
    try:
        summary = await reconciler.run(
            ctx, only=only, progress=lambda line: print(printable(line), file=sys.stderr))
    finally:
        await ctx.aclose()
    if only is not None and summary.repositories == 0 and not summary.problems:
        raise ConfigError(f"the App is not installed on {only} (or it does not exist)")
    print(printable(summary.line()))
    return 1 if summary.problems else 0
