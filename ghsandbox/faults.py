"""Faults a test switches on through ``POST /_sandbox/faults``, and the primary rate limit.

The body's shape is fixed by the spec (section 5)::

    {"routes": {"<METHOD> <path regex>": {"status": 502, "rate": 0.05}},
     "latency_ms": 0,
     "rate_limit": {"remaining": 0, "reset_in": 30},
     "secondary_limit": {"retry_after": 5, "for_s": 10},
     "webhooks": {"duplicate": 0.1, "reorder": 0.1, "drop": 0.0, "delay_ms": 0,
                  "late_log": false}}

``{}`` clears every fault. ``secondary_limit`` also takes ``"status": 429`` (GitHub answers
secondary limits with 403 or 429). A route fault answers its status instead of serving the
request, so nothing changes; with ``"after": true`` the request is served first (state
changed, webhooks sent, rate limit spent) and its answer is then replaced by the status, as
when GitHub writes and its front end still answers 502. ``"times": N`` makes a route fault
strike at most N times. ``late_log``: the attempts made while it is on are missing from the
App's delivery log (``GET /app/hook/deliveries`` and each one's own route) until the fault
is cleared — GitHub's log shows an attempt a little after it was made.

Primary limits are counted per installation, user or App as on GitHub (5,000 an hour; 60
for calls without credentials); a ``rate_limit`` fault overrides what is left for everyone
until ``reset_in`` seconds have passed.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Any, TypeVar

PRIMARY_LIMIT = 5000
ANONYMOUS_LIMIT = 60  # calls without credentials, per hour
_Num = TypeVar("_Num", int, float)
WINDOW_S = 3600


class FaultSpecError(ValueError):
    """The faults body does not have the documented shape; the message says where."""


@dataclass(frozen=True)
class RouteFault:
    """Requests whose ``"<METHOD> <path>"`` matches ``pattern`` answer ``status`` (at ``rate``);
    ``after``: only once the request has been served; ``times``: at most that many times."""

    pattern: re.Pattern[str]
    status: int
    rate: float
    after: bool = False
    times: int | None = None
    struck: list[int] = field(default_factory=lambda: [0], compare=False)

    def strikes(self, target: str) -> bool:
        if not self.pattern.search(target) or (
                self.times is not None and self.struck[0] >= self.times):
            return False
        if random.random() >= self.rate:  # noqa: S311 - a fault's odds, not secrecy
            return False
        self.struck[0] += 1
        return True


@dataclass(frozen=True)
class WebhookFaults:
    duplicate: float = 0.0
    reorder: float = 0.0
    drop: float = 0.0
    delay_ms: int = 0
    late_log: bool = False  # attempts made meanwhile are left out of the delivery log


@dataclass(frozen=True)
class Faults:
    """The parsed faults body; times are absolute (epoch seconds) once applied."""

    routes: tuple[RouteFault, ...] = ()
    latency_ms: int = 0
    forced_remaining: int | None = None
    forced_until: float = 0.0
    secondary_until: float = 0.0
    secondary_retry_after: int = 0
    secondary_status: int = 403
    webhooks: WebhookFaults = WebhookFaults()

    @classmethod
    def parse(cls, body: Any, *, now: float) -> Faults:
        """Validate and read a faults body; FaultSpecError names the first bad part."""
        if not isinstance(body, dict):
            raise FaultSpecError("faults must be a JSON object")
        unknown = set(body) - {"routes", "latency_ms", "rate_limit", "secondary_limit", "webhooks"}
        if unknown:
            raise FaultSpecError(f"unknown fault keys: {', '.join(sorted(unknown))}")
        rate_limit = _obj(body, "rate_limit")
        secondary = _obj(body, "secondary_limit")
        hooks = _obj(body, "webhooks")
        return cls(
            routes=tuple(_route(k, v) for k, v in _obj(body, "routes").items()),
            latency_ms=_num(body, "latency_ms", 0, int),
            forced_remaining=_num(rate_limit, "remaining", 0, int) if rate_limit else None,
            forced_until=now + _num(rate_limit, "reset_in", 60, float) if rate_limit else 0.0,
            secondary_until=now + _num(secondary, "for_s", 60, float) if secondary else 0.0,
            secondary_retry_after=_num(secondary, "retry_after", 60, int),
            secondary_status=_status(secondary.get("status", 403), (403, 429)),
            webhooks=WebhookFaults(
                duplicate=_num(hooks, "duplicate", 0.0, float),
                reorder=_num(hooks, "reorder", 0.0, float),
                drop=_num(hooks, "drop", 0.0, float),
                delay_ms=_num(hooks, "delay_ms", 0, int),
                late_log=_flag(hooks, "late_log"),
            ),
        )

    def route_fault(self, method: str, path: str) -> RouteFault | None:
        """The fault that strikes this request, or None to serve it normally."""
        target = f"{method} {path}"
        return next((fault for fault in self.routes if fault.strikes(target)), None)


def _obj(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key, {})
    if not isinstance(value, dict):
        raise FaultSpecError(f"{key} must be an object")
    return value


def _num(body: dict[str, Any], key: str, default: _Num, kind: type[_Num]) -> _Num:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise FaultSpecError(f"{key} must be a non-negative number")
    return kind(value)


def _flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise FaultSpecError(f"{key} must be true or false")
    return value


def _status(value: Any, allowed: tuple[int, ...] | None = None) -> int:
    if not isinstance(value, int) or not 100 <= value <= 599 or (allowed and value not in allowed):
        raise FaultSpecError(
            f"status must be {' or '.join(map(str, allowed or ())) or 'an HTTP status'}"
        )
    return value


def _route(key: str, spec: Any) -> RouteFault:
    method, _, path = key.partition(" ")
    if not path or not isinstance(spec, dict):
        raise FaultSpecError(
            f'route fault {key!r} must be "<METHOD> <path regex>": {{"status": N}}'
        )
    try:
        pattern = re.compile(f"^(?:{method.upper()}) {path}")
    except re.error as exc:
        raise FaultSpecError(f"route fault {key!r}: bad regex ({exc})") from None
    after = spec.get("after", False)
    if not isinstance(after, bool):
        raise FaultSpecError(f"route fault {key!r}: after must be true or false")
    status = _status(spec.get("status", 502))
    times = _num(spec, "times", 0, int) if "times" in spec else None
    return RouteFault(pattern, status, _num(spec, "rate", 1.0, float), after, times)


@dataclass
class RateLimits:
    """Primary rate-limit counters per bucket, plus a forced limit set by a fault.

    A bucket is (used, window reset epoch). A forced limit (``rate_limit`` fault) caps what is
    left for every bucket and counts down with each request until it resets.
    """

    buckets: dict[str, tuple[int, float]] = field(default_factory=dict)
    forced_remaining: int | None = None
    forced_until: float = 0.0

    def force(self, faults: Faults) -> None:
        self.forced_remaining, self.forced_until = faults.forced_remaining, faults.forced_until

    def _bucket(self, key: str, now: float) -> tuple[int, float]:
        used, reset = self.buckets.get(key, (0, now + WINDOW_S))
        return (0, now + WINDOW_S) if reset <= now else (used, reset)

    def _forced(self, now: float) -> bool:
        return self.forced_remaining is not None and now < self.forced_until

    def peek(self, key: str, now: float, *, limit: int = PRIMARY_LIMIT) -> tuple[int, int, int]:
        """(remaining, used, reset epoch) for ``key`` without spending anything."""
        used, reset = self._bucket(key, now)
        remaining = limit - used
        if self._forced(now) and self.forced_remaining is not None:
            remaining, reset = min(remaining, self.forced_remaining), self.forced_until
        return max(0, remaining), used, math.ceil(reset)

    def spend(self, key: str, now: float) -> None:
        used, reset = self._bucket(key, now)
        self.buckets[key] = (used + 1, reset)
        if self._forced(now) and self.forced_remaining:
            self.forced_remaining -= 1
