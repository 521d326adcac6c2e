"""A turn's audit records and counters, queued on its closing transaction.

``GET /metrics`` reads its counters from Redis (:mod:`reactor.metrics`). A turn adds to them
once per turn, not once per record: the outcome of each delivery it judged, the violations,
hand-offs, timeouts and cycles its comments stand for, and each judged delivery's latency
(from its arrival at the web process to the turn that judged it). The closing transaction
also marks the deliveries judged, so each is counted exactly once: a parked delivery is
counted when it is finally judged, a turn that never closed counted nothing.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from reactor.github.metrics import METRICS_TTL_S
from reactor.metrics import COUNTERS_KEY, LATENCY_KEY, bucket_of, delivery_field, event_field
from reactor.store import keys
from reactor.store.audit import AuditRecord, Outcome

_PARKED = Outcome.PARKED.value
EXPIRY_EVERY_S = 3600.0  # the counters' time to live is renewed this often per process
_renewed: dict[str, float] = {}  # key -> time.monotonic() of this process's last renewal


def _renew(pipe: Any, key: str) -> None:
    """Renew ``key``'s time to live (METRICS_TTL_S, 90 days) at most hourly per process: it
    only has to outlive the reactor's quiet spells, and a round need not say so each time."""
    now = time.monotonic()
    if now - _renewed.get(key, -EXPIRY_EVERY_S) >= EXPIRY_EVERY_S:
        _renewed[key] = now
        pipe.expire(key, METRICS_TTL_S)


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
        pipe.hincrby(COUNTERS_KEY, name, count)
    if fields:
        _renew(pipe, COUNTERS_KEY)


def queue_round(pipe: Any, deliveries: int) -> None:
    """Count a round of a turn and the deliveries it judged (``GET /metrics``: how well the
    turns collapse bursts)."""
    pipe.hincrby(COUNTERS_KEY, "turn round", 1)
    if deliveries:
        pipe.hincrby(COUNTERS_KEY, "turn delivery", deliveries)


def queue_latencies(pipe: Any, seconds: Iterable[float]) -> None:
    """Count each judged delivery's time from arrival to judgement in the histogram."""
    buckets: Counter[str] = Counter()
    total = 0.0
    for value in seconds:
        buckets[bucket_of(max(0.0, value))] += 1
        total += max(0.0, value)
    for bucket, count in buckets.items():
        pipe.hincrby(LATENCY_KEY, bucket, count)
    if buckets:
        pipe.hincrbyfloat(LATENCY_KEY, "sum", total)
        _renew(pipe, LATENCY_KEY)
