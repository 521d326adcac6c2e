"""Pacing: each installation's content writes (issues, comments) stay below GitHub's secondary
limits — 70 a minute and 450 an hour — with one budget in Redis shared by every process."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from redis.asyncio import Redis

from reactor.core.errors import GitHubError, RateLimited, is_transient
from reactor.github import ContentPacer, GitHubClient, Window, creates_content
from reactor.github.pacing import PER_HOUR, PER_MINUTE
from reactor.store import keys
from tests.conftest import Stack
from tests.github.conftest import FakeClock, Reply, StandIn
from tests.scenarios.conftest import Scenario, agent_labels, names, title, wait_until

API = "https://api.github.com"
COMMENTS = f"{API}/repos/octo/demo/issues/7/comments"
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def take(pacer: ContentPacer, installation_id: int = 42) -> None:
    await pacer.take(installation_id, method="POST", url=COMMENTS)


async def refused_until(pacer: ContentPacer, installation_id: int = 42) -> datetime:
    with pytest.raises(RateLimited) as caught:
        await take(pacer, installation_id)
    assert caught.value.installation_id == installation_id
    return caught.value.retry_at


@pytest.fixture
def t0(clock: FakeClock) -> FakeClock:
    """The tests' fake clock, stopped at T0 (the client tests keep it near real time)."""
    clock.now = T0
    return clock


@pytest.fixture
def pacer(redis: Redis[Any], t0: FakeClock) -> ContentPacer:
    return ContentPacer(redis, clock=t0)


def test_only_posts_that_create_issues_or_comments_count() -> None:
    assert creates_content("POST", f"{API}/repos/o/r/issues")
    assert creates_content("POST", f"{API}/repos/o/r/issues/7/comments")
    assert creates_content("post", f"{API}/repos/o/r/issues/")
    assert not creates_content("GET", f"{API}/repos/o/r/issues")
    assert not creates_content("PATCH", f"{API}/repos/o/r/issues/7")
    assert not creates_content("POST", f"{API}/repos/o/r/issues/7/labels")
    assert not creates_content("POST", f"{API}/repos/o/r/dispatches")
    assert not creates_content("POST", f"{API}/app/installations/42/access_tokens")


async def test_seventy_writes_pass_and_the_71st_waits_until_the_first_leaves_the_minute(
    pacer: ContentPacer, t0: FakeClock
) -> None:
    for i in range(PER_MINUTE):
        t0.now = at(i * 0.1)
        await take(pacer)

    t0.now = at(10)
    retry_at = await refused_until(pacer)

    assert retry_at == at(60)  # the first write, at T0, leaves the window then
    t0.now = at(60) - timedelta(milliseconds=1)
    assert await refused_until(pacer) == at(60)
    t0.now = at(60)
    await take(pacer)


async def test_the_refusal_is_a_transient_429_of_the_reactor_own(
    pacer: ContentPacer, t0: FakeClock
) -> None:
    for _ in range(PER_MINUTE):
        await take(pacer)
    with pytest.raises(RateLimited) as caught:
        await take(pacer)
    assert caught.value.status == 429 and is_transient(caught.value)
    assert "installation 42" in str(caught.value) and "70 in 60 s" in str(caught.value)


async def test_the_minute_window_slides_one_write_at_a_time(
    pacer: ContentPacer, t0: FakeClock
) -> None:
    for second in range(60):
        t0.now = at(second)
        await take(pacer)
    # 60 writes at 0 s .. 59 s; at 60 s the first has left the window, so 11 more fit.
    t0.now = at(60)
    for _ in range(PER_MINUTE - 59):
        await take(pacer)
    assert await refused_until(pacer) == at(61)
    t0.now = at(61)
    await take(pacer)
    assert await refused_until(pacer) == at(62)


async def test_the_hour_window_holds_450_writes_even_when_each_minute_has_room(
    pacer: ContentPacer, t0: FakeClock
) -> None:
    for i in range(PER_HOUR):
        t0.now = at(i * 8)  # 7.5 a minute: the minute window never fills
        await take(pacer)

    t0.now = at(3599)
    assert await refused_until(pacer) == at(3600)  # the first write's hour ends
    t0.now = at(3600)
    await take(pacer)
    assert await refused_until(pacer) == at(3608)


async def test_both_windows_spent_wait_for_the_later_one(
    redis: Redis[Any], t0: FakeClock
) -> None:
    pacer = ContentPacer(redis, clock=t0, windows=(Window(2, 60), Window(3, 3600)))
    for second in (0, 1, 100):
        t0.now = at(second)
        await take(pacer)
    t0.now = at(101)
    assert await refused_until(pacer) == at(3600)  # the minute has room at 160 s; the hour not


async def test_installations_have_budgets_of_their_own(
    pacer: ContentPacer, redis: Redis[Any]
) -> None:
    for _ in range(PER_MINUTE):
        await take(pacer, 42)
    await refused_until(pacer, 42)

    for _ in range(PER_MINUTE):
        await take(pacer, 43)
    assert await redis.zcard(keys.content_writes(42)) == PER_MINUTE
    assert await redis.zcard(keys.content_writes(43)) == PER_MINUTE
    assert 0 < await redis.pttl(keys.content_writes(42)) <= 3600 * 1000


async def test_concurrent_tasks_never_let_more_than_the_budget_through(redis_url: str) -> None:
    """Real time, eight connections, 200 writes at once: exactly 70 go."""
    clients = [Redis.from_url(redis_url) for _ in range(8)]
    pacers = [ContentPacer(c) for c in clients]
    try:
        outcomes = await asyncio.gather(
            *(_one_write(pacers[i % len(pacers)]) for i in range(200)))
    finally:
        for c in clients:
            await c.aclose()  # type: ignore[attr-defined]  # types-redis predates aclose()
    assert sum(outcomes) == PER_MINUTE


