"""The periodic sweep on the real stack: one bounded job per installation, so one tenant
never stops the others (SPEC §6: a full reconcile is bounded per tenant).

Each tenant is an owner of its own (the sandbox installs the App once per owner) with a
missed hand-off standing in its repository: a planner issue opened already ``completed``
while every webhook was dropped, which only the sweep can find. The scheduler's sweep is
made due by dropping its period's marker; catch-up is held off, so the dropped webhooks are
never redelivered to the webhook path. The only peeks inside are RQ's registries, for the
sweep jobs' results (their summary lines).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.registry import FinishedJobRegistry, StartedJobRegistry

from reactor.store import keys
from tests.conftest import Stack
from tests.scenarios.conftest import (
    AGENTS,
    Scenario,
    agent_labels,
    title,
    wait_until,
)

SWEEP_S = 60.0  # how long a sweep of a few repositories may take on a busy machine


@pytest.fixture
def rq_redis(stack: Stack) -> Iterator[redis.Redis]:
    """The stack's Redis, with catch-up held off and the start-up sweep done."""
    client = redis.Redis.from_url(stack.redis_url)
    client.set(keys.periodic("catchup"), "held by the test", ex=600)
    sweeps = Queue(keys.QUEUE_SWEEP, connection=client)
    wait_until(lambda: client.exists(keys.periodic("sweep")) and sweeps.count == 0
               and StartedJobRegistry(queue=sweeps).count == 0,
               what="the start-up sweep done", timeout=SWEEP_S)
    yield client
    client.close()


def tenant(stack: Stack, owner: str, name: str = "agents") -> Scenario:
    """A repository of ``owner`` (each owner has an installation of its own), configured."""
    client = stack.sandbox.client()
    created = client.create_repo(owner, name)
    s = Scenario(stack, client, owner, name, int(created["installation_id"]))
    s.write_config()
    s.idle()
    return s


def missed_hand_off(s: Scenario, comp: str) -> int:
    """A planner issue opened already completed while every webhook was dropped."""
    s.client.control("POST", "faults", {"webhooks": {"drop": 1.0}})
    try:
        number = s.open_issue(AGENTS["planner"], title(comp, "planner"),
                              sorted(agent_labels(comp, "planner", "status:completed")))
        s.client.drain()
    finally:
        s.client.control("POST", "faults", {})
    return number


def handed_off(s: Scenario, comp: str) -> bool:
    return bool(s.agent_issues(comp, "analyzer"))


def sweep_now(client: redis.Redis) -> None:
    """Make the periodic sweep due at once (the scheduler enqueues it within a second)."""
    client.delete(keys.periodic("sweep"))


def installation_results(client: redis.Redis) -> dict[int, str]:
    """The summary line of each finished installation sweep, by installation id."""
    registry = FinishedJobRegistry(queue=Queue(keys.QUEUE_SWEEP, connection=client))
    found = {}
    for job in Job.fetch_many(registry.get_job_ids(), connection=client):
        if job is not None and job.func_name.endswith("sweep_installation"):
            found[int(job.args[0])] = str(job.return_value())
    return found


def results_for(client: redis.Redis, *tenants: Scenario) -> dict[int, str]:
    wanted = {s.installation_id for s in tenants}
    return wait_until(lambda: (found := installation_results(client)).keys() >= wanted
                      and found, what="the installations' sweeps finished", timeout=SWEEP_S,
                      describe=lambda: installation_results(client))


def test_a_rate_limited_installation_does_not_stop_the_others(
    stack: Stack, rq_redis: redis.Redis,
) -> None:
    one, two, three = (tenant(stack, owner) for owner in ("one", "two", "three"))
    for s in (one, two, three):
        missed_hand_off(s, "titanic")
    # Every call to the first tenant's repository answers 429: a rate limit of its own.
    one.client.control("POST", "faults", {"routes": {"GET /repos/one/": {"status": 429}}})
    try:
        sweep_now(rq_redis)
        wait_until(lambda: handed_off(two, "titanic") and handed_off(three, "titanic"),
                   what="the hand-offs of installations 2 and 3 repaired", timeout=SWEEP_S)
        results = results_for(rq_redis, one, two, three)
    finally:
        one.client.control("POST", "faults", {})
    assert not handed_off(one, "titanic")
    assert "rate limited until" in results[one.installation_id], results
    assert "stopped early" in results[one.installation_id]
    for s in (two, three):
        assert "1 CreateIssue" in results[s.installation_id], results


def test_a_suspended_installation_is_skipped(stack: Stack, rq_redis: redis.Redis) -> None:
    one, two, three = (tenant(stack, owner) for owner in ("one", "two", "three"))
    for s in (one, two, three):
        missed_hand_off(s, "titanic")
    two.client.control("POST", "suspend", {"installation_id": two.installation_id})
    mark = two.request_count()
    sweep_now(rq_redis)
    wait_until(lambda: handed_off(one, "titanic") and handed_off(three, "titanic"),
               what="the hand-offs of installations 1 and 3 repaired", timeout=SWEEP_S)
    results = results_for(rq_redis, one, three)
    assert two.installation_id not in results, results
    assert not handed_off(two, "titanic")
    touched = [r for r in two.requests(mark) if "/repos/two/" in r["path"]
               or r["path"] == f"/app/installations/{two.installation_id}/access_tokens"]
    assert [r for r in touched if r["actor"] != "reader"] == []  # the App never tried


