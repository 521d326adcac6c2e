"""``GET /metrics``: counters kept in Redis by every process, read at scrape by the web one.

The text is checked the way Prometheus reads it (``text_string_to_metric_families``). The
counters are written by the reactor's own writers — ``AuditLog.record``, ``observe_latency``,
``CallCounter`` on a real GitHub client against the sandbox — and, last, by the real stack
(web + two workers) while agents work and one breaks R2.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import httpx
import pytest
import redis
import redis.asyncio
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue

from ghsandbox.testing import run_sandbox
from reactor.core import comments
from reactor.core.actions import Comment, Rule
from reactor.github import CallRecord, GitHubClient, get_app
from reactor.github.metrics import CallCounter
from reactor.ops import metrics
from reactor.store import counters, keys
from reactor.store.accept import JOB_FUNC
from reactor.store.audit import AuditRecord
from reactor.store.counters import AuditLog
from reactor.store.deliveries import Delivery
from tests.conftest import RedisServer, Stack
from tests.scenarios.conftest import (
    AGENTS,
    Scenario,
    agent_labels,
    make_scenario,
    next_issue,
    run_planner,
    title,
)
from tests.test_dashboard import operator_app, serving, settings_for

Labels = frozenset[tuple[str, str]]


def samples(text: str) -> dict[tuple[str, Labels], float]:
    """Every sample of the exposition, by name and labels, as Prometheus parses it."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict[tuple[str, Labels], float], name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


async def scrape(client: redis.asyncio.Redis) -> dict[tuple[str, Labels], float]:
    return samples(metrics.exposition(await metrics.read(client)).decode())


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(redis_url)
    yield connection
    await connection.aclose()


def record(detail: str, *, outcome: str = "applied", rule: str = "", delivery: str = "d-1",
           event: str = "issues") -> AuditRecord:
    return AuditRecord(at="2026-01-01T00:00:00.000+00:00", delivery=delivery, event=event,
                       outcome=outcome, repo="acme/widgets", issue="3", rule=rule,
                       detail=detail)


def comment_record(comment: Comment, *, comp: str = "titanic") -> AuditRecord:
    """The record shell/audit.py writes for an applied comment action."""
    return record(f"comp:{comp} Comment: {comment.reason}", rule=comment.rule.value)


# -- what each audit record counts -------------------------------------------------------------

REVERT = comments.revert(issue=3, rule=Rule.R2, actor="bot", what="started early",
                         instead="Wait.", key="d-1", added=[], removed=["status:starting"])


def test_each_violation_counts_once_by_its_one_comment() -> None:
    closed = comments.closed(issue=3, rule=Rule.R6, actor="bot", what="w", instead="i", key="k")
    duplicate = comments.duplicate(issue=3, original=1, actor="bot", key="k")
    escalated = comments.escalation(issue=3, rule=Rule.R4, actor="bot", what="w", reverts=3,
                                    maintainers=["octocat"], key="k")
    assert counters.event_field(comment_record(REVERT)) == "violation R2"
    assert counters.event_field(comment_record(closed)) == "violation R6"
    assert counters.event_field(comment_record(duplicate)) == "violation R5"
    assert counters.event_field(comment_record(escalated)) == "violation R4"
    # The label deltas of the same revert, and the delivery's own summary, add nothing.
    assert counters.event_field(record("comp:titanic RemoveLabel: revert: status:starting was "
                                      "not allowed", rule="R2")) is None
    assert counters.event_field(record(f"revert: x; {REVERT.reason}", rule="R2")) is None


def test_hand_offs_timeouts_and_cycles_count_by_their_comments() -> None:
    handoff = comments.handoff(issue=2, completed=1, stage="planner", target="#2", key="k")
    blocked = comments.handoff_blocked(issue=1, target=2, stage="analyzer", problem="p",
                                       key="k")
    timeout = comments.timed_out(issue=2, stage="analyzer", status="running",
                                 waited=timedelta(hours=3), limit=timedelta(hours=2),
                                 setting="timeouts.analyzer", key="k")
    cycle = comments.cycle(issue=2, members=[2, 4], links=[], reverse=None, actor="a", key="k")
    config = comments.config_problem(issue=2, problem="bad", key="k")
    assert counters.event_field(comment_record(handoff, comp="a comp")) == "handoff"
    assert counters.event_field(comment_record(timeout)) == "timeout"
    assert counters.event_field(comment_record(cycle)) == "cycle"
    assert counters.event_field(comment_record(blocked)) is None
    assert counters.event_field(comment_record(config)) is None
    noted = record(f"Comment: {handoff.reason}", outcome="noted", rule="R9")
    assert counters.event_field(noted) is None


