"""The reactor's memory in Redis: accepted statuses, reverts, markers, expectations, creations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from reactor.store import memory


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(redis_url)
    yield connection
    await connection.aclose()


async def test_accepted_statuses_round_trip_per_repository(client: redis.asyncio.Redis) -> None:
    await memory.set_accepted(client, 1, {7: "running", 8: "idle"})
    await memory.set_accepted(client, 1, {7: "completed"})
    assert await memory.accepted(client, 1, [7, 8, 9]) == {7: "completed", 8: "idle"}
    assert await memory.accepted(client, 2, [7]) == {}


async def test_reverts_are_counted_within_the_window_only(client: redis.asyncio.Redis) -> None:
    await memory.record_revert(client, 1, 7, delivery="a", now=1000.0)
    await memory.record_revert(client, 1, 7, delivery="b", now=1000.0 + memory.REVERT_WINDOW_S)
    await memory.record_revert(client, 1, 7, delivery="b", now=1001.0 + memory.REVERT_WINDOW_S)
    counts = await memory.revert_counts(client, 1, [7, 8], now=1002.0 + memory.REVERT_WINDOW_S)
    assert counts == {7: 1}


async def test_a_marker_is_claimed_once_unless_released(client: redis.asyncio.Redis) -> None:
    claims = await asyncio.gather(*(memory.claim_marker(client, "R2:7:d1") for _ in range(20)))
    assert claims.count(True) == 1
    await memory.release_marker(client, "R2:7:d1")
    assert await memory.claim_marker(client, "R2:7:d1")


async def test_each_expectation_is_consumed_by_one_echo(client: redis.asyncio.Redis) -> None:
    await memory.expect(client, 1, 7, "labeled:status:starting")
    assert not await memory.consume_expectation(client, 1, 7, "unlabeled:status:starting")
    echoes = [memory.consume_expectation(client, 1, 7, "labeled:status:starting") for _ in range(5)]
    assert (await asyncio.gather(*echoes)).count(True) == 1


async def test_an_issue_is_created_at_most_once_per_key(client: redis.asyncio.Redis) -> None:
    claims = await asyncio.gather(*(memory.begin_creation(client, 1, "titanic/executor")
                                    for _ in range(10)))
    assert [c.claimed for c in claims].count(True) == 1
    assert {c.number for c in claims} == {None}
    await memory.finish_creation(client, 1, "titanic/executor", 42)
    found = await memory.begin_creation(client, 1, "titanic/executor")
    assert (found.number, found.claimed) == (42, False)
