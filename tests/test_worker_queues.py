"""A worker takes jobs from the webhooks' queue and the sweeps' queue without a window in
which a SIGKILL loses one: every job taken sits in its queue's intermediate list until RQ has
registered it, and leaves that list once registered (so RQ's maintenance never runs it twice).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis
import redis.asyncio
from rq import Queue, Retry
from rq.exceptions import DequeueTimeout
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from reactor.core.routing import Scope
from reactor.core.view import Repo
from reactor.entrypoints.worker import WORKED_QUEUES, WorkedQueue, Worker
from reactor.shell import schedule
from reactor.store import keys, turns


def note(path: str) -> str:
    """A job that leaves a line in ``path``."""
    with open(path, "a") as out:
        out.write("ran\n")
    return "noted"


def queues(connection: redis.Redis) -> list[Queue]:
    return [Queue(name, connection=connection) for name in WORKED_QUEUES]


def intermediate(connection: redis.Redis, name: str) -> list[bytes]:
    return connection.lrange(f"rq:queue:{name}:intermediate", 0, -1)


def test_a_job_taken_from_either_queue_waits_in_its_intermediate_list(
    redis_url: str, tmp_path: Path,
) -> None:
    connection = redis.Redis.from_url(redis_url)
    events, sweep = queues(connection)
    swept = sweep.enqueue(note, str(tmp_path / "s"))
    delivered = events.enqueue(note, str(tmp_path / "e"))

    first = WorkedQueue.dequeue_any([events, sweep], None, connection)
    assert first is not None and first[0].id == delivered.id  # webhooks first
    assert intermediate(connection, keys.QUEUE_EVENTS) == [delivered.id.encode()]
    second = WorkedQueue.dequeue_any([events, sweep], None, connection)
    assert second is not None and second[0].id == swept.id
    assert intermediate(connection, keys.QUEUE_SWEEP) == [swept.id.encode()]
    assert WorkedQueue.dequeue_any([events, sweep], None, connection) is None
    with pytest.raises(DequeueTimeout):  # an idle wait ends, so the sweeps are looked at again
        WorkedQueue.dequeue_any([events, sweep], 60, connection)


def test_a_job_whose_worker_died_after_taking_it_is_handed_back(
    redis_url: str, tmp_path: Path,
) -> None:
    """The worker that took the job is gone before registering it: RQ's maintenance (first
    sighting, then a minute later) retries the job instead of losing it."""
    connection = redis.Redis.from_url(redis_url)
    events, sweep = queues(connection)
    job = events.enqueue(note, str(tmp_path / "e"), retry=Retry(max=2, interval=1))
    assert WorkedQueue.dequeue_any([events, sweep], None, connection) is not None

    survivor = Worker(list(WORKED_QUEUES), connection=connection)
    events.intermediate_queue.cleanup(survivor, events)  # first sighting
    first_seen = events.intermediate_queue.get_first_seen_key(job.id)
    connection.set(first_seen, time.time() - 120)
    events.intermediate_queue.cleanup(survivor, events)

    assert intermediate(connection, keys.QUEUE_EVENTS) == []
    assert Job.fetch(job.id, connection=connection).get_status() == JobStatus.SCHEDULED


def test_a_worker_leaves_no_intermediate_entry_for_a_job_it_ran(
    redis_url: str, tmp_path: Path,
) -> None:
    connection = redis.Redis.from_url(redis_url)
    events, sweep = queues(connection)
    done = [events.enqueue(note, str(tmp_path / "e")), sweep.enqueue(note, str(tmp_path / "s"))]

    assert Worker(list(WORKED_QUEUES), connection=connection).work(burst=True)

    assert [job.get_status(refresh=True) for job in done] == [JobStatus.FINISHED] * 2
    assert intermediate(connection, keys.QUEUE_EVENTS) == []
    assert intermediate(connection, keys.QUEUE_SWEEP) == []


async def test_a_turn_job_whose_worker_died_before_its_first_round_is_woken_by_the_watchdog(
    redis_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A turn's job runs without RQ's execution record (LEAN_JOBS): once its worker has taken
    it off the intermediate list, RQ holds it nowhere and never hands it back. The worker
    dies before the turn's first round begins: the scope is among the rounds running all the
    same, and the turn's marker lives no longer than a lease, so once the lease (shortened
    here) and the watchdog's margin have passed, the scheduler finds the scope overdue and
    its wake takes the turn — the delivery still waiting for it."""
    monkeypatch.setattr(turns, "LEASE_TTL_MS", 300)
    monkeypatch.setattr(turns, "WATCHDOG_MARGIN_MS", 100)
    connection = redis.Redis.from_url(redis_url)
    client = redis.asyncio.Redis.from_url(redis_url)
    scope = Scope(Repo("acme", "lab", 1), 7, "titanic")
    owner = turns.owner_id(scope.digest, "d1")
    assert await turns.offer(client, scope, "d:d1", owner=owner)
    schedule.hand_over(connection, scope, owner)  # the turn's job, as a turn queues it
    events, sweep = queues(connection)
    taken = WorkedQueue.dequeue_any([events, sweep], None, connection)
    assert taken is not None and taken[0].id == owner
    Worker(list(WORKED_QUEUES), connection=connection).prepare_job_execution(taken[0])
    # ... and the worker is killed here, before the turn's first round begins.

    assert events.count == 0 and intermediate(connection, keys.QUEUE_EVENTS) == []
    assert owner not in StartedJobRegistry(queue=events)
    deadline = time.monotonic() + 10
    while turns.overdue(connection) != [scope.dumps()]:
        assert time.monotonic() < deadline, "the scheduler never finds the scope overdue"
        await asyncio.sleep(0.05)
    assert await turns.offer(client, scope, turns.WAKE, owner="watchdog")
    assert connection.lrange(keys.pending(scope.key), 0, -1) == [b"d:d1", b"w"]
    await client.aclose()


