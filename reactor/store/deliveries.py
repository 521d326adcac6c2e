"""Reading stored deliveries back (the worker, replay and the CLI)."""

from __future__ import annotations

import redis.asyncio

from reactor.errors import DeliveryNotFound
from reactor.store import keys
from reactor.store.ingest import Delivery


def _decode(guid: str, raw: dict[bytes, bytes]) -> Delivery:
    text = {k.decode(): v for k, v in raw.items()}
    return Delivery(
        guid=guid,
        event=text["event"].decode(),
        body=text["body"],
        received_at=float(text.get("received_at", b"0")),
        hook_id=text.get("hook_id", b"").decode(),
        target_type=text.get("target_type", b"").decode(),
        target_id=text.get("target_id", b"").decode(),
    )


async def load(client: redis.asyncio.Redis, guid: str) -> Delivery:
    """The stored delivery ``guid``; DeliveryNotFound once it expired or was never accepted."""
    raw: dict[bytes, bytes] = await client.hgetall(keys.delivery(guid))  # type: ignore[assignment]
    if not raw or b"event" not in raw or b"body" not in raw:
        raise DeliveryNotFound(f"no stored delivery {guid}", delivery_id=guid)
    return _decode(guid, raw)
