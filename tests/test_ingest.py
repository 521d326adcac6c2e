"""The ingest step against a real redis-server: exactly-once acceptance and its RESP writer."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio
from redis.asyncio.connection import Connection
from rq import Queue
from rq.job import Job

from reactor.core.errors import StoreUnavailable
from reactor.core.routing import Scope
from reactor.core.view import Repo
from reactor.store import deliveries, keys, turns
from reactor.store.accept import (
    JOB_FAILURE_TTL_S,
    JOB_FUNC,
    JOB_RESULT_TTL_S,
    JOB_RETRY,
    JOB_TIMEOUT_S,
    TURN_FUNC,
    UNACCEPTED_TTL_S,
    JobTemplate,
    _lua_string,
    accept_script,
)
from reactor.store.deliveries import Delivery
from reactor.store.ingest import Ingest, pack
from tests.conftest import RedisServer, free_port

QUEUE = f"rq:queue:{keys.QUEUE_EVENTS}"


def delivery(guid: str | None = None, body: bytes = b'{"action": "labeled"}') -> Delivery:
    return Delivery(guid=guid or str(uuid.uuid4()), event="issues", body=body,
                    received_at=time.time(), hook_id="7", target_type="integration")


@pytest.fixture
async def ingest(redis_url: str) -> AsyncIterator[Ingest]:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        async with Ingest(client) as running:
            yield running
    finally:
        await client.aclose()


@pytest.mark.parametrize("args", [
    (b"SET", b"k", b"v" * 70_000, b"NX"), (b"EVALSHA", b"", b"\r\n\x00\xff"), (b"PING",),
])
def test_pack_writes_what_redis_py_writes(args: tuple[bytes, ...]) -> None:
    assert pack(*args) == b"".join(Connection().pack_command(*args))


def test_lua_string_literals_keep_every_byte(redis_url: str) -> None:
    every_byte = bytes(range(256))
    client = redis.Redis.from_url(redis_url)
    assert client.eval(f"return {_lua_string(every_byte)}", 0) == every_byte


async def test_a_delivery_is_stored_marked_and_enqueued_once(
    ingest: Ingest, redis_url: str
) -> None:
    sent = delivery()
    assert await ingest.accept(sent) is True
    assert await ingest.accept(sent) is False
    store = redis.Redis.from_url(redis_url)
    assert deliveries.decode(sent.guid, store.get(keys.delivery(sent.guid))) == sent
    assert store.ttl(keys.delivery(sent.guid)) > keys.DELIVERY_TTL_S - 60
    assert store.lrange(QUEUE, 0, -1) == [sent.guid.encode()]


async def test_the_script_stores_a_guid_once_and_a_duplicate_changes_nothing(
    redis_url: str,
) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    template, guid = JobTemplate(), "once"
    record = keys.delivery(guid)

    async def accept(body: bytes) -> object:
        return await client.eval(
            accept_script(template), 6, template.queue_key, template.queues_key,
            record, template.job_prefix + guid.encode(), record, record,
            "2024-01-01T00:00:00.000000Z", guid, guid, template.data(guid),
            template.description(guid), "", body)

    assert await accept(b"first") == [1]
    assert await accept(b"second") == [0]
    assert await client.get(record) == b"first"
    assert await client.ttl(record) > keys.DELIVERY_TTL_S - 60
    assert await client.lrange(QUEUE, 0, -1) == [guid.encode()]
    await client.aclose()


async def test_a_record_left_unaccepted_expires_or_is_taken_by_the_redelivery_once(
    ingest: Ingest, redis_url: str
) -> None:
    sent = delivery()
    store = redis.Redis.from_url(redis_url)
    # What an older web process's SET that landed without its script (a 503 mid-round-trip)
    # left behind:
    store.set(keys.delivery(sent.guid), sent.header() + sent.body, ex=UNACCEPTED_TTL_S)
    assert 0 < store.ttl(keys.delivery(sent.guid)) <= UNACCEPTED_TTL_S
    assert await ingest.accept(sent) is True
    assert store.ttl(keys.delivery(sent.guid)) > keys.DELIVERY_TTL_S - 60
    assert await ingest.accept(sent) is False
    assert store.llen(QUEUE) == 1


async def test_concurrent_deliveries_share_round_trips_and_each_gets_its_answer(
    ingest: Ingest, redis_url: str
) -> None:
    unique = [delivery() for _ in range(200)]
    answers = await asyncio.gather(*(ingest.accept(d) for d in unique + unique[:50]))
    assert answers[:200] == [True] * 200 and answers[200:] == [False] * 50
    store = redis.Redis.from_url(redis_url)
    assert sorted(store.lrange(QUEUE, 0, -1)) == sorted(d.guid.encode() for d in unique)


SCOPE = Scope(Repo("acme", "lab", 1), 7, "titanic")


async def test_deliveries_of_a_scope_wait_for_its_one_turn(
    ingest: Ingest, redis_url: str
) -> None:
    """The first delivery of a competition queues its turn; the next ones, while that turn is
    queued, cost no job of their own: they wait in the scope's pending list. A duplicate is
    neither queued nor left twice."""
    sent = [delivery() for _ in range(5)]
    answers = [await ingest.accept(d, SCOPE) for d in sent]
    assert answers == [True] * 5 and await ingest.accept(sent[0], SCOPE) is False
    store = redis.Redis.from_url(redis_url)
    owner = turns.owner_id(SCOPE.digest, sent[0].guid)
    assert store.lrange(QUEUE, 0, -1) == [owner.encode()]
    assert store.get(keys.turn(SCOPE.key)) == owner.encode()
    assert store.lrange(keys.pending(SCOPE.key), 0, -1) == [
        turns.delivery_item(d.guid).encode() for d in sent]
    job = Job.fetch(owner, connection=store)
    assert (job.func_name, job.args) == (TURN_FUNC, (SCOPE.dumps(),))


async def test_a_scope_without_a_turn_gets_one_again(ingest: Ingest, redis_url: str) -> None:
    """Once the turn is over (it took what was pending and let its marker go), the next
    delivery queues a new one; other scopes' turns are their own."""
    other = Scope(Repo("acme", "lab", 1), 7, "house")
    first, second, elsewhere = delivery(), delivery(), delivery()
    await ingest.accept(first, SCOPE)
    store = redis.Redis.from_url(redis_url)
    store.delete(keys.turn(SCOPE.key), keys.pending(SCOPE.key))  # the turn ended
    await ingest.accept(second, SCOPE)
    await ingest.accept(elsewhere, other)
    assert store.lrange(QUEUE, 0, -1) == [
        turns.owner_id(SCOPE.digest, g).encode() for g in (first.guid, second.guid)
    ] + [turns.owner_id(other.digest, elsewhere.guid).encode()]