def test_concurrent_processes_never_let_more_than_the_budget_through(redis_url: str) -> None:
    """Four processes, each with 25 concurrent tasks and its own Redis client."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        passed = pool.map(_writes_in_a_process, [(redis_url, 25)] * 4)
    assert sum(passed) == PER_MINUTE


def _writes_in_a_process(job: tuple[str, int]) -> int:
    redis_url, count = job

    async def run() -> int:
        client = Redis.from_url(redis_url)
        try:
            pacer = ContentPacer(client)
            return sum(await asyncio.gather(*(_one_write(pacer) for _ in range(count))))
        finally:
            await client.aclose()  # type: ignore[attr-defined]

    return asyncio.run(run())


async def _one_write(pacer: ContentPacer) -> int:
    try:
        await take(pacer)
    except RateLimited:
        return 0
    return 1


async def test_the_client_paces_comments_and_issues_but_not_label_writes(
    client: GitHubClient, stand_in: StandIn, clock: FakeClock
) -> None:
    comments, issues = "/repos/octo/demo/issues/7/comments", "/repos/octo/demo/issues"
    labels = "/repos/octo/demo/issues/7/labels"
    stand_in.script("POST", comments, *[Reply(201, {"id": i}) for i in range(PER_MINUTE - 1)])
    stand_in.script("POST", issues, Reply(201, {"number": 8}), Reply(201, {"number": 9}))
    stand_in.script("POST", labels, *[Reply(200, []) for _ in range(5)])
    gh = client.for_installation(42)

    for _ in range(PER_MINUTE - 1):
        await gh.post(comments, data={"body": "hi"})
    await gh.post(issues, data={"title": "t"})
    for _ in range(5):
        await gh.post(labels, data={"labels": ["x"]})
    with pytest.raises(RateLimited) as caught:
        await gh.post(comments, data={"body": "one too many"})

    assert caught.value.retry_at > clock.now
    assert caught.value.retry_at <= clock.now + timedelta(seconds=60)
    assert len(stand_in.calls("POST", comments)) == PER_MINUTE - 1  # refused without a call
    assert len(stand_in.calls("POST", labels)) == 5
    assert (await client.for_installation(43).post(issues, data={"title": "t"}))["number"] == 9


async def test_a_write_github_fails_has_spent_its_budget_all_the_same(
    client: GitHubClient, stand_in: StandIn, redis: Redis[Any]
) -> None:
    """GitHub may have written before it answered 5xx: the write counts."""
    comments = "/repos/octo/demo/issues/7/comments"
    stand_in.script("POST", comments, *[Reply(502) for _ in range(5)])

    with pytest.raises(GitHubError):
        await client.for_installation(42).post(comments, data={"body": "hi"})

    assert await redis.zcard(keys.content_writes(42)) == 1


def test_a_hand_off_waits_for_the_budget_and_then_completes_once(stack: Stack) -> None:
    """End to end: the installation's budget is spent (70 writes 50 s ago), so the hand-off's
    issue creation is refused and its job deferred; it completes by itself once the writes
    leave the minute, with one next issue and no comment twice. The wait is read from the
    sandbox's request log — the completion came while the budget was spent, the App's issue
    creation only after it was free again — not timed."""
    with stack.sandbox.client() as client:
        created = client.create_repo("paced", "agents")
        s = Scenario(stack, client, "paced", "agents", int(created["installation_id"]))
        number = s.open_issue("alice", title("pc", "planner"),
                              sorted(agent_labels("pc", "planner")))
        s.idle()
        s.add_labels("alice", number, "status:starting")
        s.idle()
        s.set_labels("alice", number, *sorted(agent_labels("pc", "planner", "status:running")))
        s.idle()
        spent_at_ms = int(time.time() * 1000) - 50_000
        free_at = datetime.fromtimestamp((spent_at_ms + 60_000) / 1000, UTC)
        connection = redis.Redis.from_url(stack.redis_url)
        connection.zadd(keys.content_writes(s.installation_id),
                        {f"spent-{i}": spent_at_ms for i in range(PER_MINUTE)})
        connection.close()

        before = s.request_count()
        s.set_labels("alice", number, *sorted(agent_labels("pc", "planner", "status:completed")))
        analyzer = wait_until(lambda: [i for i in s.issues() if "agent:analyzer" in names(i)],
                              timeout=40, what="the analyzer's issue")
        s.settle()

        def moment(call: dict[str, Any]) -> datetime:
            return datetime.fromisoformat(call["at"])

        calls = s.requests(before)
        [completion] = [c for c in calls if c["actor"] == "alice" and c["method"] == "PUT"]
        creations = [c for c in calls if c["actor"] == s.bot and c["method"] == "POST"
                     and c["path"] == f"{s.path}/issues"]
        assert moment(completion) < free_at, "the completion came after the budget was free"
        assert [c["status"] for c in creations] == [201], creations  # once, never refused
        assert moment(creations[0]) >= free_at, (creations, free_at)  # not before it was free
        [issue] = [i for i in s.issues() if "agent:analyzer" in names(i)]
        assert issue["number"] == analyzer[0]["number"]
        assert names(issue) == agent_labels("pc", "analyzer", "status:starting")
        blockers = s.call(s.bot, "GET", f"/issues/{issue['number']}/dependencies/blocked_by")
        assert [b["number"] for b in blockers] == [number]  # the hand-off's link, made once
        for n in (number, issue["number"]):
            bodies = s.app_comments(n)
            assert len(bodies) == len(set(bodies)), (n, bodies)
