"""Fairness (SPEC §6): one installation flooding the reactor does not hold up another's work.

The unit tests drive ``reactor.entrypoints.jobs`` with a real Redis and RQ worker and a stand-in
handler: in a backlog, a delivery of a busy installation waits its turn in that installation's
limiter, the other installations' deliveries go first, and each is handled exactly once.

The black-box test floods installation ``flood`` with deliveries about its agent issues,
spread over many competitions so that each turn costs a fresh read, while the workers are
frozen (SIGSTOP: a stalled machine) so that the flood is a backlog when they go on; right
after, installation ``calm``'s planner completes. Every part is real: the web process, two
RQ worker processes, Redis, the sandbox. ``calm``'s hand-off must complete while most of
the flood still waits — evidence that does not depend on the machine's speed — and within
a generous deadline. (Without the freeze the reactor works a flood off as fast as one
client can post it on this machine, and there is no backlog to be fair in.)
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import redis
import redis.asyncio
from rq import Queue
from rq.job import Job, JobStatus
from rq.rate_limit import RateLimitRegistry
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from ghsandbox.testing import run_sandbox
from reactor.core.errors import RateLimited
from reactor.core.routing import Scope
from reactor.core.view import Repo
from reactor.entrypoints import jobs
from reactor.process.settings import Settings
from reactor.shell.context import Context
from reactor.shell.runtime import Runtime
from reactor.store import keys
from reactor.store.audit import Outcome
from reactor.store.deliveries import Delivery
from reactor.store.ingest import Ingest
from tests.conftest import Stack, signal_group, webhook_headers, work_burst
from tests.scenarios.conftest import Scenario, agent_labels, names, title

BUSY, CALM = 1, 2


@pytest.fixture
def runtime(redis_url: str) -> Iterator[Runtime]:
    """A worker process's runtime, in this process, acting for a sandbox's App."""
    with run_sandbox() as sandbox:
        current = jobs.open_runtime(Settings.parse({**sandbox.env(), "REDIS_URL": redis_url}))
        try:
            yield current
        finally:
            jobs.close_runtime()


def accept(runtime: Runtime, redis_url: str, installation: int | None) -> str:
    """Store and queue a delivery of ``installation`` as the web process does; its GUID."""
    guid = str(uuid.uuid4())
    body = orjson.dumps({} if installation is None else {"installation": {"id": installation}})
    delivery = Delivery(guid=guid, event="issues", body=body, received_at=time.time())

    async def run() -> bool:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            async with Ingest(client) as ingest:
                return await ingest.accept(delivery)
        finally:
            await client.aclose()

    assert runtime.run(run())
    return guid


class Handled:
    """Stands in for ``jobs.handle_delivery``: records each delivery and how many of its
    installation's slots were taken meanwhile."""

    def __init__(self, connection: redis.Redis, installations: dict[str, int]) -> None:
        self.order: list[str] = []
        self.slots: list[int] = []
        self.limited: set[str] = set()
        self._connection = connection
        self._installations = installations

    async def __call__(self, ctx: Context, guid: str) -> Outcome:
        self.order.append(guid)
        installation = self._installations.get(guid)
        if installation is not None:
            self.slots.append(limiter(self._connection, installation).get_allowed_job_count())
        if guid in self.limited:
            raise RateLimited("limited", retry_at=datetime.now(UTC) + timedelta(minutes=5),
                              installation_id=installation, status=429)
        return Outcome.OBSERVED


def limiter(connection: redis.Redis, installation: int) -> RateLimitRegistry:
    return RateLimitRegistry(keys.installation_turns(installation), connection)


def hold_slot(connection: redis.Redis, installation: int, job_id: str) -> None:
    """A job of the installation, running on some other worker, holds one of its slots (RQ
    frees the slots of jobs that are not queued or running)."""
    Job.create("builtins.len", args=("x",), id=job_id, connection=connection,
               status=JobStatus.STARTED).save()
    connection.zadd(limiter(connection, installation).allowed_key, {job_id: time.time()})


