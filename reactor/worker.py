"""The worker process: an RQ worker that runs jobs in-process on one long-lived event loop.

RQ's default worker forks a child per job; for jobs of a few milliseconds the fork costs more
than the job, and every child would open its own Redis and GitHub connections. The reactor's
jobs are short, I/O-bound and idempotent, so the worker (RQ's ``SimpleWorker``) runs them in
its own process on a persistent event loop, keeping connection pools, the installation-token
cache and the App's identity warm across jobs. RQ still enforces each
job's timeout, retries failures and keeps the failed registry.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import redis
import redis.asyncio
import uvloop
from rq import Queue, SimpleWorker

from reactor.context import Context
from reactor.github import GitHubClient, get_app
from reactor.observability import configure_logging, init_sentry
from reactor.settings import Settings
from reactor.store import keys
from reactor.store.audit import AuditLog

log = logging.getLogger(__name__)
T = TypeVar("T")


class Runtime:
    """One worker process's event loop and clients, opened once and reused by every job."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = uvloop.new_event_loop()
        self.context = self.loop.run_until_complete(open_context(settings))

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        self.loop.run_until_complete(self.context.aclose())
        self.loop.close()


_runtime: Runtime | None = None


def runtime() -> Runtime:
    """This process's runtime, opened on first use (so a plain ``rq worker`` works too)."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime(Settings.from_env())
    return _runtime


async def open_context(settings: Settings) -> Context:
    client = redis.asyncio.Redis.from_url(settings.require_redis_url(), socket_timeout=10)
    github = GitHubClient.from_settings(settings, redis=client)
    app = await get_app(github.app)
    sync_client = redis.Redis.from_url(settings.require_redis_url())
    return Context(
        settings=settings, redis=client, sync_redis=sync_client, audit_log=AuditLog(client),
        github=github, app_login=app.bot_login,
    )


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None) -> bool:
    """Work the events queue until stopped (or, with ``burst``, until it is empty)."""
    global _runtime
    configure_logging(settings.log_level)
    init_sentry(settings, component="worker")
    _runtime = Runtime(settings)
    connection = redis.Redis.from_url(settings.require_redis_url())
    queue = Queue(keys.QUEUE_EVENTS, connection=connection)
    worker = SimpleWorker([queue], connection=connection, name=name)
    log.info("worker started; the App acts as %s", _runtime.context.app_login)
    try:
        return bool(worker.work(burst=burst, with_scheduler=True, logging_level="WARNING"))
    finally:
        _runtime.close()
        _runtime = None

