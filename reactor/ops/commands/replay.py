"""``reactor replay``: run a webhook delivery through the handlers again, for debugging.

``reactor replay GUID`` takes a delivery the reactor stored (kept 7 days);
``reactor replay --file F --event E`` a payload saved from GitHub's "Recent deliveries" page,
once GitHub confirms the installation and repository ids it names (nothing signs a file).
``--dry-run`` prints the decision the rules take — each action with its rule, the actor and
the state it relied on — and writes nothing, to GitHub or to Redis: its clients only read
(:mod:`reactor.shell.replay`, :mod:`reactor.store.readonly`); ``--json`` prints it as one
JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from reactor.core.errors import ConfigError
from reactor.core.terminal import json_document, printable
from reactor.process.settings import Settings

if TYPE_CHECKING:  # the clients are imported when the command runs, not with `reactor`
    from reactor.core.events import Event
    from reactor.shell.context import Context
    from reactor.shell.replay import Report


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``replay`` to ``reactor``'s subcommands."""
    about = "run a stored (or saved) webhook delivery through the handlers again"
    parser = subparsers.add_parser("replay", help=about, description=about)
    parser.add_argument("guid", nargs="?", metavar="GUID", help="the X-GitHub-Delivery")
    parser.add_argument("--file", type=Path, metavar="F",
                        help="a payload saved from GitHub's Recent deliveries page (replayed "
                             "once GitHub confirms the ids it names)")
    parser.add_argument("--event", metavar="E", help="its X-GitHub-Event (with --file)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the decision; write nothing to GitHub or to Redis")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.set_defaults(run=replay)
    return parser


def replay(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``reactor replay`` (the parser's ``run``)."""
    if (args.guid is None) == (args.file is None):
        raise ConfigError("give either a GUID or --file F --event E")
    if args.file is not None and not args.event:
        raise ConfigError("--file needs --event (the X-GitHub-Event the payload came with)")
    settings.require_app()
    return asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from reactor.shell import replay as replaying

    body = _read(args.file) if args.file is not None else b""
    saved = replaying.saved_event(args.event, body) if args.file is not None else None
    if saved is not None or args.dry_run:
        reading = await _open_reading(settings)
        try:
            if saved is not None:  # nothing signs a file: GitHub must confirm its ids first
                await replaying.verify(reading, saved)
            if args.dry_run:
                event = saved or await replaying.load_event(reading, args.guid)
                report = await replaying.dry_run(reading, event)
                print(json_document(orjson.dumps(report.as_json()).decode()) if args.json
                      else _text(report))
                return 0
        finally:
            await reading.aclose()
    await _live(args, settings, saved, body)
    return 0


async def _live(args: argparse.Namespace, settings: Settings, saved: Event | None,
                body: bytes) -> None:
    """Replay for real: the stored delivery ``args.guid``, or the verified file ``saved``."""
    import handlers
    from reactor.shell import replay as replaying
    from reactor.shell.runtime import open_context

    ctx = await open_context(settings, router=handlers.router, turn_router=handlers.turn_router)
    try:
        guid = await replaying.store(ctx, saved, body) if saved is not None else args.guid
        outcome = await replaying.live(ctx, await replaying.load_event(ctx, guid))
        print(json_document(orjson.dumps({"delivery": guid, "outcome": outcome}).decode())
              if args.json else printable(f"replayed {guid}: {outcome}"))
    finally:
        await ctx.aclose()


async def _open_reading(settings: Settings) -> Context:
    """The clients of a dry run: they read Redis and GitHub and write to neither."""
    import handlers
    from reactor.github import GitHubClient
    from reactor.shell.context import Context
    from reactor.shell.runtime import identify_app
    from reactor.store import connect
    from reactor.store.counters import AuditLog
    from reactor.store.readonly import ReadOnlyRedis, ReadOnlySyncRedis

    client = connect.async_client(settings, client_class=ReadOnlyRedis, socket_timeout=10,
                                  retry=connect.async_redis_retry())
    github = GitHubClient.from_settings(settings, redis=client)
    try:
        app = await identify_app(github)
    except BaseException:
        await github.aclose()
        await client.aclose()
        raise
    sync_client = connect.sync_client(settings, client_class=ReadOnlySyncRedis)
    return Context(settings=settings, redis=client, sync_redis=sync_client,
                   audit_log=AuditLog(client), github=github, app_login=app.bot_login,
                   router=handlers.router, turn_router=handlers.turn_router)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def _text(report: Report) -> str:
    """The dry run, readably: what happened, what was read, what the rules decide."""
    data = report.as_json()
    what = f"{data['event']}.{data['action']}" if data["action"] else data["event"]
    lines = [f"delivery {data['delivery']}: {what} by @{data['actor']}"
             + (f" on #{data['issue']}" if data["issue"] else "")]
    if report.change is None:
        lines.append("no rules decision: the handler only records or maintains labels")
    else:
        lines.append(f"scope {data['scope']}; read {', '.join(data['read'] or []) or '-'}; "
                     f"accepted before: {data['accepted'] or 'nothing remembered'}")
        lines += [f"  {a['rule']} {a['kind']} #{a['issue']}: {a['reason']}"
                  for a in data["actions"]]
        lines += [f"  {n['rule']} note #{n['issue']}: {n['reason']}" for n in data["notes"]]
        if not data["actions"] and not data["notes"]:
            lines.append("  nothing to do")
        if data["settle_until"]:
            lines.append(f"  waits for the settle window until {data['settle_until']}")
    lines.append("(dry run: nothing written)")
    return "\n".join(printable(line) for line in lines)