def test_an_error_on_one_repository_does_not_stop_the_next(
    stack: Stack, rq_redis: redis.Redis,
) -> None:
    broken, fine = tenant(stack, "acme", "a-broken"), tenant(stack, "acme", "b-fine")
    assert broken.installation_id == fine.installation_id
    for s in (broken, fine):
        missed_hand_off(s, "titanic")
    broken.client.control("POST", "faults", {"routes": {"GET /repos/acme/a-broken/":
                                                        {"status": 403}}})
    try:
        summary = run_sweep(rq_redis, fine, 500, 1)
    finally:
        broken.client.control("POST", "faults", {})
    assert handed_off(fine, "titanic") and not handed_off(broken, "titanic")
    assert "1 failed: acme/a-broken: " in summary and "1 CreateIssue" in summary, summary


def run_sweep(client: redis.Redis, s: Scenario, budget: int, run: int) -> str:
    """One sweep of the tenant's installation within ``budget`` GitHub calls, as the
    fan-out enqueues it; its summary line."""
    job = Queue(keys.QUEUE_SWEEP, connection=client).enqueue(
        "reactor.entrypoints.jobs.sweep_installation", s.installation_id, budget,
        job_id=f"test-sweep-{s.installation_id}-{run}")
    return str(wait_until(lambda: job.return_value(refresh=True), what=f"sweep run {run}",
                          timeout=SWEEP_S, describe=lambda: job.get_status(refresh=True)))


def judged(summary: str) -> int:
    """The number of competitions a summary line says the run judged."""
    return int(summary.split(" competitions")[0].rsplit(" ", 1)[1])


def test_the_budget_stops_a_tenants_sweep_and_the_next_run_resumes_where_it_stopped(
    stack: Stack, rq_redis: redis.Redis,
) -> None:
    s = tenant(stack, "big")
    comps = [f"c{n}" for n in range(1, 9)]
    planners = {comp: missed_hand_off(s, comp) for comp in comps}

    def repaired() -> list[str]:
        return [comp for comp in comps if handed_off(s, comp)]

    first = run_sweep(rq_redis, s, 40, 1)
    print("RUN1", first)
    done = repaired()
    assert 1 <= len(done) < len(comps) and done == comps[:len(done)], (first, done)
    assert "the next run resumes at repository id" in first, first
    assert f"competition {comps[len(done)]}" in first, first
    second = run_sweep(rq_redis, s, 40, 2)
    print("RUN2", second)
    more = repaired()
    assert len(more) > len(done) and more == comps[:len(more)], (second, more)
    assert judged(second) == len(more) - len(done), second  # it resumed, not restarted
    for run in range(3, 3 + len(comps)):
        if repaired() == comps:
            break
        run_sweep(rq_redis, s, 40, run)
    assert repaired() == comps
    for comp, planner in planners.items():
        assert len(s.agent_issues(comp, "analyzer")) == 1
        assert len([b for b in s.app_comments(planner) if "R9 hand-off" in b]) == 1


def links_read(s: Scenario, since: int) -> list[int]:
    """The issues whose "blocked by" links the App read after the ``since``-th call."""
    found = []
    for call in s.app_calls(since):
        path = call["path"].split("?")[0]
        if path.endswith("/dependencies/blocked_by"):
            found.append(int(path.split("/")[-3]))
    return found


def test_a_big_competitions_blocked_by_reads_go_on_where_the_last_run_stopped(
    stack: Stack, rq_redis: redis.Redis,
) -> None:
    s = tenant(stack, "wide")
    numbers = [s.open_issue(AGENTS["planner"], title("w", "planner", f"part {n}"),
                            sorted(agent_labels("w", "planner"))) for n in range(14)]
    s.idle()
    mark = s.request_count()
    first = run_sweep(rq_redis, s, 40, 1)
    read = links_read(s, mark)
    assert read == numbers[:len(read)] and 10 <= len(read) < len(numbers), (first, read)
    assert f"competition w after issue #{read[-1]}" in first, first
    mark = s.request_count()
    second = run_sweep(rq_redis, s, 40, 2)
    assert links_read(s, mark) == numbers[len(read):], second
    assert "resumes" not in second, second



def test_a_repository_whose_listing_outgrows_the_budget_is_swept_a_window_at_a_time(
    stack: Stack, rq_redis: redis.Redis,
) -> None:
    """Listing 450 plain open issues and the planner's takes five pages: within a budget of
    30 calls (WRITE_RESERVE kept back) a run that lists them all has nothing left for the
    competition, and the next run did the same. Now a run lists a window of pages, sweeps
    what it found and leaves the rest of the listing to the next run."""
    s = tenant(stack, "long")
    s.client.control("POST", "faults", {"webhooks": {"drop": 1.0}})
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: s.open_issue("reporter", f"a plain issue {n}", []),
                          range(450)))
    finally:
        s.client.control("POST", "faults", {})
    missed_hand_off(s, "titanic")  # the newest issue: on the listing's last page
    runs = []
    for run in range(1, 5):
        runs.append(run_sweep(rq_redis, s, 30, run))
        if handed_off(s, "titanic"):
            break
    assert handed_off(s, "titanic"), runs
    assert "the next run resumes at repository id" in runs[0], runs
    assert "listing page" in runs[0], runs
