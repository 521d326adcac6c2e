"""The read-only Redis clients of ``reactor replay --dry-run``, on a real redis-server: reads
are sent, writes are answered without being sent, anything else stops the dry run."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio

from reactor.store.readonly import ReadOnlyRedis, ReadOnlySyncRedis, ReadOnlyViolation


@pytest.fixture
async def real(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(redis_url)
    await connection.set("kept", "1")
    await connection.rpush("queue", "a", "b")
    yield connection
    await connection.aclose()


@pytest.fixture
async def reading(redis_url: str) -> AsyncIterator[ReadOnlyRedis]:
    connection = ReadOnlyRedis.from_url(redis_url)
    yield connection
    await connection.aclose()


async def contents(client: redis.asyncio.Redis) -> dict[bytes, bytes | None]:
    return {key: await client.dump(key) async for key in client.scan_iter()}


async def test_reads_are_sent_and_writes_answered_but_never_sent(
    real: redis.asyncio.Redis, reading: ReadOnlyRedis
) -> None:
    before = await contents(real)
    assert await reading.get("kept") == b"1"
    assert await reading.set("lock", "me", nx=True, px=1000)  # a caller carries on
    assert await reading.hset("hash", mapping={"a": "1"}) and await reading.expire("kept", 1)
    tokens = reading.register_script("return redis.call('DEL', KEYS[1])")
    await tokens(keys=["kept"])
    assert await contents(real) == before


async def test_a_pipeline_sends_its_reads_and_answers_its_writes_in_order(
    real: redis.asyncio.Redis, reading: ReadOnlyRedis
) -> None:
    before = await contents(real)
    async with reading.pipeline(transaction=True) as pipe:
        pipe.get("kept")
        pipe.delete("kept")
        pipe.lrange("queue", 0, -1)
        pipe.hset("hash", mapping={"a": "1"})
        assert await pipe.execute() == [b"1", True, [b"a", b"b"], True]
    assert await contents(real) == before


async def test_a_command_that_reads_and_writes_stops_the_dry_run(
    real: redis.asyncio.Redis, reading: ReadOnlyRedis, redis_url: str
) -> None:
    before = await contents(real)
    with pytest.raises(ReadOnlyViolation, match="LMOVE"):
        await reading.lmove("queue", "elsewhere")
    with pytest.raises(ReadOnlyViolation, match="GETDEL"):
        await reading.getdel("kept")
    scheduler = ReadOnlySyncRedis.from_url(redis_url)
    assert scheduler.get("kept") == b"1"
    with pytest.raises(ReadOnlyViolation):
        scheduler.set("job", "x")
    with pytest.raises(ReadOnlyViolation):
        scheduler.pipeline()
    scheduler.close()
    assert await contents(real) == before
