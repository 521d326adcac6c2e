"""What each GitHub call reports to whoever counts them (Prometheus, logs, tests).

The client calls an optional ``on_response(CallRecord)`` once per HTTP attempt, retries
included, with the route as a template (``/repos/{owner}/{repo}/issues/{id}``) so metric
labels stay few whatever the repositories and issue numbers. :class:`CallCounter` is such a
hook: it counts the attempts in Redis, where ``GET /metrics`` reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from redis.exceptions import RedisError

from reactor.github._shared import RedisClient, scope
from reactor.store import keys

log = logging.getLogger(__name__)

# The segment after one of these names a thing, not a route.
_NAMED_BY_PREVIOUS = {
    "labels": "{name}",
    "users": "{username}",
    "orgs": "{org}",
    "deliveries": "{delivery_id}",
    "installations": "{installation_id}",
}


@dataclass(frozen=True)
class CallRecord:
    """One HTTP attempt: ``status`` 0 means no answer (timeout or transport error)."""

    method: str
    route: str
    status: int
    installation_id: int | None
    rate_remaining: int | None
    elapsed_s: float


OnResponse = Callable[[CallRecord], None]


def route_of(url: str, *, base_url: str) -> str:
    """The route template of an API URL: ``/repos/{owner}/{repo}/issues/{id}/labels``."""
    base_path = urlsplit(base_url).path.rstrip("/")
    path = urlsplit(url).path.removeprefix(base_path)
    parts = path.strip("/").split("/")
    route: list[str] = []
    for index, part in enumerate(parts):
        previous = parts[index - 1] if index else ""
        if parts[0] == "repos" and index in (1, 2):
            route.append("{owner}" if index == 1 else "{repo}")
        elif previous == "contents":
            route.append("{path}")
            break
        elif part.isdigit():
            route.append(_NAMED_BY_PREVIOUS.get(previous, "{id}"))
        elif previous in _NAMED_BY_PREVIOUS:
            route.append(_NAMED_BY_PREVIOUS[previous])
        else:
            route.append(part)
    return "/" + "/".join(route)


FLUSH_AFTER_S = 1.0  # a process writes its call counts at most this often
RENEW_EVERY_S = 3600.0  # and renews their time to live at most this often


def call_field(record: CallRecord) -> str:
    """The counter field of one attempt: method, route template and status (0: no answer)."""
    return f"{record.method} {record.route} {record.status}"


class CallCounter:
    """An ``on_response`` hook that counts every attempt, and keeps the latest
    ``x-ratelimit-remaining`` per installation, in Redis: every process's calls add up.

    ``on_response`` is synchronous and must not raise, so the counts gather in memory and a
    task on the running loop writes them in one pipeline :data:`FLUSH_AFTER_S` later (a busy
    process writes its calls once a second, not once a call; :meth:`drain` writes what is
    left when the process closes). Counts a write could not take stay here for the next one:
    a Redis restart loses none.
    """

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._calls: Counter[str] = Counter()
        self._remaining: dict[str, int] = {}
        self._writing: asyncio.Task[None] | None = None  # a write due that has not begun
        self._in_flight: set[asyncio.Task[None]] = set()
        self._renewed = -RENEW_EVERY_S  # time.monotonic() the keys' time to live was renewed
        self._now = asyncio.Event()  # set by drain: a write waiting for its second goes now

    def __call__(self, record: CallRecord) -> None:
        self._calls[call_field(record)] += 1
        if record.rate_remaining is not None:
            self._remaining[str(scope(record.installation_id))] = record.rate_remaining
        if self._writing is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop: the next call's task writes these too
                return
            self._writing = loop.create_task(self._flush_later())
            self._in_flight.add(self._writing)
            self._writing.add_done_callback(self._in_flight.discard)

    async def _flush_later(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._now.wait(), FLUSH_AFTER_S)
        await self.flush()

    async def drain(self) -> None:
        """Write what is gathered now, and finish the writes begun: before the Redis client
        closes."""
        self._now.set()
        await asyncio.gather(*self._in_flight)
        await self.flush()
        self._now.clear()

    async def flush(self) -> None:
        """Write the counts gathered so far (a no-op when there are none)."""
        calls, remaining = self._calls, self._remaining
        self._calls, self._remaining, self._writing = Counter(), {}, None
        if not calls and not remaining:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for field, count in calls.items():
                    pipe.hincrby(keys.GITHUB_CALLS, field, count)
                if remaining:
                    pipe.hset(keys.RATE_REMAINING, mapping=remaining)  # type: ignore[arg-type]
                renew = time.monotonic() - self._renewed >= RENEW_EVERY_S
                if renew:
                    for key in (keys.GITHUB_CALLS, keys.RATE_REMAINING):
                        pipe.expire(key, keys.METRICS_TTL_S)
                await pipe.execute()
                if renew:
                    self._renewed = time.monotonic()
        except (RedisError, OSError) as exc:
            log.warning("GitHub call counts not written, kept for the next write: %s", exc)
            self._calls.update(calls)
            self._remaining = {**remaining, **self._remaining}
