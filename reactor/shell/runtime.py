"""One process's clients and event loop, opened once and reused by every job.

A worker opens its :class:`Runtime` at start-up (``reactor/entrypoints/jobs.py`` holds the
process's one); ``reactor replay`` and ``reactor status`` open a :class:`Context` the same
way. Opening waits out whatever passes by itself (SPEC §6): ``GET /app`` is tried until it
answers — a rate limit is waited out until its end, a network error, a 5xx or an unreachable
Redis with backoff. Only what waiting cannot fix (a wrong App id or key: 401) stops it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import redis
import uvloop
from gidgethub.routing import Router
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_random_exponential

from reactor.core.errors import GitHubError, RateLimited, is_transient
from reactor.github import AppInfo, GitHubClient, get_app
from reactor.github.metrics import CallCounter
from reactor.process.settings import Settings
from reactor.shell.context import Context
from reactor.store import connect
from reactor.store.counters import AuditLog

log = logging.getLogger(__name__)
T = TypeVar("T")

REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)
START_BACKOFF = wait_random_exponential(multiplier=1, max=30)


class Runtime:
    """One worker process's event loop and clients, opened once and reused by every job."""

    def __init__(self, settings: Settings, *, router: Router, turn_router: Router) -> None:
        self.settings = settings
        self.loop = uvloop.new_event_loop()
        self.context = self.loop.run_until_complete(
            open_context(settings, router=router, turn_router=turn_router))

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        self.loop.run_until_complete(self.context.aclose())
        self.loop.close()


async def open_context(settings: Settings, *, router: Router, turn_router: Router) -> Context:
    """The clients of one process, with the routers its deliveries go through."""
    client = connect.async_client(settings, socket_timeout=10,
                                  retry=connect.async_redis_retry())
    calls = CallCounter(client)
    github = GitHubClient.from_settings(settings, redis=client, on_response=calls)
    app = await identify_app(github)
    sync_client = connect.sync_client(settings, retry=connect.redis_retry())
    return Context(
        settings=settings, redis=client, sync_redis=sync_client, audit_log=AuditLog(client),
        github=github, app_login=app.bot_login, router=router, turn_router=turn_router,
        calls=calls,
    )


async def identify_app(github: GitHubClient) -> AppInfo:
    """The App (``GET /app``), waiting out whatever passes by itself (see the module doc)."""
    retrying = AsyncRetrying(
        retry=retry_if_exception(_passes), wait=_until_it_may_pass,
        before_sleep=_say_why_waiting, reraise=True,
    )
    app: AppInfo = await retrying(get_app, github.app)
    return app


def _passes(exc: BaseException) -> bool:
    """Whether ``exc`` is a condition that ends by itself: a rate limit, GitHub or Redis away."""
    return isinstance(exc, REDIS_DOWN) or (isinstance(exc, GitHubError) and is_transient(exc))


def _until_it_may_pass(state: RetryCallState) -> float:
    """A rate limit's end (and a second, GitHub's clock is not ours), else backoff."""
    failure = state.outcome.exception() if state.outcome is not None else None
    if isinstance(failure, RateLimited):
        left = failure.retry_at.timestamp() - time.time()
        return max(0.0, left) + 1.0 + random.random()  # noqa: S311 - jitter, not a secret
    return float(START_BACKOFF(state))


def _say_why_waiting(state: RetryCallState) -> None:
    failure = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning("worker cannot start yet (%s); trying again in %.0f s", failure, wait)
