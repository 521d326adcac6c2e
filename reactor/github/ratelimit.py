"""GitHub's rate limits: read them from responses, and pause one installation when hit.

Followed: https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
("Exceeding the rate limit") and
https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api
("Handle rate limit errors appropriately"). A limited call answers 403 or 429, and:

- ``retry-after`` present (a secondary limit): wait that many seconds;
- ``x-ratelimit-remaining: 0`` (the primary limit): wait until ``x-ratelimit-reset``;
- otherwise, when the answer is a 429 or says "rate limit": wait at least one minute.

A limit is recorded in Redis under ``keys.rate_limited_until(installation)`` (epoch seconds,
expiring with it) so that every process stops calling for that installation — and only that
one — until then. Callers get :class:`~reactor.core.errors.RateLimited` at once instead of sleeping;
the job layer reschedules at ``retry_at``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

from reactor.core.errors import RateLimited
from reactor.github._shared import Clock, RedisClient, as_text, scope, utc_now
from reactor.store import keys

LIMITED_STATUSES = frozenset({403, 429})
DEFAULT_PAUSE = timedelta(minutes=1)


class LimitKind(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


@dataclass(frozen=True)
class Limit:
    """No call for the installation may be made before ``until``."""

    until: datetime
    kind: LimitKind


@dataclass(frozen=True)
class RateBudget:
    """The primary-limit budget GitHub reported on its last answer."""

    limit: int
    remaining: int
    reset_at: datetime


def budget_from_headers(headers: Mapping[str, str]) -> RateBudget | None:
    """The ``x-ratelimit-*`` headers as a budget, or None when absent or malformed."""
    try:
        return RateBudget(
            limit=int(headers["x-ratelimit-limit"]),
            remaining=int(headers["x-ratelimit-remaining"]),
            reset_at=datetime.fromtimestamp(int(headers["x-ratelimit-reset"]), UTC),
        )
    except (KeyError, ValueError):
        return None


def limit_from_error(
    status: int, headers: Mapping[str, str], message: str, *, now: datetime
) -> Limit | None:
    """The limit a failed answer reports, or None when it is an ordinary error."""
    if status not in LIMITED_STATUSES:
        return None
    retry_after = _retry_after(headers.get("retry-after"), now=now)
    if retry_after is not None:
        return Limit(until=retry_after, kind=LimitKind.SECONDARY)
    if headers.get("x-ratelimit-remaining") == "0":
        budget = budget_from_headers(headers)
        reset = budget.reset_at if budget is not None else now + DEFAULT_PAUSE
        return Limit(until=max(reset, now + timedelta(seconds=1)), kind=LimitKind.PRIMARY)
    if status == 429 or "rate limit" in message.lower():
        return Limit(until=now + DEFAULT_PAUSE, kind=LimitKind.SECONDARY)
    return None


def exhausted(budget: RateBudget | None, *, now: datetime) -> Limit | None:
    """The primary limit a successful answer announces by leaving nothing remaining."""
    if budget is None or budget.remaining > 0 or budget.reset_at <= now:
        return None
    return Limit(until=budget.reset_at, kind=LimitKind.PRIMARY)


def _retry_after(value: str | None, *, now: datetime) -> datetime | None:
    """``retry-after`` as a moment: GitHub sends seconds; HTTP also allows a date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return now + timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return now + DEFAULT_PAUSE
    return when.astimezone(UTC) if when.tzinfo is not None else when.replace(tzinfo=UTC)


OPEN_FOR_S = 1.0  # how long a process trusts that an installation was not limited


class RateGate:
    """The per-installation "limited until" marks, shared by every process through Redis.

    A process that found an installation open trusts that for :data:`OPEN_FOR_S` (a busy
    turn makes several calls a second); a limit another process met is seen within that."""

    def __init__(self, redis: RedisClient, *, clock: Clock = utc_now) -> None:
        self._redis = redis
        self._clock = clock
        self._open: dict[int | None, float] = {}  # installation -> time.monotonic() checked

    async def check(self, installation_id: int | None, *, method: str, url: str) -> None:
        """Raise RateLimited when the installation is still limited; otherwise return.

        The error's status is 429: the refusal is the reactor's own, made without a call.
        """
        now = time.monotonic()
        if now - self._open.get(installation_id, -OPEN_FOR_S) < OPEN_FOR_S:
            return
        raw = await self._redis.get(keys.rate_limited_until(scope(installation_id)))
        if raw is not None:
            until = datetime.fromtimestamp(float(as_text(raw)), UTC)
            if until > self._clock():
                raise rate_limited(installation_id, until, status=429, method=method, url=url)
        self._open[installation_id] = now

    async def close(self, installation_id: int | None, limit: Limit) -> None:
        """Record that no call may be made for the installation before ``limit.until``."""
        self._open.pop(installation_id, None)
        seconds = (limit.until - self._clock()).total_seconds()
        if seconds <= 0:
            return
        await self._redis.set(
            keys.rate_limited_until(scope(installation_id)),
            repr(limit.until.timestamp()),
            ex=math.ceil(seconds) + 1,
        )


def rate_limited(
    installation_id: int | None, until: datetime, *, status: int, method: str, url: str
) -> RateLimited:
    """The error for a call refused by a rate limit (one line, no credentials)."""
    who = "the App" if installation_id is None else f"installation {installation_id}"
    return RateLimited(
        f"{who} is rate limited by GitHub until {until:%Y-%m-%d %H:%M:%S} UTC",
        retry_at=until,
        installation_id=installation_id,
        status=status,
        method=method,
        url=url,
    )