@pytest.fixture
def connection(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def work(connection: redis.Redis) -> Queue:
    """Run one RQ worker until the events queue is empty."""
    queue = Queue(keys.QUEUE_EVENTS, connection=connection)
    work_burst([queue], connection)
    return queue


def test_a_delivery_of_an_otherwise_idle_installation_is_handled_in_its_own_job(
    runtime: Runtime, redis_url: str, connection: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    guid = accept(runtime, redis_url, CALM)
    handled = Handled(connection, {guid: CALM})
    monkeypatch.setattr(jobs, "handle_delivery", handled)

    queue = work(connection)

    job = queue.fetch_job(guid)
    assert job is not None and job.return_value() == "observed"
    assert handled.order == [guid] and handled.slots == [0]  # no backlog: no slot needed
    assert limiter(connection, CALM).get_allowed_job_count() == 0


def test_without_a_backlog_a_busy_installations_delivery_is_handled_in_its_own_job(
    runtime: Runtime, redis_url: str, connection: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hold_slot(connection, BUSY, "running-elsewhere")
    guid = accept(runtime, redis_url, BUSY)
    handled = Handled(connection, {guid: BUSY})
    monkeypatch.setattr(jobs, "handle_delivery", handled)

    queue = work(connection)

    assert queue.fetch_job(guid).return_value() == "observed"  # type: ignore[union-attr]
    assert handled.slots == [1]  # handled at once, beside the one running elsewhere
    assert limiter(connection, BUSY).get_allowed_job_ids() == ["running-elsewhere"]


def test_in_a_backlog_a_busy_installation_waits_its_turns_while_others_go_first(
    runtime: Runtime, redis_url: str, connection: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The queue is backed up and installation BUSY has a job running elsewhere; twelve more
    of its deliveries and then one of CALM arrive. CALM's is handled first; BUSY's follow in
    arrival order, never more than INSTALLATION_SLOTS of them queued or running, each once."""
    monkeypatch.setattr(jobs, "BACKLOG_S", 0.0)
    busy = limiter(connection, BUSY)
    hold_slot(connection, BUSY, "running-elsewhere")
    flood = [accept(runtime, redis_url, BUSY) for _ in range(12)]
    calm = accept(runtime, redis_url, CALM)
    no_installation = accept(runtime, redis_url, None)
    handled = Handled(connection, {**dict.fromkeys(flood, BUSY), calm: CALM})
    monkeypatch.setattr(jobs, "handle_delivery", handled)

    queue = work(connection)

    assert handled.order == [calm, no_installation, *flood]
    assert max(handled.slots) <= jobs.INSTALLATION_SLOTS
    assert all(queue.fetch_job(g).return_value().startswith("waiting for a slot")  # type: ignore[union-attr]
               for g in flood)
    assert busy.get_allowed_job_ids() == ["running-elsewhere"]
    assert busy.get_rate_limited_job_count() == 0

    busy.release_and_enqueue("running-elsewhere")
    later = accept(runtime, redis_url, BUSY)
    handled.order.clear()
    work(connection)
    assert handled.order == [later]
    assert queue.fetch_job(later).return_value() == "observed"  # type: ignore[union-attr]


def test_deliveries_waiting_for_slots_are_queued_as_slots_free(
    runtime: Runtime, redis_url: str, connection: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every slot taken elsewhere: BUSY's deliveries wait, none is lost; a slot that frees
    serves them in turn."""
    monkeypatch.setattr(jobs, "BACKLOG_S", 0.0)
    busy = limiter(connection, BUSY)
    holders = [f"elsewhere-{i}" for i in range(jobs.INSTALLATION_SLOTS)]
    for holder in holders:
        hold_slot(connection, BUSY, holder)
    flood = [accept(runtime, redis_url, BUSY) for _ in range(3)]
    handled = Handled(connection, dict.fromkeys(flood, BUSY))
    monkeypatch.setattr(jobs, "handle_delivery", handled)

    work(connection)
    assert handled.order == []
    assert busy.get_rate_limited_job_count() == 3

    busy.release_and_enqueue(holders[0])
    work(connection)
    # One slot freed: the waiting deliveries take it one after another.
    assert handled.order == flood
    assert handled.slots == [jobs.INSTALLATION_SLOTS] * 3
    assert busy.get_rate_limited_job_count() == 0


def test_a_rate_limited_delivery_frees_its_slot_and_is_deferred_to_the_limits_end(
    runtime: Runtime, redis_url: str, connection: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jobs, "BACKLOG_S", 0.0)
    busy = limiter(connection, BUSY)
    hold_slot(connection, BUSY, "running-elsewhere")
    guid = accept(runtime, redis_url, BUSY)
    handled = Handled(connection, {guid: BUSY})
    handled.limited.add(guid)
    monkeypatch.setattr(jobs, "handle_delivery", handled)

    queue = work(connection)

    turn = queue.fetch_job(f"{guid}-slot")
    assert turn is not None and str(turn.return_value()).startswith("deferred until")
    [deferred] = ScheduledJobRegistry(queue=queue).get_job_ids()
    assert deferred.startswith(f"{guid}-after-")
    assert busy.get_allowed_job_ids() == ["running-elsewhere"]
    assert queue.fetch_job(deferred).retries_left == 3  # type: ignore[union-attr]


def test_a_rate_limited_turn_is_deferred_to_the_limits_end_and_keeps_its_marker(
    runtime: Runtime, connection: redis.Redis, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A turn that meets a rate limit comes back at its end, in a scheduled job that owns the
    competition's turn meanwhile: deliveries arriving during the limit wait for it."""
    from reactor.shell import turn

    retry_at = datetime.now(UTC) + timedelta(minutes=2)

    async def limited(ctx: Context, scope: object, **kwargs: object) -> None:
        raise RateLimited("limited", retry_at=retry_at, installation_id=BUSY, status=429)

    monkeypatch.setattr(turn, "take", limited)
    scope = Scope(Repo("o", "r", 5), BUSY, "titanic")
    queue = Queue(keys.QUEUE_EVENTS, connection=connection)
    queue.enqueue("reactor.entrypoints.jobs.take_turn", scope.dumps(), job_id="turn-abc")

    work(connection)

    assert queue.fetch_job("turn-abc").return_value().startswith("deferred")  # type: ignore[union-attr]
    [later] = ScheduledJobRegistry(queue=queue).get_job_ids()
    assert later.endswith(f"ratelimit-{int(retry_at.timestamp())}")
    assert connection.get(keys.turn(scope.key)) == later.encode()
    assert connection.ttl(keys.turn(scope.key)) > 120


# -- the whole reactor ----------------------------------------------------------------------

FLOOD_COMPETITIONS = 40
FLOOD_DELIVERIES = 1000
POST_CONCURRENCY = 32
HANDOFF_DEADLINE_S = 30.0
UNBRAKED = ("limits: {moves_per_minute: 100000, issues_per_hour: 100000, "
            "comments_per_hour: 100000}\n")


@pytest.fixture
def repos(stack: Stack) -> Iterator[tuple[Scenario, Scenario]]:
    """Two repositories of different owners, hence of two installations. Their config is the
    defaults but R11's budget: one actor opens the flood's issues far faster than any real
    agent would, and what is measured here is fairness, not the brake."""
    with stack.sandbox.client() as client:
        pair = []
        for owner in ("flood", "calm"):
            created = client.create_repo(owner, "agents")
            pair.append(Scenario(stack, client, owner, "agents", int(created["installation_id"])))
            pair[-1].write_config(UNBRAKED)
        assert pair[0].installation_id != pair[1].installation_id
        yield pair[0], pair[1]


def opened_payloads(s: Scenario, count: int) -> list[dict[str, Any]]:
    """Open ``count`` planner issues, each in a competition of its own, and return the
    ``issues.opened`` payloads the sandbox delivered for them (from the App's delivery log)."""
    for k in range(count):
        s.open_issue("alice", title(f"c{k}", "planner"), sorted(agent_labels(f"c{k}", "planner")))
    s.idle(timeout=90)  # 40 new competitions, each parked for its settle window: slow under load
    found = []
    for item in s.deliveries():
        if item["event"] == "issues" and item["action"] == "opened" and not item["redelivery"]:
            payload = s.delivery(item["id"])["request"]["payload"]
            if payload["repository"]["full_name"] == f"{s.owner}/{s.name}":
                found.append(payload)
    assert len(found) == count, len(found)
    return found


async def _post_all(stack: Stack, bodies: list[bytes]) -> list[str]:
    """Send every body as a signed ``issues`` delivery with a fresh GUID; return the GUIDs."""
    secret = stack.sandbox.config.webhook_secret
    guids = [str(uuid.uuid4()) for _ in bodies]
    pending = asyncio.Semaphore(POST_CONCURRENCY)
    async with httpx.AsyncClient(timeout=30) as client:

        async def post(body: bytes, guid: str) -> None:
            async with pending:
                response = await client.post(stack.webhook_url, content=body,
                                             headers=webhook_headers(body, secret, guid=guid))
            assert response.status_code == 202, response.text

        await asyncio.gather(*(post(b, g) for b, g in zip(bodies, guids, strict=True)))
    return guids


def flood(stack: Stack, payloads: list[dict[str, Any]], total: int) -> set[str]:
    bodies = [orjson.dumps(payloads[i % len(payloads)]) for i in range(total)]
    return set(asyncio.run(_post_all(stack, bodies)))


def start_planner(s: Scenario, comp: str) -> int:
    """The planner's issue, moved idle → starting → running with the reactor idle between."""
    number = s.open_issue("alice", title(comp, "planner"), sorted(agent_labels(comp, "planner")))
    s.idle()
    s.add_labels("alice", number, "status:starting")
    s.idle()
    s.set_labels("alice", number, *sorted(agent_labels(comp, "planner", "status:running")))
    s.idle()
    return number


def analyzer_starting(s: Scenario, comp: str) -> bool:
    return any(names(i) == agent_labels(comp, "analyzer", "status:starting") for i in s.issues())


def test_a_flooded_installation_does_not_hold_up_another_installations_hand_off(
    stack: Stack, repos: tuple[Scenario, Scenario],
) -> None:
    flooded, calm = repos
    payloads = opened_payloads(flooded, FLOOD_COMPETITIONS)
    planner = start_planner(calm, "quiet")

    workers = stack.processes[1:]
    flooded_at = time.monotonic()
    for process in workers:
        signal_group(process, signal.SIGSTOP)
    try:
        guids = flood(stack, payloads, FLOOD_DELIVERIES)
        time.sleep(jobs.BACKLOG_S)  # the flood's turns have waited long enough to be a backlog
    finally:
        for process in workers:
            signal_group(process, signal.SIGCONT)
    posted_s = time.monotonic() - flooded_at

    completed_at = time.monotonic()
    calm.set_labels("alice", planner, *sorted(agent_labels("quiet", "planner",
                                                           "status:completed")))
    deadline = completed_at + HANDOFF_DEADLINE_S
    while not analyzer_starting(calm, "quiet"):
        assert time.monotonic() < deadline, "no hand-off within the deadline"
        time.sleep(0.05)
    handoff_s = time.monotonic() - completed_at
    judged = sum(1 for r in stack.audit() if r.delivery in guids)

    audited = wait_for_the_flood(stack, guids)
    drained_s = time.monotonic() - flooded_at
    print(f"flood of {FLOOD_DELIVERIES} posted in {posted_s:.1f}s; the other installation's "
          f"hand-off took {handoff_s:.2f}s with {judged} of the flood judged; "
          f"the flood was worked off {drained_s:.1f}s after it began")
    assert judged < FLOOD_DELIVERIES / 2, (judged, handoff_s)
    assert set(audited.values()) == {1}  # each delivery judged once: none lost, none twice
    assert len([i for i in calm.issues() if "agent:analyzer" in names(i)]) == 1
    failed = FailedJobRegistry(keys.QUEUE_EVENTS, connection=redis.Redis.from_url(stack.redis_url))
    assert failed.get_job_ids() == []


def wait_for_the_flood(stack: Stack, guids: set[str], *, timeout: float = 300) -> Counter[str]:
    """Wait until every delivery of the flood is in the audit log; how often each is."""
    deadline = time.monotonic() + timeout
    while True:
        audited = Counter(r.delivery for r in stack.audit() if r.delivery in guids)
        if len(audited) == len(guids):
            return audited
        assert time.monotonic() < deadline, f"{len(guids) - len(audited)} deliveries not judged"
        time.sleep(0.5)