def test_a_pause_and_a_ping_pong_count_as_violations_of_r11_and_r12() -> None:
    paused = comments.paused(issue=1, actor="bot", figures=[(31, "moves", "30 moves per minute")],
                             comp="titanic", maintainers=["alice"], key="k")
    loop = comments.pingpong(issue=1, first="a", second="b", label="x", undos=5,
                             window=timedelta(minutes=10), maintainers=["alice"], key="k")
    assert counters.event_field(comment_record(paused)) == "violation R11"
    assert counters.event_field(comment_record(loop)) == "violation R12"


def test_a_timer_or_reconcile_record_is_no_delivery() -> None:
    assert counters.delivery_field(record("x", delivery="timer", event="timer")) is None
    assert counters.delivery_field(record("x")) == "delivery issues applied"


# -- the counters, through AuditLog.record ----------------------------------------------------


async def test_a_delivery_counts_once_per_outcome_however_many_records_name_it(
        client: redis.asyncio.Redis) -> None:
    log = AuditLog(client)
    await log.record(record("judged again when the settle window ends", outcome="parked"))
    for _ in range(2):  # a retried job records its decision again
        await log.record(record("comp:titanic RemoveLabel: revert: x", rule="R2"))
        await log.record(comment_record(REVERT))
        await log.record(record(f"revert: x; {REVERT.reason}", rule="R2"))
    await log.record(record("x", delivery="timer", event="timer"))
    found = await scrape(client)
    total = "reactor_deliveries_total"
    assert value(found, total, event="issues", outcome="parked") == 1
    assert value(found, total, event="issues", outcome="applied") == 1
    assert value(found, total, event="timer", outcome="applied") is None
    assert value(found, "reactor_rule_violations_total", rule="R2") == 2
    assert value(found, "reactor_rule_violations_total", rule="R1") == 0
    assert value(found, "reactor_handoffs_total") == 0
    assert 0 < await client.ttl(keys.METRICS_COUNTED.format(guid="d-1")) <= counters.COUNTED_TTL_S
    assert 0 < await client.ttl(keys.METRICS_COUNTERS) <= keys.METRICS_TTL_S  # as all state expires
    assert await client.xlen(keys.AUDIT) == 8  # every record is in the log as before


# -- job latency ----------------------------------------------------------------------------


def _store(connection: redis.Redis, guid: str, received_at: float) -> None:
    delivery = Delivery(guid=guid, event="issues", body=b'{"x": "' + b"y" * 5000 + b'"}',
                        received_at=received_at)
    connection.set(keys.delivery(guid), delivery.header() + delivery.body)


async def test_latency_is_a_histogram_from_arrival_to_the_end_of_the_job(
        redis_url: str, client: redis.asyncio.Redis) -> None:
    sync = redis.Redis.from_url(redis_url)
    now = time.time()
    _store(sync, "fast", now - 0.3)
    _store(sync, "slow", now - 42)
    for guid in ("fast", "slow", "gone"):  # an expired delivery is not observed
        counters.observe_latency(sync, guid, now=now)
    sync.close()
    found = await scrape(client)
    name = "reactor_delivery_latency_seconds"
    assert value(found, f"{name}_bucket", le="0.25") == 0
    assert value(found, f"{name}_bucket", le="0.5") == 1
    assert value(found, f"{name}_bucket", le="60.0") == 2
    assert value(found, f"{name}_bucket", le="+Inf") == 2
    assert value(found, f"{name}_count") == 2
    assert value(found, f"{name}_sum") == pytest.approx(42.3, abs=0.01)
    assert 0 < await client.ttl(keys.METRICS_LATENCY) <= keys.METRICS_TTL_S


def test_a_latency_observation_never_fails_the_job() -> None:
    away = redis.Redis(port=1, socket_connect_timeout=0.2)
    counters.observe_latency(away, "any", now=time.time())  # logs, does not raise


# -- queue depth ----------------------------------------------------------------------------


async def test_queue_depth_is_rqs_own_count_per_queue_and_registry(
        redis_url: str, client: redis.asyncio.Redis) -> None:
    sync = redis.Redis.from_url(redis_url)
    queue = Queue(keys.QUEUE_EVENTS, connection=sync)
    queue.enqueue("reactor.entrypoints.jobs.process_delivery", "a")
    queue.enqueue("reactor.entrypoints.jobs.process_delivery", "b")
    queue.enqueue_in(timedelta(minutes=5), "reactor.entrypoints.jobs.process_delivery", "c")
    Queue("reactor-other", connection=sync).enqueue(JOB_FUNC, "d")
    sync.zadd(queue.failed_job_registry.key, {"e": time.time() + 3600})
    sync.close()
    found = await scrape(client)
    jobs = "reactor_queue_jobs"
    assert value(found, jobs, queue=keys.QUEUE_EVENTS, state="queued") == 2
    assert value(found, jobs, queue=keys.QUEUE_EVENTS, state="scheduled") == 1
    assert value(found, jobs, queue=keys.QUEUE_EVENTS, state="failed") == 1
    assert value(found, jobs, queue=keys.QUEUE_EVENTS, state="started") == 0
    assert value(found, jobs, queue="reactor-other", state="queued") == 1


