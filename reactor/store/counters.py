"""Writing the audit log and the counters its records stand for, which ``GET /metrics``
reads back from Redis (:mod:`reactor.ops.metrics`) whichever process wrote them.

One record is appended with :class:`AuditLog` (its delivery's outcome counted once, however
many records name it); a turn queues its records and counters on its closing transaction
(:func:`queue_records`, :func:`queue_round`, :func:`queue_latencies`) and adds to them
once per turn, not once per record: the outcome of each delivery it judged, the violations,
hand-offs, timeouts and cycles its comments stand for, and each judged delivery's latency
(from its arrival at the web process to the turn that judged it). The closing transaction
also marks the deliveries judged, so each is counted exactly once: a parked delivery is
counted when it is finally judged, a turn that never closed counted nothing.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

import redis
import redis.asyncio

from reactor.store import deliveries, keys
from reactor.store.audit import AuditRecord, Outcome

log = logging.getLogger(__name__)

_PARKED = Outcome.PARKED.value
EXPIRY_EVERY_S = 3600.0  # the counters' time to live is renewed this often per process
_renewed: dict[str, float] = {}  # key -> time.monotonic() of this process's last renewal


COUNTED_TTL_S = 24 * 3600  # longer than any retry, settle window or deferral of a delivery

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

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

# An action's record reads "[comp:<name> ]<Action>: <reason>" (reactor/shell/records.py); each
# violation, hand-off, timeout and cycle leaves exactly one comment, whose reason
# (reactor/core/comments.py) says which it is.
_COMMENT = re.compile(r"(?:comp:.*? )?Comment: (?P<reason>R\d+ .*)", re.DOTALL)
_KINDS = (
    ("violation", re.compile(r"R(?:[1-6]|1[12]) (?:revert:|close:|escalated:|paused:|"
                             r"duplicate of #)")),
    ("handoff", re.compile(r"R9 hand-off from #")),
    ("timeout", re.compile(r"R8 \S+ past ")),
    ("cycle", re.compile(r"R7 (?:refused: cycle|broke cycle) ")),
)
_APPLIED = Outcome.APPLIED.value


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
        guid_set = keys.METRICS_COUNTED.format(guid=record.delivery)
        pipe.eval(_COUNT_ONCE, 2, keys.METRICS_COUNTERS, guid_set, delivery, COUNTED_TTL_S,
                  keys.METRICS_TTL_S)
    event = event_field(record)
    if event is not None:
        pipe.hincrby(keys.METRICS_COUNTERS, event, 1)
        pipe.expire(keys.METRICS_COUNTERS, keys.METRICS_TTL_S)


def bucket_of(seconds: float) -> str:
    """The histogram field counting ``seconds``: the smallest bound that holds it."""
    return next((repr(bound) for bound in LATENCY_BUCKETS if seconds <= bound), "+Inf")


def observe_latency(client: redis.Redis, guid: str, *, now: float) -> None:
    """Count the time from the delivery ``guid``'s arrival to ``now`` (epoch seconds).

    Reads only the stored record's header line. Never raises: the job is done, and a lost
    observation must not make RQ run it again."""
    try:
        head: bytes = client.getrange(keys.delivery(guid), 0, deliveries.HEADER_BYTES - 1)  # type: ignore[assignment]
        received = deliveries.received_at(head)
        if received is None:
            return
        seconds = max(0.0, now - received)
        with client.pipeline(transaction=True) as pipe:
            pipe.hincrby(keys.METRICS_LATENCY, bucket_of(seconds), 1)
            pipe.hincrbyfloat(keys.METRICS_LATENCY, "sum", seconds)
            pipe.expire(keys.METRICS_LATENCY, keys.METRICS_TTL_S)
            pipe.execute()
    except (redis.RedisError, OSError) as exc:
        log.warning("job latency not recorded: %s", exc, extra={"delivery": guid})


def _renew(pipe: Any, key: str) -> None:
    """Renew ``key``'s time to live (METRICS_TTL_S, 90 days) at most hourly per process: it
    only has to outlive the reactor's quiet spells, and a round need not say so each time."""
    now = time.monotonic()
    if now - _renewed.get(key, -EXPIRY_EVERY_S) >= EXPIRY_EVERY_S:
        _renewed[key] = now
        pipe.expire(key, keys.METRICS_TTL_S)


def queue_records(pipe: Any, records: Iterable[AuditRecord]) -> None:
    """Append ``records`` to the audit stream and add them to the counters, on ``pipe``."""
    fields: Counter[str] = Counter()
    outcomes: set[tuple[str, str]] = set()  # a delivery's outcome counts once, however many
    for record in records:                  # records name it (a revert: one per action)
        pipe.xadd(keys.AUDIT, record.to_fields(), maxlen=keys.AUDIT_MAXLEN, approximate=True)
        delivery = delivery_field(record) if record.outcome != _PARKED else None
        if delivery is not None and (record.delivery, delivery) not in outcomes:
            outcomes.add((record.delivery, delivery))
            fields[delivery] += 1
        event = event_field(record)
        if event is not None:
            fields[event] += 1
    for name, count in fields.items():
        pipe.hincrby(keys.METRICS_COUNTERS, name, count)
    if fields:
        _renew(pipe, keys.METRICS_COUNTERS)


def queue_round(pipe: Any, deliveries: int) -> None:
    """Count a round of a turn and the deliveries it judged (``GET /metrics``: how well the
    turns collapse bursts)."""
    pipe.hincrby(keys.METRICS_COUNTERS, "turn round", 1)
    if deliveries:
        pipe.hincrby(keys.METRICS_COUNTERS, "turn delivery", deliveries)


def queue_latencies(pipe: Any, seconds: Iterable[float]) -> None:
    """Count each judged delivery's time from arrival to judgement in the histogram."""
    buckets: Counter[str] = Counter()
    total = 0.0
    for value in seconds:
        buckets[bucket_of(max(0.0, value))] += 1
        total += max(0.0, value)
    for bucket, count in buckets.items():
        pipe.hincrby(keys.METRICS_LATENCY, bucket, count)
    if buckets:
        pipe.hincrbyfloat(keys.METRICS_LATENCY, "sum", total)
        _renew(pipe, keys.METRICS_LATENCY)


class AuditLog:
    """Appends one record at a time (what no turn judges: an installation, a replay)."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._redis = client

    async def record(self, record: AuditRecord) -> None:
        """Append ``record`` and, in the same round trip, add it to the counters."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(keys.AUDIT, record.to_fields(),  # type: ignore[arg-type]
                      maxlen=keys.AUDIT_MAXLEN, approximate=True)
            count_record(pipe, record)
            await pipe.execute()
