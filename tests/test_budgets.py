"""R11's counts on a real redis-server: exact over a moving window that ends at the newest
move, once per delivery, scored by when each move was made (however late it is counted), a
resume forgiving what was made before it, and a paced history never over its budget."""

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


def made(at: float, *guids: str) -> dict[str, float | None]:
    """Deliveries all made at ``at``."""
    return dict.fromkeys(guids, at)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(redis_url)
    await connection.flushdb()
    yield connection
    await connection.aclose()


async def pause_and_resume(client: redis.asyncio.Redis, actor: str, *, at: float) -> None:
    async with client.pipeline(transaction=True) as pipe:
        budgets.queue_paused(pipe, 7, "titanic", actor)
        await pipe.execute()
    await budgets.resumed(client, 1, 7, "titanic", list(MINUTE), now=at)


async def test_counts_are_exact_over_the_moving_window(client: redis.asyncio.Redis) -> None:
    count = await budgets.count(client, 1, {("bot", "moves"): made(1000, "d1", "d2")}, MINUTE,
                                now=1000)
    assert count == {("bot", "moves"): 2}
    later = await budgets.count(client, 1, {("bot", "moves"): made(1059, "d3")}, MINUTE,
                                now=1059)
    assert later == {("bot", "moves"): 3}
    past = await budgets.count(client, 1, {("bot", "moves"): made(1060.5, "d4")}, MINUTE,
                               now=1060.5)
    assert past == {("bot", "moves"): 2}  # d1 and d2 left the window


async def test_a_delivery_counted_twice_counts_once_and_actors_kinds_and_tenants_apart(
    client: redis.asyncio.Redis,
) -> None:
    await budgets.count(client, 1, {("bot", "moves"): made(1000, "d1")}, MINUTE, now=1000)
    again = await budgets.count(client, 1, {("bot", "moves"): made(1000, "d1"),
                                            ("bot", "issues"): made(1001, "o1"),
                                            ("other", "moves"): made(1001, "d2")},
                                MINUTE, now=1001)
    assert again == {("bot", "moves"): 1, ("bot", "issues"): 1, ("other", "moves"): 1}
    elsewhere = await budgets.count(client, 2, {("bot", "moves"): made(1001, "d9")}, MINUTE,
                                    now=1001)
    assert elsewhere == {("bot", "moves"): 1}
    assert 0 < await client.ttl(keys.budget(1, "moves", "bot")) <= 121  # two windows


async def test_a_move_counts_as_of_when_it_was_made_not_when_a_late_round_counts_it(
    client: redis.asyncio.Redis,
) -> None:
    """A burst that waited in a backlog is as dense as it was made (a backlog longer than
    the window hides nothing), and paced moves counted together are not bunched up."""
    burst = {f"b{i}": 1000 + i * 0.5 for i in range(10)}  # ten in five seconds
    late = await budgets.count(client, 1, {("bot", "moves"): burst}, MINUTE, now=1300)
    assert late == {("bot", "moves"): 10}
    paced = {"p1": 2000.0, "p2": 2030.0, "p3": 2060.0, "p4": 2090.0}  # one per half minute
    together = await budgets.count(client, 1, {("honest", "moves"): paced}, MINUTE, now=2095)
    assert together == {("honest", "moves"): 2}  # p3 and p4 within the minute before p4


async def test_a_time_ahead_of_the_count_or_unknown_is_the_counts_own(
    client: redis.asyncio.Redis,
) -> None:
    ahead = await budgets.count(client, 1, {("bot", "moves"): {"d1": 5000.0, "d2": None}},
                                MINUTE, now=1000)
    assert ahead == {("bot", "moves"): 2}
    assert await client.zscore(keys.budget(1, "moves", "bot"), "d1") == 1000  # clamped
    assert await client.zscore(keys.budget(1, "moves", "bot"), "d2") == 1000
    gone = await budgets.count(client, 1, {("bot", "moves"): made(1060, "d3")}, MINUTE,
                               now=1060)
    assert gone == {("bot", "moves"): 1}  # d1 did not linger in the window


async def test_a_resume_starts_the_pausing_actors_counts_afresh(
    client: redis.asyncio.Redis,
) -> None:
    await budgets.count(client, 1, {("bot", "moves"): made(1000, "d1", "d2"),
                                    ("bystander", "moves"): made(1000, "d3")}, MINUTE, now=1000)
    await pause_and_resume(client, "bot", at=1000.5)
    after = await budgets.count(client, 1, {("bot", "moves"): made(1001, "d4"),
                                            ("bystander", "moves"): made(1001, "d5")},
                                MINUTE, now=1001)
    assert after == {("bot", "moves"): 1, ("bystander", "moves"): 2}
    assert await client.get(keys.paused_by(7, "titanic")) is None
    assert 0 < await client.ttl(keys.budget_floor(1, "bot")) <= budgets.FLOOR_TTL_S