async def test_a_delivery_finding_an_item_pending_leaves_the_turn_marker_alone(
        ingest: Ingest, redis_url: str) -> None:
    """An item pending means a turn is queued or running, or the scope is on the turn's
    watchdog: the delivery joins it, at the cost of one command (its RPUSH), not two."""
    first, second = delivery(), delivery()
    await ingest.accept(first, SCOPE)
    store = redis.Redis.from_url(redis_url)
    store.delete(keys.turn(SCOPE.key))  # as if it expired, the first item still pending
    await ingest.accept(second, SCOPE)
    assert store.lrange(QUEUE, 0, -1) == [turns.owner_id(SCOPE.digest, first.guid).encode()]
    assert store.lrange(keys.pending(SCOPE.key), 0, -1) == [
        f"d:{g}".encode() for g in (first.guid, second.guid)]
    assert store.exists(keys.turn(SCOPE.key)) == 0


async def test_the_job_hash_is_the_one_rq_writes_itself(ingest: Ingest, redis_url: str) -> None:
    ours, theirs = delivery(), str(uuid.uuid4())
    await ingest.accept(ours)
    store = redis.Redis.from_url(redis_url)
    Queue(keys.QUEUE_EVENTS, connection=store).enqueue_call(
        JOB_FUNC, args=(theirs,), job_id=theirs, timeout=JOB_TIMEOUT_S,
        result_ttl=JOB_RESULT_TTL_S, failure_ttl=JOB_FAILURE_TTL_S, retry=JOB_RETRY,
    )
    mine, rqs = store.hgetall(f"rq:job:{ours.guid}"), store.hgetall(f"rq:job:{theirs}")
    assert mine.keys() == rqs.keys()
    same = mine.keys() - {b"created_at", b"enqueued_at", b"data", b"description"}
    assert {k: mine[k] for k in same} == {k: rqs[k] for k in same}
    job = Job.fetch(ours.guid, connection=store)  # data stored uncompressed reads back
    assert (job.func_name, job.args, job.kwargs) == (JOB_FUNC, (ours.guid,), {})


