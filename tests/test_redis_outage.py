"""A short Redis outage costs no 503, and a 503 it did cost is caught up at once.

The web process's ingest keeps the deliveries that arrive while Redis does not answer (bounded
in number and bytes), tries to reach Redis again one attempt at a time with backoff, and
stores them the moment it answers, within GitHub's 10 s answer budget. A delivery it had to
refuse (its deadline passed) is remembered, and once Redis answers the catch-up is brought
forward, so GitHub's redelivery comes at once rather than within the minute.

In-process tests put a :class:`Proxy` between the ingest and a real redis-server to cut it
off and count its connections; the others run the real processes (``stack``) and stop and
start redis-server on its port.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import redis
import redis.asyncio

from ghsandbox.config import SandboxConfig
from ghsandbox.testing import SandboxClient, run_receiver, run_sandbox
from reactor.core.errors import StoreUnavailable
from reactor.github import GitHubClient
from reactor.shell import catchup
from reactor.store import keys
from reactor.store import waiting as waiting_room
from reactor.store.deliveries import Delivery
from reactor.store.ingest import CATCH_UP_PERIOD, Ingest
from tests.conftest import RedisServer, Stack, webhook_headers
from tests.scenarios.conftest import app_jwt
from tests.test_recovery import DEADLINE_S, wait_until

QUEUE = f"rq:queue:{keys.QUEUE_EVENTS}"


def delivery(guid: str | None = None, body: bytes = b'{"action": "labeled"}') -> Delivery:
    return Delivery(guid=guid or str(uuid.uuid4()), event="issues", body=body,
                    received_at=time.time(), hook_id="7", target_type="integration")


class Proxy:
    """A TCP proxy in front of Redis that a test can cut: :meth:`cut` closes every
    connection and, until ``down`` is cleared, each new one is taken and never answered (a
    Redis that is away, or a machine gone), counting the attempts and how many are held at
    once; ``drop_next_reply`` forwards the next request and closes the connection before
    Redis's answer gets back."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.down = False
        self.drop_next_reply = False
        self.attempts = 0  # connections made while down
        self.open = 0
        self.most_open = 0  # the most connections held at once while down
        self._clients: set[asyncio.StreamWriter] = set()
        self.attempted: asyncio.Queue[int] = asyncio.Queue()  # one item per attempt while down

    def cut(self) -> None:
        self.down = True
        for writer in self._clients:
            writer.close()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            await self._hold(reader, writer)
            return
        self._clients.add(writer)
        try:
            await self._forward(reader, writer)
        finally:
            self._clients.discard(writer)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream = await asyncio.open_connection("127.0.0.1", self.port)
        back = asyncio.ensure_future(self._pipe(upstream_reader, writer))
        try:
            while data := await reader.read(65536):
                if self.down:
                    break
                upstream.write(data)
                if self.drop_next_reply:
                    self.drop_next_reply = False
                    back.cancel()
                    await upstream.drain()
                    await asyncio.sleep(0.2)  # Redis runs the commands; their answer is lost
                    break
        finally:
            back.cancel()
            upstream.close()
            writer.close()

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.attempts += 1
        self.attempted.put_nowait(self.attempts)
        await asyncio.sleep(0.05)  # a connection the client just closed is seen closed first
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            await reader.read()  # until the client gives up on it
        finally:
            self.open -= 1
            writer.close()

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await source.read(65536):
                sink.write(data)


