"""R11's counts on a real redis-server: exact over a moving window, once per delivery, and a
paced history never over its budget."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import redis.asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactor.store import budgets, keys

MINUTE = {"moves": timedelta(minutes=1), "issues": timedelta(hours=1)}


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(redis_url)
    await connection.flushdb()
    yield connection
    await connection.aclose()


async def test_counts_are_exact_over_the_moving_window(client: redis.asyncio.Redis) -> None:
    count = await budgets.count(client, 1, {("bot", "moves"): ["d1", "d2"]}, MINUTE, now=1000)
    assert count == {("bot", "moves"): 2}
    later = await budgets.count(client, 1, {("bot", "moves"): ["d3"]}, MINUTE, now=1059)
    assert later == {("bot", "moves"): 3}
    past = await budgets.count(client, 1, {("bot", "moves"): ["d4"]}, MINUTE, now=1060.5)
    assert past == {("bot", "moves"): 2}  # d1 and d2 left the window


async def test_a_delivery_counted_twice_counts_once_and_actors_kinds_and_tenants_apart(
    client: redis.asyncio.Redis,
) -> None:
    await budgets.count(client, 1, {("bot", "moves"): ["d1"]}, MINUTE, now=1000)
    again = await budgets.count(client, 1, {("bot", "moves"): ["d1"], ("bot", "issues"): ["o1"],
                                            ("other", "moves"): ["d2"]}, MINUTE, now=1001)
    assert again == {("bot", "moves"): 1, ("bot", "issues"): 1, ("other", "moves"): 1}
    elsewhere = await budgets.count(client, 2, {("bot", "moves"): ["d9"]}, MINUTE, now=1001)
    assert elsewhere == {("bot", "moves"): 1}
    assert 0 < await client.ttl(keys.budget(1, "moves", "bot")) <= 61


async def test_a_resume_starts_the_pausing_actors_counts_afresh(
    client: redis.asyncio.Redis,
) -> None:
    await budgets.count(client, 1, {("bot", "moves"): ["d1", "d2"], ("bystander", "moves"):
                                    ["d3"]}, MINUTE, now=1000)
    async with client.pipeline(transaction=True) as pipe:
        budgets.queue_paused(pipe, 7, "titanic", "bot")
        await pipe.execute()
    await budgets.resumed(client, 1, 7, "titanic", list(MINUTE))
    after = await budgets.count(client, 1, {("bot", "moves"): ["d4"], ("bystander", "moves"):
                                            ["d5"]}, MINUTE, now=1001)
    assert after == {("bot", "moves"): 1, ("bystander", "moves"): 2}
    assert await client.get(keys.paused_by(7, "titanic")) is None


@st.composite
def paced(draw: st.DrawFn) -> list[float]:
    """Times of one actor's moves, no more than ``LIMIT`` within any minute."""
    times: list[float] = []
    t = 0.0
    for _ in range(draw(st.integers(1, 60))):
        t += draw(st.floats(0, 30))
        if len([x for x in times if x > t - 60]) < LIMIT:
            times.append(t)
    return times


LIMIT = 5


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(paced())
def test_property_a_paced_history_is_never_over_its_budget(redis_url: str,
                                                           times: list[float]) -> None:
    async def play() -> list[int]:
        connection = redis.asyncio.Redis.from_url(redis_url)
        try:
            await connection.delete(keys.budget(1, "moves", "bot"))
            counts = []
            for i, at in enumerate(times):
                found = await budgets.count(connection, 1, {("bot", "moves"): [f"d{i}"]},
                                            MINUTE, now=1e6 + at)
                counts.append(found[("bot", "moves")])
            return counts
        finally:
            await connection.aclose()

    assert max(asyncio.run(play())) <= LIMIT


async def test_one_move_over_the_budget_is_counted_over_it(client: redis.asyncio.Redis) -> None:
    found = {}
    for i in range(LIMIT + 1):
        found = await budgets.count(client, 1, {("bot", "moves"): [f"d{i}"]}, MINUTE,
                                    now=1000 + i * 11.9)  # six within 59.5 s
    assert found[("bot", "moves")] == LIMIT + 1


async def test_a_steady_actor_keeps_little_more_than_a_window_of_entries(
    client: redis.asyncio.Redis,
) -> None:
    for i in range(300):  # one move a second for five minutes, a window of one minute
        found = await budgets.count(client, 1, {("bot", "moves"): [f"d{i}"]}, MINUTE,
                                    now=1000 + i)
        assert found[("bot", "moves")] == min(i + 1, 60)
    kept = await client.zcard(keys.budget(1, "moves", "bot"))
    assert 60 <= kept < 60 + 8 * budgets.TRIM_EVERY  # trimmed now and then, never all kept
