"""Stored deliveries: the record the web process writes, and reading it back.

A delivery is one Redis string at :func:`keys.delivery`: a one-line JSON header (the event, the
hook headers GitHub sent, when it arrived), a newline, then the payload exactly as received.
One string rather than a hash because the payload is the whole of it (12 KB is typical, 25 MiB
the cap): Redis keeps a ``SET`` argument as the value without copying it (1–4 µs for 12 KB),
while writing a hash field that size converts the hash out of its compact encoding (10–22 µs),
measured on the ingest benchmark (``bench/ingest.py``). The header is JSON (orjson escapes
newlines), so the first newline always ends it.

The worker (:mod:`reactor.entrypoints.jobs`), ``reactor replay`` and the CLI read it with
:func:`load`.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import redis.asyncio

from reactor.core.errors import DeliveryError, DeliveryNotFound
from reactor.store import keys


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
