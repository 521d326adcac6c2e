"""``GET /metrics``: Prometheus text that is the same whichever process answers (SPEC §4).

Every number lives in Redis, so the web process reports what the workers did:

- deliveries by event and outcome, rule violations by rule, hand-offs, timeouts and cycles
  are counted where the audit log is written (:mod:`reactor.store.counters`);
- job latency, from a delivery's arrival at the web process to the judgement of it, is a
  histogram whose buckets the worker increments (:mod:`reactor.store.counters`);
- GitHub calls by route and status, and each installation's latest
  ``x-ratelimit-remaining``, are kept by :class:`reactor.github.metrics.CallCounter`;
- queue depth is RQ's own state: each queue's length and its registries' sizes.

A scrape reads all of it in one pipelined round trip (:func:`read`) and a Collector turns the
readings into metric families (prometheus-client's collectors are synchronous, so the Redis
read happens first). The route, like the dashboard, answers only local requests or those
that carry ``DASHBOARD_TOKEN`` (:class:`reactor.ops.access.Access`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis
import redis.asyncio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from rq import Queue
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from reactor.ops.access import Access
from reactor.process.settings import Settings
from reactor.store import keys
from reactor.store.counters import LATENCY_BUCKETS

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

QUEUE_STATES = ("queued", "started", "scheduled", "deferred", "failed")
_REGISTRIES = (StartedJobRegistry, ScheduledJobRegistry, DeferredJobRegistry, FailedJobRegistry)
VIOLATION_RULES = ("R1", "R2", "R3", "R4", "R5", "R6", "R11", "R12")


@dataclass(frozen=True)
class Readings:
    """Everything one scrape reports, as read from Redis."""

    counters: Mapping[str, int]
    latency: Mapping[str, float]
    calls: Mapping[str, int]
    remaining: Mapping[str, int]
    queues: Mapping[str, tuple[int, ...]]  # per queue, a count per QUEUE_STATES


async def read(client: redis.asyncio.Redis) -> Readings:
    """The readings, in one pipelined round trip after listing RQ's queues."""
    listed = await client.smembers(Queue.redis_queues_keys)
    prefix = Queue.redis_queue_namespace_prefix
    names = sorted({keys.QUEUE_EVENTS} | {_text(k).removeprefix(prefix) for k in listed})
    async with client.pipeline(transaction=False) as pipe:
        for key in (keys.METRICS_COUNTERS, keys.METRICS_LATENCY, keys.GITHUB_CALLS,
                    keys.RATE_REMAINING):
            pipe.hgetall(key)
        for name in names:
            pipe.llen(prefix + name)
            for registry in _REGISTRIES:
                pipe.zcard(registry.key_template.format(name))
        found = await pipe.execute()
    counters, latency, calls, remaining = (_numbers(h) for h in found[:4])
    width = len(QUEUE_STATES)
    queues = {name: tuple(int(n) for n in found[4 + i * width: 4 + (i + 1) * width])
              for i, name in enumerate(names)}
    return Readings(_ints(counters), latency, _ints(calls), _ints(remaining), queues)


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _numbers(fields: Mapping[bytes, bytes]) -> dict[str, float]:
    return {_text(k): float(v) for k, v in fields.items()}


def _ints(numbers: Mapping[str, float]) -> dict[str, int]:
    return {k: int(v) for k, v in numbers.items()}


class ReadingsCollector(Collector):
    """The metric families of one scrape's readings."""

    def __init__(self, readings: Readings) -> None:
        self.readings = readings

    def collect(self) -> Iterator[Metric]:
        r = self.readings
        yield _deliveries(r.counters)
        yield _violations(r.counters)
        for name, field, what in (
            ("reactor_handoffs", "handoff", "Hand-offs (R9) the reactor made"),
            ("reactor_timeouts", "timeout", "Issues the reactor moved to timeout (R8)"),
            ("reactor_cycles", "cycle", "Dependency cycles refused or broken (R7)"),
            ("reactor_turn_rounds", "turn round",
             "Rounds of competitions' turns (each at most one read of GitHub, one decision)"),
            ("reactor_turn_judged_deliveries", "turn delivery",
             "Deliveries those rounds judged"),
        ):
            yield CounterMetricFamily(name, what, value=r.counters.get(field, 0))
        yield _latency(r.latency)
        yield _calls(r.calls)
        yield _remaining(r.remaining)
        yield _queues(r.queues)


def _deliveries(counters: Mapping[str, int]) -> Metric:
    family = CounterMetricFamily("reactor_deliveries", "Deliveries by event and outcome",
                                 labels=["event", "outcome"])
    for field, count in sorted(counters.items()):
        kind, _, rest = field.partition(" ")
        event, _, outcome = rest.partition(" ")
        if kind == "delivery" and outcome:
            family.add_metric([event, outcome], count)
    return family


def _violations(counters: Mapping[str, int]) -> Metric:
    family = CounterMetricFamily("reactor_rule_violations", "Rule violations the reactor undid",
                                 labels=["rule"])
    for rule in VIOLATION_RULES:
        family.add_metric([rule], counters.get(f"violation {rule}", 0))
    return family


def _latency(latency: Mapping[str, float]) -> Metric:
    """The histogram: cumulative counts per bound (the stored ones are per bucket)."""
    total, buckets = 0.0, []
    for bound in (*(repr(b) for b in LATENCY_BUCKETS), "+Inf"):
        total += latency.get(bound, 0.0)
        buckets.append((bound, total))
    return HistogramMetricFamily(
        "reactor_delivery_latency_seconds",
        "Time from a delivery's arrival to the end of the job that handled it",
        buckets=buckets, sum_value=latency.get("sum", 0.0))


def _calls(calls: Mapping[str, int]) -> Metric:
    family = CounterMetricFamily("reactor_github_calls", "GitHub API attempts by route and "
                                 "status (0: no answer)", labels=["method", "route", "status"])
    for field, count in sorted(calls.items()):
        parts = field.split(" ", 2)
        if len(parts) == 3:
            family.add_metric(parts, count)
    return family


def _remaining(remaining: Mapping[str, int]) -> Metric:
    family = GaugeMetricFamily("reactor_github_rate_limit_remaining", "The latest "
                               "x-ratelimit-remaining per installation", labels=["installation"])
    for installation, left in sorted(remaining.items()):
        family.add_metric([installation], left)
    return family


def _queues(queues: Mapping[str, tuple[int, ...]]) -> Metric:
    family = GaugeMetricFamily("reactor_queue_jobs", "RQ jobs per queue: queued, started, "
                               "scheduled, deferred, failed", labels=["queue", "state"])
    for name, counts in sorted(queues.items()):
        for state, count in zip(QUEUE_STATES, counts, strict=True):
            family.add_metric([name, state], count)
    return family


def exposition(readings: Readings) -> bytes:
    """The Prometheus text format of ``readings``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReadingsCollector(readings))
    return generate_latest(registry)


def routes(settings: Settings) -> list[Route]:
    """``GET /metrics``, behind :class:`Access` with the configured token."""
    access = Access(settings.dashboard_token)

    async def metrics(request: Request) -> Response:
        refused = access.refusal(request)
        if refused is not None:
            return refused
        try:
            readings = await read(request.state.redis)
        except (redis.RedisError, OSError) as exc:
            log.warning("metrics unavailable: Redis does not answer: %s", exc)
            return PlainTextResponse("Redis does not answer; try again.\n", status_code=503)
        return Response(exposition(readings), media_type=CONTENT_TYPE_LATEST,
                        headers={"cache-control": "no-store"})

    return [Route("/metrics", metrics, methods=["GET"])]