async def test_moves_made_before_a_resume_do_not_count_after_it_even_when_counted_later(
    client: redis.asyncio.Redis,
) -> None:
    """The flood that paused the competition, still queued when the maintainer resumed it,
    is forgiven when a later round counts it; what the actor does after the resume counts."""
    flood = {f"f{i}": 1000 + i * 0.1 for i in range(40)}
    first = dict(list(flood.items())[:10])
    assert await budgets.count(client, 1, {("bot", "moves"): first}, MINUTE,
                               now=1004) == {("bot", "moves"): 10}
    await pause_and_resume(client, "bot", at=1005)
    queued = dict(list(flood.items())[10:])  # made before the resume, counted after it
    assert await budgets.count(client, 1, {("bot", "moves"): queued}, MINUTE,
                               now=1006) == {("bot", "moves"): 0}
    after = await budgets.count(client, 1, {("bot", "moves"): made(1007, "a1", "a2")}, MINUTE,
                                now=1007)
    assert after == {("bot", "moves"): 2}
    mixed = {"f5": 1000.5, "a3": 1008.0}  # a retried pre-resume delivery beside a new move
    assert await budgets.count(client, 1, {("bot", "moves"): mixed}, MINUTE,
                               now=1008) == {("bot", "moves"): 3}


async def test_a_resume_forgives_only_the_actor_that_paused_and_every_kind_of_its(
    client: redis.asyncio.Redis,
) -> None:
    await pause_and_resume(client, "bot", at=1005)
    found = await budgets.count(client, 1, {("bot", "moves"): made(1001, "d1"),
                                            ("bot", "issues"): made(1002, "o1"),
                                            ("bystander", "moves"): made(1001, "d2")},
                                MINUTE, now=1010)
    assert found == {("bot", "moves"): 0, ("bot", "issues"): 0, ("bystander", "moves"): 1}
    elsewhere = await budgets.count(client, 2, {("bot", "moves"): made(1001, "d3")}, MINUTE,
                                    now=1010)
    assert elsewhere == {("bot", "moves"): 1}  # another installation's budget


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
@given(paced(), st.floats(0, 90))
def test_property_a_paced_history_is_never_over_its_budget(redis_url: str, times: list[float],
                                                           lag: float) -> None:
    """Counted as each move comes, or each counted up to ``lag`` seconds late."""
    async def play() -> list[int]:
        connection = redis.asyncio.Redis.from_url(redis_url)
        try:
            await connection.delete(keys.budget(1, "moves", "bot"))
            counts = []
            for i, at in enumerate(times):
                found = await budgets.count(connection, 1, {("bot", "moves"): made(1e6 + at,
                                                                                  f"d{i}")},
                                            MINUTE, now=1e6 + at + lag)
                counts.append(found[("bot", "moves")])
            return counts
        finally:
            await connection.aclose()

    assert max(asyncio.run(play())) <= LIMIT


@st.composite
def resumed_history(draw: st.DrawFn) -> tuple[list[float], float, list[int], int]:
    """Moves' times, a resume's, the order rounds count the moves in, and how many of them
    are counted before the resume (only moves made before it can be)."""
    times = draw(st.lists(st.floats(0, 120), min_size=1, max_size=25))
    resume = draw(st.floats(0, 120))
    order = draw(st.permutations(range(len(times))))
    early = [i for i in order if times[i] <= resume]
    before = draw(st.integers(0, len(early)))
    rest = [i for i in order if i not in early[:before]]
    return times, resume, early[:before] + rest, before


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(resumed_history())
def test_property_after_a_resume_only_moves_made_after_it_count(
    redis_url: str, history: tuple[list[float], float, list[int], int],
) -> None:
    """Whatever order the rounds count the moves in, and however late: after the resume a
    round counts exactly the moves made after it within the minute before the round's."""
    times, resume, order, before = history

    async def play() -> None:
        connection = redis.asyncio.Redis.from_url(redis_url)
        try:
            await connection.flushdb()
            for step, i in enumerate(order):
                if step == before:
                    await pause_and_resume(connection, "bot", at=1e6 + resume)
                found = await budgets.count(connection, 1, {("bot", "moves"): made(
                    1e6 + times[i], f"d{i}")}, MINUTE, now=1e6 + 500)
                if step >= before:
                    at = 1e6 + times[i]
                    counted = [1e6 + times[j] for j in order[before:step + 1]]
                    want = len([t for t in counted if max(at - 60, 1e6 + resume) < t <= at])
                    assert found[("bot", "moves")] == want, (step, i)
        finally:
            await connection.aclose()

    asyncio.run(play())


async def test_one_move_over_the_budget_is_counted_over_it(client: redis.asyncio.Redis) -> None:
    found = {}
    for i in range(LIMIT + 1):
        at = 1000 + i * 11.9  # six within 59.5 s
        found = await budgets.count(client, 1, {("bot", "moves"): made(at, f"d{i}")}, MINUTE,
                                    now=at)
    assert found[("bot", "moves")] == LIMIT + 1


async def test_a_steady_actor_keeps_little_more_than_two_windows_of_entries(
    client: redis.asyncio.Redis,
) -> None:
    for i in range(600):  # one move a second for ten minutes, a window of one minute
        found = await budgets.count(client, 1, {("bot", "moves"): made(1000 + i, f"d{i}")},
                                    MINUTE, now=1000 + i)
        assert found[("bot", "moves")] == min(i + 1, 60)
    kept = await client.zcard(keys.budget(1, "moves", "bot"))
    assert 120 <= kept < 120 + 8 * budgets.TRIM_EVERY  # trimmed now and then, never all kept
