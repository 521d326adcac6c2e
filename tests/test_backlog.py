"""What keeps a settle window open: deliveries still queued or being taken by other workers,
not re-checks of other scopes (two parked competitions once kept each other waiting 30 s)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import redis.asyncio

from reactor.context import Context
from reactor.shell.coordinate import _backlog
from reactor.store import keys

QUEUE, STARTED = f"rq:queue:{keys.QUEUE_EVENTS}", f"rq:wip:{keys.QUEUE_EVENTS}"


async def test_only_deliveries_waiting_or_running_elsewhere_are_a_backlog(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    ctx = cast(Context, SimpleNamespace(redis=client))
    try:
        assert not await _backlog(ctx)
        await client.rpush(QUEUE, "settle-0a1b-1796040000", "check-0a1b", "timeout-9f")
        await client.zadd(STARTED, {"check-77:e1": 1, "catchup-1796040000:e2": 1})
        assert not await _backlog(ctx)
        await client.zadd(STARTED, {"6d1cccc3-7291-4211-9d66-ca1195054dec-turn:e3": 1})
        assert await _backlog(ctx)
        await client.zrem(STARTED, "6d1cccc3-7291-4211-9d66-ca1195054dec-turn:e3")
        await client.rpush(QUEUE, "2989e193-25c3-4c92-98a8-bead600496f8")
        assert await _backlog(ctx)
    finally:
        await client.aclose()


