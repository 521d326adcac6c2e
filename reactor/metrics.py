"""``GET /metrics``: Prometheus text that is the same whichever process answers (SPEC §4).

Every number lives in Redis, so the web process reports what the workers did:

- deliveries by event and outcome, rule violations by rule, hand-offs, timeouts and cycles
  are counted where the audit log is written (:func:`count_record`, queued on
  :meth:`reactor.store.audit.AuditLog.record`'s pipeline);
- job latency, from a delivery's arrival at the web process to the end of the job that
  handled it, is a histogram whose buckets the worker increments (:func:`observe_latency`);
- GitHub calls by route and status, and each installation's latest
  ``x-ratelimit-remaining``, are kept by :class:`reactor.github.metrics.CallCounter`;
- queue depth is RQ's own state: each queue's length and its registries' sizes.

A scrape reads all of it in one pipelined round trip (:func:`read`) and a Collector turns the
readings into metric families (prometheus-client's collectors are synchronous, so the Redis
read happens first). The route, like the dashboard, answers only local requests or those
that carry ``DASHBOARD_TOKEN`` (:class:`reactor.access.Access`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
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

from reactor.access import Access
from reactor.github.metrics import CALLS_KEY, METRICS_TTL_S, REMAINING_KEY
from reactor.settings import Settings
from reactor.store import keys

if TYPE_CHECKING:
    from reactor.store.audit import AuditRecord

log = logging.getLogger(__name__)

# The counters (hash fields "delivery <event> <outcome>", "violation <rule>", "handoff",
# "timeout", "cycle"), the outcomes already counted per delivery, and the latency histogram
# (a field per bucket bound, plus "sum"). The hashes stay small (their fields are bounded by
# events, outcomes, rules and buckets) and expire METRICS_TTL_S after their last write.
COUNTERS_KEY = keys.PREFIX + "metrics:counters"
COUNTED = keys.PREFIX + "metrics:counted:{guid}"
LATENCY_KEY = keys.PREFIX + "metrics:latency"
COUNTED_TTL_S = 24 * 3600  # longer than any retry, settle window or deferral of a delivery

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
HEADER_BYTES = 1024  # a stored delivery's header line (reactor/store/deliveries.py) fits
VIOLATION_RULES = ("R1", "R2", "R3", "R4", "R5", "R6")
QUEUE_STATES = ("queued", "started", "scheduled", "deferred", "failed")
_REGISTRIES = (StartedJobRegistry, ScheduledJobRegistry, DeferredJobRegistry, FailedJobRegistry)

# Count a delivery's outcome once, however many records name it (a revert writes one record
# per action beside the delivery's own; a retried job writes them again).
# KEYS: the counters hash, the delivery's counted set; ARGV: field, the set's ttl, the hash's.
_COUNT_ONCE = """
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  redis.call('EXPIRE', KEYS[2], ARGV[2])
  redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return 0
"""

# An action's record reads "[comp:<name> ]<Action>: <reason>" (reactor/shell/audit.py); each
# violation, hand-off, timeout and cycle leaves exactly one comment, whose reason
# (reactor/comments.py) says which it is.
_COMMENT = re.compile(r"(?:comp:.*? )?Comment: (?P<reason>R\d+ .*)", re.DOTALL)
_KINDS = (
    ("violation", re.compile(r"R[1-6] (?:revert:|close:|escalated:|duplicate of #)")),
    ("handoff", re.compile(r"R9 hand-off from #")),
    ("timeout", re.compile(r"R8 \S+ past ")),
    ("cycle", re.compile(r"R7 (?:refused: cycle|broke cycle) ")),
)
_APPLIED = "applied"  # Outcome.APPLIED (reactor.store.audit imports this module)


def delivery_field(record: AuditRecord) -> str | None:
    """The counter of the record's delivery outcome; None for what no delivery prompted (a
    timer or reconcile run names itself as its delivery)."""
    if not record.delivery or record.delivery == record.event:
        return None
    return f"delivery {record.event} {record.outcome}"


def event_field(record: AuditRecord) -> str | None:
    """The counter a record of an applied comment adds to: ``violation <rule>``,
    ``handoff``, ``timeout`` or ``cycle``; None for any other record."""
    found = _COMMENT.match(record.detail) if record.outcome == _APPLIED else None
    if found is None or not found["reason"].startswith(f"{record.rule} "):
        return None
    for kind, pattern in _KINDS:
        if pattern.match(found["reason"]):
            return f"violation {record.rule}" if kind == "violation" else kind
    return None


def count_record(pipe: redis.asyncio.client.Pipeline, record: AuditRecord) -> None:
    """Queue on ``pipe`` the counter increments ``record`` stands for."""
    delivery = delivery_field(record)
    if delivery is not None:
        guid_set = COUNTED.format(guid=record.delivery)
        pipe.eval(_COUNT_ONCE, 2, COUNTERS_KEY, guid_set, delivery, COUNTED_TTL_S,
                  METRICS_TTL_S)
    event = event_field(record)
    if event is not None:
        pipe.hincrby(COUNTERS_KEY, event, 1)
        pipe.expire(COUNTERS_KEY, METRICS_TTL_S)


def bucket_of(seconds: float) -> str:
    """The histogram field counting ``seconds``: the smallest bound that holds it."""
    return next((repr(bound) for bound in LATENCY_BUCKETS if seconds <= bound), "+Inf")


def observe_latency(client: redis.Redis, guid: str, *, now: float) -> None:
    """Count the time from the delivery ``guid``'s arrival to ``now`` (epoch seconds).

    Reads only the stored record's header line. Never raises: the job is done, and a lost
    observation must not make RQ run it again."""
    try:
        head: bytes = client.getrange(keys.delivery(guid), 0, HEADER_BYTES - 1)  # type: ignore[assignment]
        received = _received_at(head)
        if received is None:
            return
        seconds = max(0.0, now - received)
        with client.pipeline(transaction=True) as pipe:
            pipe.hincrby(LATENCY_KEY, bucket_of(seconds), 1)
            pipe.hincrbyfloat(LATENCY_KEY, "sum", seconds)
            pipe.expire(LATENCY_KEY, METRICS_TTL_S)
            pipe.execute()
    except (redis.RedisError, OSError) as exc:
        log.warning("job latency not recorded: %s", exc, extra={"delivery": guid})


def _received_at(head: bytes) -> float | None:
    line, newline, _ = head.partition(b"\n")
    try:
        header = orjson.loads(line) if newline else None
    except orjson.JSONDecodeError:
        return None
    received = header.get("received_at") if isinstance(header, dict) else None
    return float(received) if isinstance(received, int | float) and received > 0 else None


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
        for key in (COUNTERS_KEY, LATENCY_KEY, CALLS_KEY, REMAINING_KEY):
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
