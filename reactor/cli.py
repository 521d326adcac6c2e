"""The ``reactor`` command.

Every subcommand reads :class:`~reactor.settings.Settings` once; a user mistake (a bad
setting, an unreachable Redis, a wrong argument) is one line on stderr and a non-zero exit,
never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import orjson
import redis

from reactor.errors import ReactorError
from reactor.settings import Settings

EXIT_ERROR = 1
EXIT_USAGE = 2


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from reactor.observability import configure_logging, init_sentry
    from reactor.web import create_app

    configure_logging(settings.log_level)
    init_sentry(settings, component="web")
    app = create_app(settings)
    uvicorn.run(
        app, host=args.host or settings.host, port=args.port or settings.port,
        log_level="warning", access_log=False, lifespan="on",
        loop="uvloop", http="httptools", timeout_graceful_shutdown=10,
    )
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from reactor.worker import run_worker

    run_worker(settings, burst=args.burst, name=args.name)
    return 0


def _dev(args: argparse.Namespace, settings: Settings) -> int:
    from reactor.dev import run_dev

    return run_dev(settings, port=args.port or settings.port, workers=args.workers)


def _sandbox(argv: list[str]) -> int:
    """The sandbox parses its own flags (``--help`` included) and needs no reactor settings."""
    from reactor.sandbox.cli import main as sandbox_main

    return sandbox_main(argv)


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    from reactor.store import audit

    client = redis.Redis.from_url(settings.require_redis_url(), socket_connect_timeout=2)
    records = list(audit.read(
        client, repo=args.repo, issue=args.issue, comp=args.comp, limit=args.limit
    ))
    for record in reversed(records):
        if args.json:
            print(orjson.dumps(record).decode())
        else:
            where = f"{record.repo}#{record.issue}" if record.issue else record.repo
            what = f"{record.event}.{record.action}" if record.action else record.event
            rule = f" [{record.rule}]" if record.rule else ""
            label = f" {record.label}" if record.label else ""
            print(f"{record.at}  {record.outcome:<9} {what:<22} {where:<28} "
                  f"{record.actor}{label}{rule} {record.detail}".rstrip())
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
    audit.add_argument("--limit", type=int, default=50, help="newest N records (default 50)")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sandbox"]:
        return _sandbox(argv[1:])
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return int(args.run(args, settings))
    except ReactorError as exc:
        print(f"reactor: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except redis.ConnectionError as exc:
        print(f"reactor: cannot reach Redis: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
