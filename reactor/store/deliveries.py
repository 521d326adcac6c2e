"""Stored deliveries: the record the web process writes, and reading it back.

A delivery is one Redis string at :func:`keys.delivery`: a one-line JSON header (the event, the
hook headers GitHub sent, when it arrived), a newline, then the payload exactly as received.
One string rather than a hash because the payload is the whole of it (12 KB is typical, 25 MiB
the cap): Redis keeps a ``SET`` argument as the value without copying it (1–4 µs for 12 KB),
while writing a hash field that size converts the hash out of its compact encoding (10–22 µs),
measured on the ingest benchmark (``bench/ingest.py``). The header is JSON (orjson escapes
newlines), so the first newline always ends it.

The worker (:mod:`reactor.entrypoints.jobs`), ``reactor replay`` and the CLI read it with
:func:`load`; the latency counter and the dashboard read only when it arrived
(:func:`arrivals`), from the header's first :data:`HEADER_BYTES`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson
import redis.asyncio

from reactor.core.errors import DeliveryError, DeliveryNotFound
from reactor.store import keys

HEADER_BYTES = 1024  # a stored record's header line fits


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified webhook delivery as received (the raw payload, before any parsing)."""

    guid: str
    event: str
    body: bytes
    received_at: float
    hook_id: str = ""
    target_type: str = ""
    target_id: str = ""

    def header(self) -> bytes:
        """The stored record's first line; the record is ``header() + body``."""
        return orjson.dumps({
            "event": self.event, "received_at": self.received_at, "hook_id": self.hook_id,
            "target_type": self.target_type, "target_id": self.target_id,
        }, option=orjson.OPT_APPEND_NEWLINE)


def decode(guid: str, record: bytes) -> Delivery:
    """The delivery ``guid`` from its stored record; ValueError if it is not one."""
    header, newline, body = record.partition(b"\n")
    fields = orjson.loads(header) if newline else None
    if not isinstance(fields, dict) or not isinstance(fields.get("event"), str):
        raise ValueError(f"the stored record of delivery {guid} has no valid header")
    return Delivery(
        guid=guid, event=fields["event"], body=body,
        received_at=float(fields.get("received_at", 0.0)),
        hook_id=str(fields.get("hook_id", "")), target_type=str(fields.get("target_type", "")),
        target_id=str(fields.get("target_id", "")),
    )


async def load(client: redis.asyncio.Redis, guid: str) -> Delivery:
    """The stored delivery ``guid``; DeliveryNotFound once it expired or was never accepted,
    DeliveryError if what is stored there is not a delivery record."""
    record: bytes | None = await client.get(keys.delivery(guid))  # type: ignore[assignment]
    if record is None:
        raise DeliveryNotFound(f"no stored delivery {guid}", delivery_id=guid)
    try:
        return decode(guid, record)
    except ValueError as exc:  # orjson.JSONDecodeError is one
        raise DeliveryError(str(exc), delivery_id=guid) from None


def received_at(head: bytes) -> float | None:
    """When a delivery arrived, from the start of its stored record (None if unreadable)."""
    line, newline, _ = head.partition(b"\n")
    try:
        header = orjson.loads(line) if newline else None
    except ValueError:  # orjson.JSONDecodeError is one
        return None
    received = header.get("received_at") if isinstance(header, dict) else None
    return float(received) if isinstance(received, int | float) and received > 0 else None


async def arrivals(client: redis.asyncio.Redis, guids: Sequence[str]
                   ) -> dict[str, float | None]:
    """When each of ``guids`` arrived (None: gone or unreadable), in one round trip."""
    async with client.pipeline(transaction=False) as pipe:
        for guid in guids:
            pipe.getrange(keys.delivery(guid), 0, HEADER_BYTES - 1)
        heads = await pipe.execute()
    return dict(zip(guids, map(received_at, heads), strict=True))


async def payload_of(client: redis.asyncio.Redis, guid: str, *, at_most: int
                     ) -> dict[str, object] | None:
    """A stored delivery's payload, unless it is missing, larger than ``at_most`` bytes or
    not a JSON object."""
    size = await client.strlen(keys.delivery(guid))
    if not 0 < size <= at_most:
        return None
    record: bytes | None = await client.get(keys.delivery(guid))  # type: ignore[assignment]
    try:
        payload = orjson.loads(decode(guid, record).body) if record else None
    except ValueError:  # orjson.JSONDecodeError is one
        return None
    return payload if isinstance(payload, dict) else None
