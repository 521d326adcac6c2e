"""Leases with fencing tokens, on a real redis-server, taken as the product takes them: by the
script that begins a round of a competition's turn (:func:`reactor.store.turns.begin`),
checked before each write (:meth:`Lease.check`) and given back when the round closes
(:func:`reactor.store.turns.finish`) or fails (:func:`reactor.store.turns.release`)."""

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
from reactor.core.routing import Scope
from reactor.core.view import Repo
from reactor.store import keys, turns
from tests.conftest import stop_group

LAB = Repo("acme", "lab", 1)
TITANIC = Scope(LAB, 7, "titanic")
OTHER = Scope(LAB, 7, "other")
LONE_ISSUE = Scope(LAB, 7, None, 7)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(redis_url)
    yield connection
    await connection.aclose()


async def test_a_lease_is_exclusive_until_released_and_fences_only_grow(
    client: redis.asyncio.Redis,
) -> None:
    first = await turns.begin(client, TITANIC, owner="a")
    assert first is not None
    assert await turns.begin(client, TITANIC, owner="b") is None
    assert await turns.begin(client, OTHER, owner="b") is not None
    await turns.finish(client, first, turns.Commit())
    second = await turns.begin(client, TITANIC, owner="b")
    assert second is not None and second.lease.fence > first.lease.fence


async def test_an_unguarded_lease_holds_nothing_and_never_fails_its_check(
    client: redis.asyncio.Redis,
) -> None:
    """``UNSAFE_DISABLE=lease`` (bench/ and the chaos suite's control): everyone holds it."""
    held = await turns.begin(client, TITANIC, owner="a")
    assert held is not None
    loose = await turns.begin(client, TITANIC, owner="b", guarded=False)
    assert loose is not None
    await loose.lease.check()
    await turns.release(client, loose)
    await held.lease.check()  # the guarded holder's lease was not touched


async def test_a_lost_lease_fails_its_check_and_cannot_release_the_new_holders(
    client: redis.asyncio.Redis,
) -> None:
    stale = await turns.begin(client, LONE_ISSUE, owner="a")
    assert stale is not None
    await stale.lease.check()
    await client.delete(keys.lease(LONE_ISSUE.key))  # the lease expired
    fresh = await turns.begin(client, LONE_ISSUE, owner="b")
    assert fresh is not None
    with pytest.raises(LeaseLost):
        await stale.lease.check()
    await turns.release(client, stale)
    await fresh.lease.check()


WORKER = textwrap.dedent("""
    import asyncio, sys
    import redis.asyncio
    from reactor.core.routing import Scope
    from reactor.core.view import Repo
    from reactor.store import turns

    async def main(url, name):
        client = redis.asyncio.Redis.from_url(url)
        scope = Scope(Repo("acme", "lab", 1), 7, "race")
        done = 0
        while done < 40:
            taken = await turns.begin(client, scope, owner=name)
            if taken is None:
                await asyncio.sleep(0.001)
                continue
            holders = await client.incr("holders")
            await client.rpush("entries", f"{taken.lease.fence}:{holders}")
            await taken.lease.check()
            await client.decr("holders")
            await turns.finish(client, taken, turns.Commit())
            done += 1
        await client.aclose()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
""")


def test_four_processes_racing_never_hold_one_scope_together(redis_url: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, redis_url, f"w{i}"],
                              start_new_session=True) for i in range(4)]
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
        won = await asyncio.gather(*(turns.begin(client, TITANIC, owner=f"t{i}")
                                     for i in range(50)))
        await client.aclose()
        return [taken.lease.fence for taken in won if taken is not None]

    assert len(asyncio.run(main())) == 1
