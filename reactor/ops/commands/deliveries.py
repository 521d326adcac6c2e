"""``reactor deliveries``: GitHub's own log of the webhooks it sent the App (SPEC §4).

- ``list [--limit N] [--json]``: the newest attempts, newest first;
- ``list --failed``: each GUID that no attempt delivered, with what the reactor knows of it
  (``redeliver``: the next catch-up run asks for it; ``accepted``: the reactor has it after
  all; ``waiting``: a redelivery was asked for a moment ago);
- ``redeliver GUID``: ask GitHub to send that delivery again (same GUID);
- ``redeliver --failed``: what the catch-up job does (:mod:`reactor.shell.catchup`), over the whole
  log, now.

The App's JWT reads the log (``GET /app/hook/deliveries``, 100 attempts a request); in a
terminal, a long read shows its progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import IO, TYPE_CHECKING, Any

import orjson

from reactor.core.terminal import json_document, printable
from reactor.process.settings import Settings

if TYPE_CHECKING:  # the GitHub client is imported when the command runs, not with `reactor`
    import redis.asyncio
    from gidgethub.abc import GitHubAPI

    from reactor.github import HookDelivery

DEFAULT_LIMIT = 50
_GUID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}")  # as the webhook route accepts them


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``deliveries`` and its two actions to ``reactor``'s subcommands."""
    about = "GitHub's log of the App's webhook deliveries: list them, redeliver failed ones"
    parser = subparsers.add_parser("deliveries", help=about, description=about)
    parser.set_defaults(run=deliveries)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="show delivery attempts, newest first",
                                 description="show delivery attempts, newest first")
    listing.add_argument("--failed", action="store_true",
                         help="only GUIDs that no attempt delivered (reads the whole log)")
    listing.add_argument("--limit", type=_positive, metavar="N",
                         help=f"newest N attempts (default {DEFAULT_LIMIT}; all with --failed)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")

    again = actions.add_parser("redeliver", help="ask GitHub to send deliveries again",
                               description="ask GitHub to send deliveries again (same GUID)")
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument("guid", nargs="?", type=_guid, metavar="GUID",
                       help="the X-GitHub-Delivery of the delivery to send again")
    which.add_argument("--failed", action="store_true",
                       help="every GUID that no attempt delivered, as the catch-up job does")
    again.add_argument("--json", action="store_true", help="the outcome as one JSON object")
    return parser


def deliveries(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``reactor deliveries list|redeliver`` (the parser's ``run``)."""
    settings.require_app()  # "no App configured" before anything else
    run = _list if args.action == "list" else _redeliver
    return asyncio.run(run(args, settings))


async def _list(args: argparse.Namespace, settings: Settings) -> int:
    from reactor.shell import catchup

    async with _clients(settings) as (gh, client), _Progress(sys.stderr) as progress:
        if args.failed:
            rows = await catchup.list_failed(gh, client, progress=progress)
            rows = rows[-args.limit:] if args.limit else rows
        else:
            rows = [(d, "") for d in await catchup.newest(gh, limit=args.limit or DEFAULT_LIMIT)]
    for delivery, state in rows:
        print(_line(delivery, state, as_json=args.json))
    return 0


async def _redeliver(args: argparse.Namespace, settings: Settings) -> int:
    from reactor.shell import catchup

    async with _clients(settings) as (gh, client), _Progress(sys.stderr) as progress:
        if not args.failed:
            sent = await catchup.redeliver_guid(gh, client, args.guid, progress=progress)
            print(_line(sent, "redelivered", as_json=args.json))
            return 0
        attempts = await catchup.read_log(gh, since=None, progress=progress)
        todo = await catchup.plan(client, attempts)
        done, refused = await catchup.redeliver_each(gh, client, todo.redeliver,
                                                     progress=progress)
    report = catchup.Report(read=len(attempts), redelivered=done, accepted=len(todo.accepted),
                            waiting=len(todo.waiting), refused=refused)
    if args.json:
        print(json_document(orjson.dumps(report).decode()))
    else:
        print(f"redelivered {len(done)}; already accepted by the reactor {report.accepted}; "
              f"redelivered a moment ago, left to the catch-up job {report.waiting}; "
              f"refused by GitHub {len(refused)}")
    return 1 if refused else 0


def _line(delivery: HookDelivery, state: str, *, as_json: bool) -> str:
    """One attempt as a terminal line (user text escaped), or as one JSON object."""
    if as_json:
        document: dict[str, Any] = {**asdict(delivery), "succeeded": delivery.succeeded}
        if state:
            document["state"] = state
        return json_document(orjson.dumps(document).decode())
    when = f"{delivery.delivered_at:%Y-%m-%dT%H:%M:%SZ}"
    what = f"{delivery.event}.{delivery.action}" if delivery.action else delivery.event
    again = " (redelivery)" if delivery.redelivery else ""
    return printable(f"{when}  {delivery.status_code:>3}  {what:<30} {delivery.guid}"
                     f"{again}  {state}".rstrip())


@asynccontextmanager
async def _clients(settings: Settings) -> AsyncIterator[tuple[GitHubAPI, redis.asyncio.Redis]]:
    """The App's API object and the Redis client it keeps its state in, closed after."""
    from reactor.github import GitHubClient
    from reactor.store import connect

    client = connect.async_client(settings, socket_connect_timeout=2, socket_timeout=30)
    try:
        async with GitHubClient.from_settings(settings, redis=client) as github:
            yield github.app, client
    finally:
        await client.aclose()


class _Progress:
    """A status line rewritten in place on a terminal (nothing when not a terminal)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._shown = False

    def __call__(self, line: str) -> None:
        if self._stream.isatty():
            self._stream.write(f"\r{line}\x1b[K")
            self._stream.flush()
            self._shown = True

    async def __aenter__(self) -> _Progress:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()


def _guid(text: str) -> str:
    if not _GUID.fullmatch(text):
        raise argparse.ArgumentTypeError(f"not a delivery GUID: {printable(text)!r}")
    return text


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return int(text)