# -- GitHub calls ---------------------------------------------------------------------------


async def test_github_calls_are_counted_by_route_and_status_with_the_rate_limit_left(
        client: redis.asyncio.Redis) -> None:
    with run_sandbox() as sandbox:
        with sandbox.client() as control:
            installation = int(control.create_repo("acme", "widgets")["installation_id"])
        config = sandbox.config
        counter = CallCounter(client)
        github = GitHubClient(app_id=config.app_id, private_key=config.private_key_pem,
                              redis=client, api_url=sandbox.url, on_response=counter)
        async with github:
            await get_app(github.app)
            gh = github.for_installation(installation)
            for _ in range(2):  # the second read is a conditional one: 304
                await gh.getitem("/repos/acme/widgets/issues")
            await counter.drain()  # the counter writes a second later, or when drained
    found = await scrape(client)
    calls = "reactor_github_calls_total"
    assert value(found, calls, method="GET", route="/app", status="200") == 1
    assert value(found, calls, method="POST", status="201",
                 route="/app/installations/{installation_id}/access_tokens") == 1
    route = "/repos/{owner}/{repo}/issues"
    assert value(found, calls, method="GET", route=route, status="200") == 1
    assert value(found, calls, method="GET", route=route, status="304") == 1
    left = value(found, "reactor_github_rate_limit_remaining", installation=str(installation))
    assert left is not None and 0 < left < 5000


async def test_counts_redis_did_not_take_are_kept_for_the_next_write(
        redis_server: RedisServer, client: redis.asyncio.Redis) -> None:
    counter = CallCounter(client)
    call = CallRecord("GET", "/app", 200, None, 4999, 0.01)
    redis_server.stop()
    try:
        counter(call)
        await counter.flush()  # Redis away: logged, kept
    finally:
        redis_server.start()
    counter(call)
    await counter.flush()
    assert await client.hgetall(keys.GITHUB_CALLS) == {b"GET /app 200": b"2"}
    assert await client.hgetall(keys.RATE_REMAINING) == {b"app": b"4999"}
    assert 0 < await client.ttl(keys.GITHUB_CALLS) <= keys.METRICS_TTL_S


async def test_drain_waits_for_a_write_already_begun(client: redis.asyncio.Redis) -> None:
    """A command that ends right after its last GitHub call (``reactor replay`` refusing an
    unknown GUID) drains the counter before closing Redis: the write the call began is
    finished, never cut off by the close."""
    counter = CallCounter(client)
    counter(CallRecord("GET", "/app", 200, None, 4999, 0.01))
    await asyncio.sleep(0)  # the write task begins: it took the counts, it is on its way
    await counter.drain()
    assert await client.hgetall(keys.GITHUB_CALLS) == {b"GET /app 200": b"1"}


# -- on the real stack ----------------------------------------------------------------------


@pytest.fixture
def scenario(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Scenario]:
    yield from make_scenario(stack, request)


def test_the_web_process_reports_what_the_workers_did(scenario: Scenario) -> None:
    """A hand-off and an R2 revert made by two worker processes, read over HTTP by a web
    app that made none of it."""
    s = scenario
    run_planner(s, "titanic")
    next_issue(s, "titanic", "analyzer")
    executor = s.open_issue(AGENTS["executor"], title("titanic", "executor"),
                            sorted(agent_labels("titanic", "executor")))
    s.idle()
    s.add_labels(AGENTS["executor"], executor, "status:starting")
    s.settle()
    assert "status:starting" not in s.labels(executor), s.state(executor)
    with serving(operator_app(settings_for(s.stack.redis_url))) as url:
        response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    found = samples(response.text)
    assert value(found, "reactor_rule_violations_total", rule="R2") == 1
    assert value(found, "reactor_handoffs_total") == 1
    applied = value(found, "reactor_deliveries_total", event="issues", outcome="applied")
    assert applied is not None and applied >= 1
    jobs = value(found, "reactor_delivery_latency_seconds_count")
    assert jobs is not None and jobs >= 5  # every delivery handled, each observed once
    assert value(found, "reactor_queue_jobs", queue=keys.QUEUE_EVENTS, state="failed") == 0
