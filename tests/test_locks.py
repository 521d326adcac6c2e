"""Leases with fencing tokens, on a real redis-server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio

from reactor.core.errors import LeaseLost
from reactor.store import keys, locks
from tests.conftest import stop_group


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(redis_url)
    yield connection
    await connection.aclose()


async def test_a_lease_is_exclusive_until_released_and_fences_only_grow(
    client: redis.asyncio.Redis,
) -> None:
    first = await locks.acquire(client, "1:comp:titanic")
    assert first is not None
    assert await locks.acquire(client, "1:comp:titanic") is None
    assert await locks.acquire(client, "1:comp:other") is not None
    await first.release()
    second = await locks.acquire(client, "1:comp:titanic")
    assert second is not None and second.fence > first.fence


async def test_an_unguarded_lease_holds_nothing_and_never_fails_its_check(
    client: redis.asyncio.Redis,
) -> None:
    """``UNSAFE_DISABLE=lease`` (bench/ and the chaos suite's control): everyone holds it."""
    held = await locks.acquire(client, "1:comp:titanic")
    assert held is not None
    loose = await locks.acquire(client, "1:comp:titanic", guarded=False)
    assert loose is not None
    await loose.check()
    await loose.release()
    await held.check()  # the guarded holder's lease was not touched


async def test_a_lost_lease_fails_its_check_and_cannot_release_the_new_holders(
    client: redis.asyncio.Redis,
) -> None:
    stale = await locks.acquire(client, "1:issue:7")
    assert stale is not None
    await stale.check()
    await client.delete(keys.lease("1:issue:7"))  # the lease expired
    fresh = await locks.acquire(client, "1:issue:7")
    assert fresh is not None
    with pytest.raises(LeaseLost):
        await stale.check()
    await stale.release()
    await fresh.check()


WORKER = textwrap.dedent("""
    import asyncio, sys
    import redis.asyncio
    from reactor.store import locks

    async def main(url):
        client = redis.asyncio.Redis.from_url(url)
        done = 0
        while done < 40:
            lease = await locks.acquire(client, "race")
            if lease is None:
                await asyncio.sleep(0.001)
                continue
            holders = await client.incr("holders")
            await client.rpush("entries", f"{lease.fence}:{holders}")
            await lease.check()
            await client.decr("holders")
            await lease.release()
            done += 1
        await client.aclose()

    asyncio.run(main(sys.argv[1]))
""")


def test_four_processes_racing_never_hold_one_scope_together(redis_url: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, redis_url], start_new_session=True)
             for _ in range(4)]
    try:
        assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    finally:
        for p in procs:
            stop_group(p)
    raw = redis.Redis.from_url(redis_url).lrange("entries", 0, -1)
    entries = [entry.decode().split(":") for entry in raw]
    assert len(entries) == 160
    assert {holders for _, holders in entries} == {"1"}
    fences = [int(fence) for fence, _ in entries]
    assert fences == sorted(fences) and len(set(fences)) == 160


def test_asyncio_tasks_share_the_rule_too(redis_url: str) -> None:
    async def main() -> list[int]:
        client = redis.asyncio.Redis.from_url(redis_url)
        won = await asyncio.gather(*(locks.acquire(client, "burst") for _ in range(50)))
        await client.aclose()
        return [lease.fence for lease in won if lease is not None]

    assert len(asyncio.run(main())) == 1