async def test_an_idle_connection_survives_a_redis_restart(
    ingest: Ingest, redis_server: RedisServer, redis_url: str
) -> None:
    assert await ingest.accept(delivery()) is True
    redis_server.stop()
    redis_server.start()
    sent = delivery()
    assert await ingest.accept(sent) is True  # the script cache is gone too (NOSCRIPT)
    assert await ingest.accept(sent) is False


class Loading:
    """A proxy in front of Redis that, while ``loading``, answers every command as a Redis
    just restarted answers while it reads its data back (``-LOADING``)."""

    def __init__(self, target: str) -> None:
        self.target = redis.Redis.from_url(target).connection_pool.connection_kwargs
        self.loading = False
        self.refused = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream = await asyncio.open_connection(
            self.target["host"], self.target["port"])

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                sink.write(data)
        back = asyncio.ensure_future(pipe(upstream_reader, writer))
        while data := await reader.read(65536):
            if self.loading:
                self.refused += 1
                writer.write(b"-LOADING Redis is loading the dataset in memory\r\n")
            else:
                upstream.write(data)
        back.cancel()
        upstream.close()
        writer.close()


async def test_a_delivery_that_meets_redis_reading_its_data_back_waits_for_it(
    redis_url: str,
) -> None:
    """After a restart Redis answers LOADING for a moment; the delivery waits it out and gets
    its 202 rather than a 503 that GitHub would never retry."""
    proxy = Loading(redis_url)
    server = await asyncio.start_server(proxy.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = redis.asyncio.Redis.from_url(f"redis://127.0.0.1:{port}/0")
    store = redis.Redis.from_url(redis_url)
    try:
        async with Ingest(client) as ingest:
            proxy.loading = True
            asyncio.get_running_loop().call_later(0.5, setattr, proxy, "loading", False)
            sent = delivery()
            assert await ingest.accept(sent) is True
        assert proxy.refused > 0
        assert store.lrange(QUEUE, 0, -1) == [sent.guid.encode()]
    finally:
        await client.aclose()
        server.close()


# A deadline for a hang, not a timing assertion: far past any timeout these tests set, far
# short of the forever that a missing timeout would wait.
HANG_S = 30.0


async def test_a_redis_that_stops_answering_is_store_unavailable_within_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A listener that never replies stands for a hung Redis (or a frozen fork): only the
    ingest's own timeout can end the wait, with StoreUnavailable (so a 503)."""
    monkeypatch.setattr("reactor.store.ingest.STORE_TIMEOUT_S", 0.2)
    silent = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    client = redis.asyncio.Redis.from_url(f"redis://127.0.0.1:{port}/0")
    async with Ingest(client) as ingest:
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(ingest.accept(delivery()), HANG_S)
    await client.aclose()
    silent.close()


async def test_with_redis_unreachable_accept_fails_fast_and_marks_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refused connection fails the delivery at once: with the store's timeout made far
    longer than the deadline, an ingest that waited it out would miss the deadline."""
    monkeypatch.setattr("reactor.store.ingest.STORE_TIMEOUT_S", 10 * HANG_S)
    client = redis.asyncio.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    async with Ingest(client) as ingest:
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(ingest.accept(delivery()), HANG_S)
    await client.aclose()
