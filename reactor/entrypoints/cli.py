"""The ``reactor`` command.

Every subcommand reads :class:`~reactor.process.settings.Settings` once; a user mistake (a bad
setting, an unreachable Redis, a wrong argument) is one line on stderr and a non-zero exit,
never a traceback.

Every subcommand runs with its own SIGINT and SIGTERM handling
(:func:`reactor.ops.processes.stop_on_signals`), so Ctrl-C stops ``reactor dev``, ``audit
--follow`` and the rest even when they were started with SIGINT ignored (a background job,
nohup, a CI runner); the exit status is then 128 + the signal's number (130, 143), as a shell
reports it.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import orjson
import redis

from reactor.core.errors import ReactorError
from reactor.core.terminal import json_document, printable
from reactor.ops.commands import agent_guide, deliveries, doctor, graph, reconcile, replay, status
from reactor.ops.processes import stop_on_signals
from reactor.process.settings import Settings

if TYPE_CHECKING:  # imported when used: `reactor worker` and `serve` start without them
    from reactor.store.audit import AuditRecord, Query

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 128 + signal.SIGINT  # as shells report a Ctrl-C (130); SIGTERM: 143
DEFAULT_AUDIT_LIMIT = 50


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from reactor.entrypoints.web import create_app
    from reactor.process.observability import configure_logging, init_sentry

    configure_logging(settings.log_level)
    init_sentry(settings, component="web")
    host, port = args.host or settings.host, args.port or settings.port
    if settings.has_app or settings.webhook_secrets:
        app = create_app(settings)
    else:
        from reactor.ops.setup import create_setup_app

        app = create_setup_app(settings)
        print(f"reactor: no GitHub App is configured: open http://{host}:{port}/setup to "
              "register one from app-manifest.yml", file=sys.stderr, flush=True)
    uvicorn.run(
        app, host=host, port=port,
        log_level="warning", access_log=False, lifespan="on",
        loop="uvloop", http="httptools", timeout_graceful_shutdown=10,
    )
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from reactor.entrypoints.worker import run_worker

    run_worker(settings, burst=args.burst, name=args.name)
    return 0


def _dev(args: argparse.Namespace, settings: Settings) -> int:
    from reactor.ops.dev import run_dev

    return run_dev(settings, port=args.port or settings.port, workers=args.workers,
                   demo=not args.no_demo)


def _sandbox(argv: list[str]) -> int:
    """The sandbox parses its own flags (``--help`` included) and needs no reactor settings."""
    from ghsandbox.cli import main as sandbox_main

    return sandbox_main(argv)


class UsageError(ReactorError):
    """A command-line argument that does not parse (exit status 2, like argparse's own)."""


_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, *, now: datetime) -> datetime:
    """``--since``: an ISO 8601 time (UTC unless it says otherwise) or an age like ``10m``."""
    duration = _DURATION.fullmatch(text.strip())
    try:
        if duration:
            return now - timedelta(**{_UNITS[duration[2]]: int(duration[1])})
        moment = datetime.fromisoformat(text.strip())
    except (ValueError, OverflowError):
        raise UsageError(f"--since {text!r} is neither an ISO time (2025-01-31T09:00Z) "
                         "nor an age (30s, 10m, 2h, 1d, 1w)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _audit_query(args: argparse.Namespace, *, now: datetime) -> Query:
    from reactor.store.audit import Query

    return Query(
        repo=args.repo, issue=args.issue, comp=args.comp, delivery=args.delivery,
        rule=args.rule, since=None if args.since is None else parse_since(args.since, now=now),
    )


def _audit_limit(args: argparse.Namespace) -> int | None:
    """``--limit``, else 50 records, else — looking up a delivery — all of its records."""
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, not {args.limit}")
    if args.limit is None:
        return None if args.delivery else DEFAULT_AUDIT_LIMIT
    return int(args.limit)


def _audit_line(record: AuditRecord, *, as_json: bool) -> str:
    """One record as a line for the terminal, user text escaped (or as one JSON object)."""
    if as_json:
        return json_document(orjson.dumps(record).decode())
    where = f"{record.repo}#{record.issue}" if record.issue else record.repo
    what = f"{record.event}.{record.action}" if record.action else record.event
    rule = f" [{record.rule}]" if record.rule else ""
    label = f" {record.label}" if record.label else ""
    return printable(f"{record.at}  {record.outcome:<9} {what:<22} {where:<28} "
                     f"{record.actor}{label}{rule} {record.detail}".rstrip())


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    """Print the selection oldest first; with ``--follow``, then every new match until Ctrl-C."""
    from reactor.store import audit, connect

    query = _audit_query(args, now=datetime.now(UTC))
    limit = _audit_limit(args)
    client = connect.sync_client(settings, socket_connect_timeout=2, socket_timeout=30)
    try:
        upto = audit.newest_id(client)
        for record in reversed(list(audit.select(client, query, limit=limit, upto=upto))):
            sys.stdout.write(_audit_line(record, as_json=args.json) + "\n")
        sys.stdout.flush()
        if args.follow:  # until Ctrl-C or SIGTERM, which main() turns into the exit status
            for record in audit.follow(client, query, after=upto):
                print(_audit_line(record, as_json=args.json), flush=True)
    finally:
        client.close()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reactor",
        description="Issue Safety Reactor: a GitHub App that keeps label-driven agents safe.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, run: Callable[..., int], help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(run=run)
        return sub

    dev = command("dev", _dev, "run Redis, web and workers on this machine (sandbox GitHub "
                               "when no App is configured)")
    dev.add_argument("--port", type=int, help="web port (default: PORT or 3000)")
    dev.add_argument("--workers", type=int, default=2, help="worker processes (default: 2)")
    dev.add_argument("--no-demo", action="store_true",
                     help="no demo agents: the sandbox stays quiet for your own agents")

    serve = command("serve", _serve, "run the web process (webhook ingress)")
    serve.add_argument("--host", help="address to bind (default: HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default: PORT or 3000)")

    worker = command("worker", _worker, "run one RQ worker process")
    worker.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    worker.add_argument("--name", help="worker name (default: generated)")

    command("sandbox", _sandbox, "run the sandbox GitHub alone (see `reactor sandbox --help`)")

    audit = command("audit", _audit, "show the audit log, oldest of the selection first")
    audit.add_argument("--repo", metavar="O/R", help="only this repository")
    audit.add_argument("--comp", metavar="C", help="only this competition")
    audit.add_argument("--issue", type=int, metavar="N", help="only this issue")
    audit.add_argument("--delivery", metavar="GUID",
                       help="only the records of this delivery (X-GitHub-Delivery)")
    audit.add_argument("--rule", metavar="R", help="only this rule (R1, R2, …, config)")
    audit.add_argument("--since", metavar="T",
                       help="only records since T: an ISO time (UTC unless given) or an age "
                            "such as 30s, 10m, 2h, 1d")
    audit.add_argument("--follow", action="store_true",
                       help="after the selection, print new matching records until Ctrl-C")
    audit.add_argument("--limit", type=int, metavar="N",
                       help="newest N records (default 50; every record with --delivery)")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    reconcile.register(commands)
    status.register(commands)
    graph.register(commands)
    doctor.register(commands)
    replay.register(commands)
    deliveries.register(commands)
    agent_guide.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with stop_on_signals():
            return _run(argv)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except ReactorError as exc:
        return _fail(str(exc))
    except redis.ConnectionError as exc:
        return _fail(f"cannot reach Redis: {exc}")
    except redis.TimeoutError:
        return _fail("Redis did not answer in time")
    except redis.RedisError as exc:
        return _fail(f"Redis refused: {exc}")
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (reactor.ops.processes.Interrupted)
        return 128 + int(getattr(exc, "signum", signal.SIGINT))
    except BrokenPipeError:
        # The reader went away (``reactor audit | head``): stop quietly, and keep Python's
        # final flush of stdout from failing again on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR


def _run(argv: list[str]) -> int:
    if argv[:1] == ["sandbox"]:
        return _sandbox(argv[1:])
    args = _parser().parse_args(argv)
    settings = Settings.from_env()
    return int(args.run(args, settings))


def _fail(message: str, code: int = EXIT_ERROR) -> int:
    """Report a user mistake or an unreachable service as one escaped line on stderr."""
    print(f"reactor: {printable(message)}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
