"""A competition's turn in Redis (reactor/store/turns.py), on a real redis-server: who owns
the turn, what a round takes, and what its closing transaction leaves."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from reactor.core.routing import Scope
from reactor.core.view import Repo
from reactor.store import keys, turns

TITANIC = Scope(Repo("acme", "lab", 1), 7, "titanic")
SCOPE = TITANIC.key


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(redis_url)
    yield connection
    await connection.aclose()


async def test_the_first_to_offer_owns_the_turn_and_the_rest_leave_their_items(
    client: redis.asyncio.Redis,
) -> None:
    assert await turns.offer(client, TITANIC, "d:a", owner="job-a")
    assert not await turns.offer(client, TITANIC, "d:b", owner="job-b")
    assert await turns.offer(client, TITANIC, "w", owner="job-a")  # a retried job still owns it
    assert await client.lrange(keys.pending(SCOPE), 0, -1) == [b"d:a", b"d:b", b"w"]
    assert await client.ttl(keys.turn(SCOPE)) > 0


async def test_who_takes_the_marker_is_on_the_watchdog_until_the_marker_is_gone(
    client: redis.asyncio.Redis,
) -> None:
    """A worker that took the marker and died before running the turn or queuing its job
    would leave what is pending to no one (a delivery finding an item pending leaves the
    marker alone): the scheduler wakes the scope once the marker has expired."""
    before = time.time() * 1000
    assert await turns.offer(client, TITANIC, "w", owner="doomed")
    due = await client.zscore(keys.ROUNDS_RUNNING, TITANIC.dumps())
    ttl = turns.QUEUED_TTL_S * 1000 + turns.WATCHDOG_MARGIN_MS
    assert due is not None and before + ttl <= due <= time.time() * 1000 + ttl
    assert not await turns.offer(client, TITANIC, "d:b", owner="web")
    assert await client.zscore(keys.ROUNDS_RUNNING, TITANIC.dumps()) == due


async def test_a_round_takes_everything_waiting(client: redis.asyncio.Redis) -> None:
    for item in ("d:old", "d:new", "m:moved:{}", "t:3:running:2026-01-01T00:00:00+00:00"):
        await turns.offer(client, TITANIC, item, owner="me")
    taken = await turns.begin(client, TITANIC, owner="me")
    assert taken is not None
    assert taken.items == ("d:old", "d:new", "m:moved:{}", "t:3:running:2026-01-01T00:00:00+00:00")
    assert taken.judged == frozenset() and taken.journals == ()
    assert await client.exists(keys.pending(SCOPE)) == 0
    assert await turns.begin(client, TITANIC, owner="other") is None  # the lease is held


async def test_what_a_dead_round_left_is_taken_with_what_was_judged_since(
    client: redis.asyncio.Redis,
) -> None:
    """A round died mid-way; a hand-off it began was finished by another worker, which
    marked the deliveries its completion accounted for judged and left no journal — or left
    one. The next round takes the dead round's items, told which are judged, and the
    journals in progress."""
    await turns.offer(client, TITANIC, "d:completion", owner="me")
    await turns.offer(client, TITANIC, "d:other", owner="me")
    assert await turns.begin(client, TITANIC, owner="me") is not None
    await turns.mark_judged(client, SCOPE, ["completion"])
    await client.hset(keys.sagas(SCOPE), "saga", b"{}")
    await client.delete(keys.lease(SCOPE))  # the holder died; its lease expired
    again = await turns.begin(client, TITANIC, owner="next")
    assert again is not None and again.items == ("d:completion", "d:other")
    assert again.judged == {"d:completion"} and again.journals == (b"{}",)


async def test_items_a_killed_round_took_are_taken_again_before_newer_ones(
    client: redis.asyncio.Redis,
) -> None:
    await turns.offer(client, TITANIC, "d:a", owner="me")
    first = await turns.begin(client, TITANIC, owner="me")
    assert first is not None
    await turns.offer(client, TITANIC, "d:b", owner="me")
    await client.delete(keys.lease(SCOPE))  # the holder died; its lease expired
    second = await turns.begin(client, TITANIC, owner="next")
    assert second is not None and second.items == ("d:a", "d:b")
    assert second.lease.fence > first.lease.fence


async def test_a_long_wait_moves_into_flight_whole(client: redis.asyncio.Redis) -> None:
    """More items than a script moves at once, behind items already in flight."""
    await turns.offer(client, TITANIC, "d:parked", owner="me")
    taken = await turns.begin(client, TITANIC, owner="me")
    assert taken is not None
    await turns.finish(client, taken, turns.Commit(parked=["d:parked"]))
    items = [f"d:{n}" for n in range(2500)]
    await client.rpush(keys.pending(SCOPE), *items)
    again = await turns.begin(client, TITANIC, owner="me")
    assert again is not None and again.items == ("d:parked", *items)
    assert again.carried == {"d:parked"}  # left in flight by the earlier round


async def test_closing_a_round_keeps_what_is_parked_marks_the_rest_and_ends_the_turn(
    client: redis.asyncio.Redis,
) -> None:
    await turns.offer(client, TITANIC, "d:a", owner="me")
    await turns.offer(client, TITANIC, "d:b", owner="me")
    taken = await turns.begin(client, TITANIC, owner="me")
    assert taken is not None
    commit = turns.Commit(parked=["d:b"], judged=["a"],
                          writes=[lambda pipe: pipe.set("written-with-it", "1")])
    assert await turns.finish(client, taken, commit) is False  # nothing more waits
    assert await client.lrange(keys.inflight(SCOPE), 0, -1) == [b"d:b"]
    assert await client.smembers(keys.judged(SCOPE)) == {b"a"}
    assert await client.get("written-with-it") == b"1"
    assert await client.exists(keys.lease(SCOPE), keys.turn(SCOPE)) == 0
    assert await client.zcard(keys.ROUNDS_RUNNING) == 0


async def test_what_arrives_during_a_round_makes_the_owner_take_another(
    client: redis.asyncio.Redis,
) -> None:
    await turns.offer(client, TITANIC, "d:a", owner="me")
    taken = await turns.begin(client, TITANIC, owner="me")
    assert taken is not None
    assert not await turns.offer(client, TITANIC, "d:b", owner="web")  # the turn is running
    assert await turns.finish(client, taken, turns.Commit(judged=["a"])) is True
    assert await client.get(keys.turn(SCOPE)) == b"me"
    again = await turns.begin(client, TITANIC, owner="me")
    assert again is not None and again.items == ("d:b",)


async def test_a_round_leaves_another_owners_marker_alone(client: redis.asyncio.Redis) -> None:
    """A round that outlived its marker (another job queued meanwhile owns the turn) ends
    without taking the marker from it."""
    await turns.offer(client, TITANIC, "d:a", owner="slow")
    taken = await turns.begin(client, TITANIC, owner="slow")
    assert taken is not None
    await client.set(keys.turn(SCOPE), "queued-later")
    assert await turns.finish(client, taken, turns.Commit(judged=["a"])) is False
    assert await client.get(keys.turn(SCOPE)) == b"queued-later"


async def test_a_failed_round_gives_the_lease_back_and_keeps_its_items(
    client: redis.asyncio.Redis,
) -> None:
    await turns.offer(client, TITANIC, "d:a", owner="me")
    taken = await turns.begin(client, TITANIC, owner="me")
    assert taken is not None
    await turns.release(client, taken)
    retried = await turns.begin(client, TITANIC, owner="me")
    assert retried is not None and retried.items == ("d:a",)


async def test_an_unguarded_round_takes_no_lease(client: redis.asyncio.Redis) -> None:
    """``UNSAFE_DISABLE=lease`` (bench/ and the chaos suite's control)."""
    await turns.offer(client, TITANIC, "d:a", owner="me")
    held = await turns.begin(client, TITANIC, owner="me")
    assert held is not None
    loose = await turns.begin(client, TITANIC, owner="other", guarded=False)
    assert loose is not None


async def test_scripts_are_loaded_again_after_a_flush(client: redis.asyncio.Redis) -> None:
    """A Redis restarted without its script cache: the first call loads the script."""
    await client.script_flush()
    assert await turns.offer(client, TITANIC, "d:a", owner="me")
    taken = await turns.begin(client, TITANIC, owner="me")
    assert taken is not None
    await client.script_flush()
    assert await turns.finish(client, taken, turns.Commit(judged=["a"])) is False
    assert await client.exists(keys.turn(SCOPE), keys.lease(SCOPE)) == 0


async def test_a_round_whose_worker_died_is_overdue_a_lease_later(
    client: redis.asyncio.Redis, redis_url: str,
) -> None:
    """The scheduler finds the rounds that outlived their lease (their worker died): each
    once, then again a lease later should its wake fail too."""
    await turns.offer(client, TITANIC, "d:a", owner="me")
    taken = await turns.begin(client, TITANIC, owner="me")
    assert taken is not None
    sync = redis_sync(redis_url)
    assert turns.overdue(sync) == []  # within its lease
    deadline = await client.zscore(keys.ROUNDS_RUNNING, TITANIC.dumps())
    await client.zadd(keys.ROUNDS_RUNNING, {TITANIC.dumps(): deadline - 60_000})  # time passed
    assert turns.overdue(sync) == [TITANIC.dumps()]
    assert turns.overdue(sync) == []  # pushed a lease further
    await turns.finish(client, taken, turns.Commit(judged=["a"]))
    assert await client.zcard(keys.ROUNDS_RUNNING) == 0


async def test_a_turn_whose_worker_died_between_two_rounds_is_overdue_a_lease_later(
    client: redis.asyncio.Redis, redis_url: str,
) -> None:
    """A round closed with more waiting, and its worker died before the next round began:
    the scope stays among the rounds running, due after the marker the round set is gone,
    so the scheduler's wake then takes the turn."""
    await turns.offer(client, TITANIC, "d:a", owner="me")
    taken = await turns.begin(client, TITANIC, owner="me")
    assert taken is not None
    assert not await turns.offer(client, TITANIC, "d:b", owner="web")  # during the round
    assert await turns.finish(client, taken, turns.Commit(judged=["a"])) is True
    # ... and the worker is killed here.

    sync = redis_sync(redis_url)
    assert turns.overdue(sync) == []  # within a lease
    due = await client.zscore(keys.ROUNDS_RUNNING, TITANIC.dumps())
    assert due is not None, "the scope left the rounds running"
    seconds, micros = await client.time()
    marker_left = await client.pttl(keys.turn(SCOPE))
    assert 0 < marker_left < due - (seconds * 1000 + micros // 1000)
    await client.zadd(keys.ROUNDS_RUNNING, {TITANIC.dumps(): due - 60_000})  # time passed
    assert turns.overdue(sync) == [TITANIC.dumps()]


async def test_a_turn_paused_between_rounds_is_left_to_the_scheduler(
    client: redis.asyncio.Redis,
) -> None:
    """A turn that pauses before its next read leaves the rounds running: the scheduler
    queues the job that goes on (its paused turns), so the watchdog does not wake it too."""
    await turns.offer(client, TITANIC, "d:a", owner="me")
    taken = await turns.begin(client, TITANIC, owner="me")
    assert taken is not None
    await turns.offer(client, TITANIC, "d:b", owner="web")
    assert await turns.finish(client, taken, turns.Commit(judged=["a"])) is True
    await turns.pause(client, TITANIC, owner="next", for_ms=750)
    assert await client.zcard(keys.ROUNDS_RUNNING) == 0
    assert await client.zcard(keys.PAUSED) == 1


def redis_sync(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


async def test_a_paused_turn_keeps_its_marker_for_the_job_that_goes_on_when_the_pause_ends(
    client: redis.asyncio.Redis, redis_url: str,
) -> None:
    """A busy competition's next round waits (reactor/shell/turn.py, ROUND_GAP_S): meanwhile
    the next job holds the marker, so a delivery queues nothing, and the scheduler finds the
    pause over once its time has come — until the job is queued."""
    await turns.offer(client, TITANIC, "d:a", owner="me")
    await turns.pause(client, TITANIC, owner="next", for_ms=60_000)
    assert await client.get(keys.turn(SCOPE)) == b"next"
    assert not await turns.offer(client, TITANIC, "d:b", owner="job-b")  # it waits for "next"
    sync = redis_sync(redis_url)
    assert turns.paused_due(sync) == []  # a minute to go
    entry = f"next {TITANIC.dumps()}"
    await client.zadd(keys.PAUSED, {entry: 0})  # time passed
    assert turns.paused_due(sync) == [("next", TITANIC.dumps())]
    assert turns.paused_due(sync) == [("next", TITANIC.dumps())]  # until its job is queued
    turns.resumed(sync, "next", TITANIC.dumps())
    assert turns.paused_due(sync) == []


async def test_after_reads_in_a_row_the_next_waits_a_gap_and_a_quiet_gap_forgets_them(
    client: redis.asyncio.Redis,
) -> None:
    """The pace of a busy competition's reads (reactor/shell/turn.py, ROUND_GAP_S)."""

    async def read(streak: int) -> None:
        async with client.pipeline(transaction=True) as pipe:
            turns.queue_read(pipe, SCOPE, streak=streak, gap_ms=750)
            await pipe.execute()

    assert await turns.read_pace(client, SCOPE, gap_ms=750, free=2) == (0, 0)
    await read(1)
    assert await turns.read_pace(client, SCOPE, gap_ms=750, free=2) == (0, 1)  # still free
    await read(2)
    wait, streak = await turns.read_pace(client, SCOPE, gap_ms=750, free=2)
    assert 0 < wait <= 750 and streak == 2
    assert 0 < await client.pttl(keys.pace(SCOPE)) <= 750  # a quiet gap forgets the streak
    ahead = int(time.time() * 1000) + 60_000  # another machine's clock, a minute ahead
    await client.set(keys.pace(SCOPE), f"{ahead}:5", px=750)
    assert await turns.read_pace(client, SCOPE, gap_ms=750, free=2) == (750, 5)