@asynccontextmanager
async def proxied(redis_server: RedisServer) -> AsyncIterator[tuple[Proxy, Ingest]]:
    """An ingest whose Redis is reached through a :class:`Proxy`."""
    proxy = Proxy(redis_server.port)
    server = await asyncio.start_server(proxy.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = redis.asyncio.Redis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        async with Ingest(client) as ingest:
            assert await ingest.accept(delivery()) is True  # connected, script loaded
            yield proxy, ingest
    finally:
        await client.aclose()
        server.close()


@pytest.fixture
def store(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


async def test_deliveries_that_arrive_while_redis_is_away_wait_and_are_stored_once_it_answers(
    redis_server: RedisServer, store: redis.Redis,
) -> None:
    """Twenty deliveries wait through an outage; meanwhile the ingest tries one connection at
    a time (never twenty), and once Redis answers each is accepted and queued exactly once."""
    async with proxied(redis_server) as (proxy, ingest):
        store.delete(QUEUE)
        proxy.cut()
        sent = [delivery() for _ in range(20)]
        waiting = [asyncio.ensure_future(ingest.accept(d)) for d in sent]
        for _ in range(3):  # the outage lasts while the ingest tries again, and again
            await proxy.attempted.get()
        assert not any(task.done() for task in waiting)
        proxy.down = False
        assert await asyncio.gather(*waiting) == [True] * 20
    assert proxy.most_open == 1
    assert sorted(store.lrange(QUEUE, 0, -1)) == sorted(d.guid.encode() for d in sent)
    assert all(store.exists(keys.delivery(d.guid)) for d in sent)


async def test_a_reply_lost_with_its_connection_still_accepts_the_delivery_once(
    redis_server: RedisServer, store: redis.Redis,
) -> None:
    """Redis ran the accept script but its answer was lost: the delivery is sent again, found
    by its seen-marker, and answered as a duplicate (a 2xx) — queued once, not twice."""
    async with proxied(redis_server) as (proxy, ingest):
        store.delete(QUEUE)
        sent = delivery()
        proxy.drop_next_reply = True
        assert await ingest.accept(sent) is False  # "already accepted": by the lost attempt
        assert await ingest.accept(sent) is False
    assert store.lrange(QUEUE, 0, -1) == [sent.guid.encode()]


async def test_deliveries_past_the_waiting_bound_are_refused_at_once(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While Redis is away at most MAX_WAITING deliveries (and MAX_WAITING_BYTES of payload)
    wait in memory; one more is refused while they still wait."""
    monkeypatch.setattr(waiting_room, "MAX_WAITING", 3)
    monkeypatch.setattr(waiting_room, "MAX_WAITING_BYTES", 1000)
    async with proxied(redis_server) as (proxy, ingest):
        proxy.cut()
        waiting = [asyncio.ensure_future(ingest.accept(delivery())) for _ in range(3)]
        await asyncio.sleep(0)
        with pytest.raises(StoreUnavailable, match="wait for Redis"):
            await ingest.accept(delivery())
        assert not any(task.done() for task in waiting)
        proxy.down = False
        assert await asyncio.gather(*waiting) == [True] * 3
        proxy.cut()
        big = asyncio.ensure_future(ingest.accept(delivery(body=b"x" * 900)))
        await asyncio.sleep(0)
        with pytest.raises(StoreUnavailable, match="wait for Redis"):
            await ingest.accept(delivery(body=b"y" * 200))
        proxy.down = False
        assert await big is True


async def test_a_guid_refused_while_redis_was_away_brings_the_catch_up_forward(
    redis_server: RedisServer, store: redis.Redis,
) -> None:
    """A delivery whose deadline passes is refused (503); once Redis answers, the catch-up's
    period marker and the GUID's redelivery hold are gone, so the scheduler runs the catch-up
    at once and it asks GitHub for that GUID whatever it asked before."""
    refused = delivery()
    store.set(CATCH_UP_PERIOD, "the minute's run is not due", ex=3600)
    store.set(keys.redelivery_hold(refused.guid), 1, ex=3600)
    async with proxied(redis_server) as (proxy, ingest):
        proxy.cut()
        loop = asyncio.get_running_loop()
        with pytest.raises(StoreUnavailable, match="did not answer"):
            await ingest.accept(refused, deadline=loop.time() + 0.5)
        assert store.exists(CATCH_UP_PERIOD, keys.redelivery_hold(refused.guid)) == 2
        proxy.down = False
        deadline = loop.time() + DEADLINE_S
        while store.exists(CATCH_UP_PERIOD, keys.redelivery_hold(refused.guid)):
            assert loop.time() < deadline, "the ingest never told Redis what it refused"
            await asyncio.sleep(0.05)
    assert not store.exists(keys.delivery(refused.guid))  # refused: nothing was accepted


def test_the_catch_up_is_asked_for_again_a_few_times_until_every_refused_guid_is_seen() -> None:
    """The ingest's chase (pure bookkeeping): asks at the given moments after the hand-over,
    no more once every GUID is seen accepted, and none past the last."""
    chase = waiting_room.Chase((2.0, 5.0))
    chase.start(["a", "b"], now=100.0)
    assert (chase.next_due(), chase.is_due(101.9), chase.is_due(102.0)) == (102.0, False, True)
    assert chase.ask() == ["a", "b"]
    chase.seen(["a"])
    assert chase.next_due() == 105.0
    chase.seen(["b"])
    assert chase.next_due() is None and not chase.is_due(1e9)
    chase.start(["c"], now=200.0)
    assert chase.ask() == ["c"] and chase.ask() == ["c"]
    assert chase.next_due() is None and chase.guids == {}  # the minute's run takes over


async def test_a_catch_up_asked_for_while_another_runs_waits_for_it_rather_than_skip(
    redis_url: str,
) -> None:
    """The run the web process brings forward may find the minute's run still going: it waits
    for that run's end (here, its lock expiring after a second) and then does its work."""
    with run_receiver(status=503) as receiver, run_sandbox(SandboxConfig.generate()) as sandbox:
        with sandbox.client() as client:
            client.control("POST", "hooks", {"url": receiver.url})
            client.create_repo("acme", "widgets")  # its installation webhook is refused
            client.drain(timeout=30)
        store = redis.asyncio.Redis.from_url(redis_url)
        config = sandbox.config
        try:
            await store.set(keys.CATCHUP_LOCK, "another run", px=1000)
            async with GitHubClient(app_id=config.app_id, private_key=config.private_key_pem,
                                    redis=store, api_url=sandbox.url) as github:
                done = await catchup.run_once(github.app, store, now=datetime.now(UTC))
        finally:
            await store.aclose()
    assert done.startswith("read ") and "redelivered 1," in done, done


# -- real processes ------------------------------------------------------------------------


@contextmanager
def redis_away(redis_server: RedisServer, *, until: threading.Event) -> Iterator[None]:
    """Redis stopped now and started again once ``until`` is set (or the block ends)."""
    redis_server.stop()
    started = threading.Event()

    def restart() -> None:
        until.wait()
        redis_server.start()
        started.set()

    thread = threading.Thread(target=restart, daemon=True)
    thread.start()
    try:
        yield
    finally:
        until.set()
        thread.join()
        assert started.is_set()


def issue_payload(stack: Stack, repo: str) -> dict[str, Any]:
    """A real ``issues.opened`` payload of ``repo``, from the App's delivery log."""
    config = stack.sandbox.config
    headers = {"Authorization": f"Bearer {app_jwt(config)}"}
    with httpx.Client(base_url=stack.sandbox.url, headers=headers, timeout=15) as http:
        for item in http.get("/app/hook/deliveries?per_page=100").json():
            if item["event"] == "issues" and item["action"] == "opened":
                detail = http.get(f"/app/hook/deliveries/{item['id']}").json()
                payload: dict[str, Any] = detail["request"]["payload"]
                if payload["repository"]["full_name"] == repo:
                    return payload
    raise AssertionError(f"no issues.opened delivery of {repo} in the App's delivery log")


def quiet(stack: Stack, sandbox: SandboxClient, connection: redis.Redis) -> None:
    """Wait until the reactor has handled what the sandbox sent (the labels it creates on
    installation send webhooks of their own) and nothing more is sent."""
    last = -1
    while True:
        sandbox.drain(timeout=30)
        sent = len(sandbox.webhooks())
        if sent == last and not connection.llen(QUEUE):
            return
        last = sent
        wait_until("the reactor goes quiet", lambda: not connection.llen(QUEUE), stack=stack)
        time.sleep(0.5)


def post(stack: Stack, body: bytes, guid: str) -> int:
    headers = webhook_headers(body, stack.sandbox.config.webhook_secret, guid=guid)
    return httpx.post(stack.webhook_url, content=body, headers=headers, timeout=15).status_code


@pytest.mark.timeout(300)
def test_deliveries_sent_during_a_two_second_redis_restart_are_accepted_not_refused(
    stack: Stack, redis_server: RedisServer,
) -> None:
    """GitHub's webhooks and signed deliveries posted at once while Redis is stopped for two
    seconds: each is answered 2xx (none 503) and handled by the workers."""
    sandbox = stack.sandbox.client()
    sandbox.create_repo("acme", "widgets")
    sandbox.as_user("alice", "POST", "/repos/acme/widgets/issues", json={"title": "first"})
    sandbox.drain(timeout=30)
    body = orjson.dumps(issue_payload(stack, "acme/widgets"))
    before = len(sandbox.webhooks())
    posted: dict[str, int] = {}
    guids = [str(uuid.uuid4()) for _ in range(6)]
    senders = [threading.Thread(target=lambda g=g: posted.__setitem__(g, post(stack, body, g)))
               for g in guids]
    back = threading.Event()
    with redis_away(redis_server, until=back):
        for sender in senders:
            sender.start()
        for n in range(2):
            created = sandbox.as_user("alice", "POST", "/repos/acme/widgets/issues",
                                      json={"title": f"during the outage {n}"})
            assert created.status_code == 201, created.text
        time.sleep(2.0)  # the outage: every delivery above was sent before it ends
    for sender in senders:
        sender.join(30)
    sandbox.drain(timeout=60)
    hooks = sandbox.webhooks(since=before)
    assert posted == dict.fromkeys(guids, 202)
    # 2xx, none 503: 202, or 200 for a webhook whose first attempt Redis took just as it
    # stopped, its answer lost — sent again, it is found accepted (once).
    assert len(hooks) >= 2 and all(h["status_code"] in (200, 202) for h in hooks), [
        (h["event"], h["action"], h["status_code"]) for h in hooks]
    for guid in [*guids, *(h["guid"] for h in hooks)]:
        stack.wait_for_audit(lambda record, guid=guid: guid in record.guids(),
                             timeout=DEADLINE_S)


@pytest.mark.timeout(300)
def test_a_delivery_refused_while_redis_was_down_is_redelivered_once_redis_is_back(
    stack: Stack, redis_server: RedisServer,
) -> None:
    """Redis stays down past the web's answer budget: the webhook is answered 503. With the
    minute's catch-up not due for an hour, only the web's word brings the catch-up forward:
    once Redis is back it asks GitHub to redeliver that GUID, which is then accepted and
    handled."""
    connection = redis.Redis.from_url(stack.redis_url)
    sandbox = stack.sandbox.client()
    sandbox.create_repo("acme", "gadgets")
    quiet(stack, sandbox, connection)
    wait_until("the first catch-up has run", lambda: bool(
        connection.exists(keys.CATCHUP_CURSOR)), stack=stack)
    connection.set(CATCH_UP_PERIOD, "held by the test: the minute's run is not due", ex=3600)
    before = len(sandbox.webhooks())
    back = threading.Event()
    with redis_away(redis_server, until=back):
        created = sandbox.as_user("alice", "POST", "/repos/acme/gadgets/issues",
                                  json={"title": "while Redis is down"})
        assert created.status_code == 201, created.text
        sandbox.drain(timeout=60)  # the web waits out its budget, then answers 503
        refused = [h for h in sandbox.webhooks(since=before) if h["event"] == "issues"]
        assert [h["status_code"] for h in refused] == [503], refused
        requests_before = len(sandbox.control("GET", "requests"))
    guid, attempt = refused[0]["guid"], refused[0]["delivery_id"]
    wait_until("GitHub redelivers the refused delivery and the reactor accepts it", lambda: any(
        h["guid"] == guid and h["redelivery"] and h["status_code"] == 202
        for h in sandbox.webhooks(since=before)), stack=stack)
    asked = [r for r in sandbox.control("GET", f"requests?since={requests_before}")
             if r["method"] == "POST" and r["path"] == f"/app/hook/deliveries/{attempt}/attempts"]
    assert len(asked) == 1, asked  # the catch-up asked, once
    stack.wait_for_audit(lambda record: guid in record.guids(), timeout=DEADLINE_S)
    connection.close()