async def test_a_turn_job_leaves_another_owners_marker_alone(redis_url: str) -> None:
    """A second job of the same turn (queued twice) starts while the first owns the marker:
    the marker keeps its owner and its time to live."""
    connection = redis.Redis.from_url(redis_url)
    client = redis.asyncio.Redis.from_url(redis_url)
    scope = Scope(Repo("acme", "lab", 1), 7, "titanic")
    assert await turns.offer(client, scope, "d:d1", owner="first")
    schedule.hand_over(connection, scope, "second")
    taken = WorkedQueue.dequeue_any(queues(connection), None, connection)
    assert taken is not None
    Worker(list(WORKED_QUEUES), connection=connection).prepare_job_execution(taken[0])

    assert connection.get(keys.turn(scope.key)) == b"first"
    assert connection.ttl(keys.turn(scope.key)) > turns.LEASE_TTL_MS // 1000
    await client.aclose()


def test_a_worker_asked_to_stop_is_not_held_by_its_command_thread(redis_url: str) -> None:
    """RQ's command thread, once it has read its own unsubscribe, waits for a subscription
    before it looks whether it should end; redis-py's ``stop()`` joins it, so with RQ's 60 s
    that wait held a stopping worker for up to a minute (seen under load in the saga tests)."""
    connection = redis.Redis.from_url(redis_url)
    worker = Worker(list(WORKED_QUEUES), connection=connection)
    worker.subscribe()
    thread = worker.pubsub_thread
    assert thread is not None
    deadline = time.monotonic() + 10
    while not worker.pubsub.subscribed and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.pubsub.unsubscribe()  # the thread reads the reply and waits to be subscribed again
    while worker.pubsub.subscribed and time.monotonic() < deadline:
        time.sleep(0.01)

    thread.stop(timeout=10)  # RQ's own thread would wait 60 s

    assert not thread.is_alive()
    worker.pubsub.close()
