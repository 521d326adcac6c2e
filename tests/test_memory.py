"""The reactor's memory in Redis: issues, reverts, markers, expectations, creations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from reactor.store import memory
from reactor.store.memory import MarkerClaim


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(redis_url)
    yield connection
    await connection.aclose()


async def test_issue_memory_round_trips_per_repository_and_expires(
        client: redis.asyncio.Redis) -> None:
    await memory.remember(client, 1, statuses={7: "running", 8: "idle"},
                          identities={7: ("titanic", "planner")})
    await memory.remember(client, 1, statuses={7: "completed"}, identities={})
    found = await memory.recall(client, 1, [7, 8, 9])
    assert found == {7: memory.Recalled("completed", "titanic", "planner"),
                     8: memory.Recalled("idle", None, None)}
    assert await memory.recall(client, 2, [7]) == {}
    assert await memory.competition_of(client, 1, 7) == "titanic"
    assert 0 < await client.ttl("reactor:issue:1:7") <= memory.ISSUE_TTL_S


async def test_a_maintainers_move_overwrites_the_remembered_competition(
        client: redis.asyncio.Redis) -> None:
    await memory.remember(client, 1, statuses={}, identities={7: ("alpha", "analyzer")})
    await memory.remember(client, 1, statuses={}, identities={7: ("beta", "analyzer")})
    assert await memory.competition_of(client, 1, 7) == "beta"


async def test_reverts_are_counted_within_the_window_only(client: redis.asyncio.Redis) -> None:
    window = 3600.0
    await memory.record_revert(client, 1, 7, delivery="a", now=1000.0, window_s=window)
    await memory.record_revert(client, 1, 7, delivery="b", now=1000.0 + window, window_s=window)
    await memory.record_revert(client, 1, 7, delivery="b", now=1001.0 + window, window_s=window)
    counts = await memory.revert_counts(client, 1, [7, 8], now=1002.0 + window, window_s=window)
    assert counts == {7: 1}
    assert await memory.revert_counts(client, 1, [7], now=1002.0 + window, window_s=0.5) == {}
    await memory.forget_reverts(client, 1, 7)
    assert await memory.revert_counts(client, 1, [7], now=1002.0 + window,
                                      window_s=window) == {}


async def test_a_marker_is_claimed_once_unless_released(client: redis.asyncio.Redis) -> None:
    claims = await asyncio.gather(*(memory.claim_marker(client, "R2:7:d1") for _ in range(20)))
    assert claims.count(MarkerClaim.CLAIMED) == 1
    assert set(claims) == {MarkerClaim.CLAIMED, MarkerClaim.UNCONFIRMED}
    await memory.release_marker(client, "R2:7:d1")
    assert await memory.claim_marker(client, "R2:7:d1") is MarkerClaim.CLAIMED
    await memory.confirm_marker(client, "R2:7:d1")
    assert await memory.claim_marker(client, "R2:7:d1") is MarkerClaim.POSTED


async def test_each_expectation_is_consumed_by_one_echo(client: redis.asyncio.Redis) -> None:
    await memory.expect(client, 1, 7, "labeled:status:starting")
    assert not await memory.consume_expectation(client, 1, 7, "unlabeled:status:starting",
                                                delivery="g0")
    echoes = [memory.consume_expectation(client, 1, 7, "labeled:status:starting",
                                         delivery=f"g{i}") for i in range(1, 6)]
    assert (await asyncio.gather(*echoes)).count(True) == 1


async def test_a_recognised_echo_stays_recognised_when_its_delivery_comes_again(
        client: redis.asyncio.Redis) -> None:
    """A retried job or a replay of the echo must not turn it into a change to judge."""
    await memory.expect(client, 1, "create:k", "opened", "labeled:agent:executor")
    assert await memory.consume_expectation(client, 1, "create:k", "opened", delivery="g1")
    assert await memory.consume_expectation(client, 1, "create:k", "opened", delivery="g1")
    assert not await memory.consume_expectation(client, 1, "create:k", "opened", delivery="g2")


async def test_an_issue_is_created_at_most_once_per_key(client: redis.asyncio.Redis) -> None:
    claims = await asyncio.gather(*(memory.begin_creation(client, 1, "titanic/executor")
                                    for _ in range(10)))
    assert [c.claimed for c in claims].count(True) == 1
    assert {c.number for c in claims} == {None}
    await memory.finish_creation(client, 1, "titanic/executor", 42)
    found = await memory.begin_creation(client, 1, "titanic/executor")
    assert (found.number, found.claimed) == (42, False)
