"""Issue 7 on the real stack: no valid move is ever undone, no violation is left in place.

Each test is one scenario of the issue (numbered as there), played by distinct sandbox users
at the speed real bots act, against ``reactor serve`` and four ``reactor worker`` processes.
What is asserted is what the team sees on GitHub — labels, comments, issues — plus, where the
scenario is about them, the reactor's memory (10) and its audit log (13). ``test_1b`` is the
fast agent of scenario 1 starting from its issue's opening (as the race's planners do).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import redis
from rq import Queue

from reactor.core.routing import Scope
from reactor.core.view import Repo
from reactor.store import audit, keys, turns
from tests.scenarios.conftest import (
    AGENTS,
    CONFIG,
    MAINTAINER,
    SECOND_PLANNER,
    Scenario,
    agent_labels,
    drive_to_completed,
    has_labels,
    is_handoff,
    move_fast,
    move_one_request,
    move_two_requests,
    names,
    next_issue,
    open_planners,
    repo_id,
    run_planner,
    start_planners,
    stays,
    title,
    wait_until,
)

VIOLATION = re.compile(r"\bR[1-8]\b")  # a comment of a rule that reverts, closes or escalates
PLANNER, ANALYZER, EXECUTOR = AGENTS["planner"], AGENTS["analyzer"], AGENTS["executor"]
SLOW_S = 60.0  # deadlines for conditions that wait on RQ's retries or many competitions


def violations(s: Scenario, number: int) -> list[str]:
    return [b for b in s.app_comments(number) if VIOLATION.search(b)]


def settled(s: Scenario, expected: dict[int, set[str]], *, what: str) -> None:
    """Once the reactor is idle past the settle window, each issue shows the labels
    ``expected`` says, and keeps them."""
    def done() -> bool:
        return all(s.labels(number) == labels for number, labels in expected.items())

    s.settle()
    stays(done, what=what, describe=lambda: [s.state(number) for number in expected])


def settled_on(s: Scenario, number: int, expected: set[str], *, what: str) -> None:
    settled(s, {number: expected}, what=what)


def comments_now(s: Scenario, number: int, count: int) -> list[str]:
    """Once the reactor is idle, the issue has exactly ``count`` App comments."""
    s.idle()
    bodies = s.app_comments(number)
    assert len(bodies) == count, bodies
    return bodies


def all_issues(s: Scenario) -> list[tuple[int, str, str, list[str]]]:
    return [(i["number"], i["title"], i["state"], sorted(names(i))) for i in s.issues()]


def together(*calls: Callable[[], None]) -> None:
    """Run ``calls`` in threads released at the same moment; re-raise the first failure."""
    gate = threading.Barrier(len(calls))
    failures: list[BaseException] = []

    def run(call: Callable[[], None]) -> None:
        try:
            gate.wait()
            call()
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if failures:
        raise failures[0]


def handed_off_once(s: Scenario, comps: list[str], planners: dict[str, int], *,
                    retried: bool = False) -> None:
    """Every planner ends completed, each competition has one analyzer issue (starting), and
    the only App comment on each planner issue is its one hand-off comment.

    ``retried``: a job failed and RQ retries it 5 s later, beyond what ``idle()`` waits for,
    so the outcome is awaited first."""
    def done() -> bool:
        return all(s.labels(planners[c]) == agent_labels(c, "planner", "status:completed")
                   and [names(i) for i in s.agent_issues(c, "analyzer")]
                   == [agent_labels(c, "analyzer", "status:starting")] for c in comps)

    if retried:
        wait_until(done, timeout=SLOW_S, what="every planner completed and handed off once",
                   describe=lambda: all_issues(s))
    s.settle()
    stays(done, what="every planner completed and handed off once",
          describe=lambda: all_issues(s))
    for comp in comps:
        bodies = s.app_comments(planners[comp])
        assert len(bodies) == 1 and is_handoff(bodies[0]), (comp, bodies)
        analyzer = s.agent_issues(comp, "analyzer")[0]
        assert analyzer["user"]["login"] == s.bot and analyzer["title"] == title(comp, "analyzer")
        assert violations(s, analyzer["number"]) == []


# -- valid work is never undone --------------------------------------------------------------


def test_1_fast_agents_on_twelve_competitions_are_never_reverted_and_hand_off_once(
    scenario: Scenario,
) -> None:
    """Twelve planners at once go starting → running in one PUT, then running → completed as
    add-then-remove 20 ms apart, without waiting for the reactor."""
    s = scenario
    comps = [f"fast{i:02d}" for i in range(12)]
    planners = start_planners(s, comps)

    together(*(lambda c=comp: move_fast(s, PLANNER, planners[c], c, "planner", gap_s=0.02)
               for comp in comps))

    handed_off_once(s, comps, planners)


def test_1b_agents_that_open_their_issue_and_finish_it_without_pause_hand_off_once(
    scenario: Scenario,
) -> None:
    """Four planners each open their issue and, never waiting for the reactor, go idle →
    starting (add), starting → running (PUT), running → completed (add-then-remove)."""
    s = scenario
    comps = [f"eager{i}" for i in range(4)]
    planners: dict[str, int] = {}

    def run(comp: str) -> None:
        number = s.open_issue(PLANNER, title(comp, "planner"),
                              sorted(agent_labels(comp, "planner")))
        planners[comp] = number
        s.add_labels(PLANNER, number, "status:starting")
        move_fast(s, PLANNER, number, comp, "planner", gap_s=0.02)

    together(*(partial(run, comp) for comp in comps))

    handed_off_once(s, comps, planners)


def test_2_a_completion_whose_job_was_retried_stands_and_hands_off_once(
    scenario: Scenario,
) -> None:
    """GitHub's issue reads answer 502 while the planner goes starting → running → completed,
    until RQ has had to retry the job of the competition's turn; then GitHub recovers."""
    s, comp = scenario, "retried"
    planner = start_planners(s, [comp])[comp]
    requests_before = s.request_count()
    s.client.control("POST", "faults", {"routes": {
        "GET /repos/.*/issues/[0-9]+$": {"status": 502},
        "GET /repos/.*/issues$": {"status": 502},
    }})
    connection = redis.Redis.from_url(s.stack.redis_url)
    queue = Queue(keys.QUEUE_EVENTS, connection=connection)
    digest = Scope(Repo(s.owner, s.name, repo_id(s)), s.installation_id, comp).digest

    def retried() -> str | None:  # any job of the turn: a delivery's, or one that went on
        prefix = f"rq:job:{turns.owner_id(digest, '')}"
        for key in connection.scan_iter(f"{prefix}*"):
            job = queue.fetch_job(key.decode().removeprefix("rq:job:"))
            if job is not None and job.retries_left is not None and job.retries_left < 3:
                return job.id
        return None

    try:
        move_fast(s, PLANNER, planner, comp, "planner", gap_s=0.02)
        guid = wait_until(retried, timeout=SLOW_S, what="a delivery's job retried by RQ",
                          describe=lambda: s.busy())
    finally:
        s.client.control("POST", "faults", {})
    # Refused before authentication, so logged without an actor; nobody else read issues.
    refused = [r for r in s.requests(requests_before) if r["status"] == 502
               and r["method"] == "GET" and "/issues" in r["path"]]
    assert refused, "the fault never struck the App's reads"

    handed_off_once(s, [comp], {comp: planner}, retried=True)
    job = queue.fetch_job(guid)  # done: a turn's job keeps no result
    assert job is None or job.get_status() == "finished", job.get_status()
    connection.close()


def test_3_an_intruder_in_the_same_burst_loses_only_its_own_change(scenario: Scenario) -> None:
    """On three competitions the analyzer moves starting → running in one PUT and, right
    after, mallory adds ``status:error``: only ``status:error`` goes, ``running`` stays, one
    comment blames mallory alone, and the analyzer's next move (→ completed) hands off."""
    s = scenario
    comps = ["duo1", "duo2", "duo3"]
    planners = start_planners(s, comps)
    for comp in comps:
        move_two_requests(s, PLANNER, planners[comp], "starting", "running")
    s.idle()
    for comp in comps:
        move_one_request(s, PLANNER, planners[comp], comp, "planner", "completed")
    analyzers = {comp: next_issue(s, comp, "analyzer")["number"] for comp in comps}
    s.idle()

    for comp in comps:
        move_one_request(s, ANALYZER, analyzers[comp], comp, "analyzer", "running")
        s.add_labels("mallory", analyzers[comp], "status:error")

    settled(s, {analyzers[c]: agent_labels(c, "analyzer", "status:running") for c in comps},
            what="status:error removed, status:running kept")
    for comp in comps:
        [body] = comments_now(s, analyzers[comp], 1)
        assert body.startswith("**R4 ") and body.split("@")[1].startswith("mallory "), body
        assert "removed `status:error`" in body and "status:running" not in body, body
    for comp in comps:
        move_one_request(s, ANALYZER, analyzers[comp], comp, "analyzer", "completed")
    for comp in comps:
        executor = next_issue(s, comp, "executor")
        assert names(executor) == agent_labels(comp, "executor", "status:starting")
    s.settle()
    for comp in comps:
        assert s.labels(analyzers[comp]) == agent_labels(comp, "analyzer", "status:completed")
        assert len(s.agent_issues(comp, "executor")) == 1


def test_4_with_the_reactors_memory_wiped_a_running_agent_still_completes(
    scenario: Scenario,
) -> None:
    """Two running planners; every ``reactor:*`` key is deleted (RQ's stay); then one planner
    completes by add-then-remove, the other in one PUT: both accepted, both hand off."""
    s = scenario
    comps = ["amnesia1", "amnesia2"]
    planners = start_planners(s, comps)
    for comp in comps:
        move_two_requests(s, PLANNER, planners[comp], "starting", "running")
    s.idle()
    for comp in comps:
        assert s.labels(planners[comp]) == agent_labels(comp, "planner", "status:running")

    client = redis.Redis.from_url(s.stack.redis_url)
    try:
        wiped = list(client.scan_iter("reactor:*", count=1000))
        assert any(k.startswith(b"reactor:issue:") for k in wiped), wiped
        client.delete(*wiped)
        assert list(client.scan_iter("reactor:*", count=1000)) == []
    finally:
        client.close()

    move_two_requests(s, PLANNER, planners[comps[0]], "running", "completed")
    move_one_request(s, PLANNER, planners[comps[1]], comps[1], "planner", "completed")

    handed_off_once(s, comps, planners)


# -- violations are never left in place ------------------------------------------------------


# Webhook faults while the swaps are made, so that each swap's unlabel and label arrive apart
# (delayed one by one) and, in the first round, the label before the unlabel (reordered).
SWAP_ROUNDS = [{"reorder": 1.0, "delay_ms": 300}, {"delay_ms": 300}]
SWAPS_PER_ROUND = 3


def test_5_an_agent_label_swapped_in_one_put_is_swapped_back_every_time(
    scenario: Scenario,
) -> None:
    """Six running planner issues (six competitions) relabelled ``agent:executor`` in one PUT
    each, in two rounds, the unlabel and label webhooks delayed apart and reordered."""
    s = scenario
    comps = [f"swap{i}" for i in range(len(SWAP_ROUNDS) * SWAPS_PER_ROUND)]
    planners = start_planners(s, comps)
    for comp in comps:
        move_one_request(s, PLANNER, planners[comp], comp, "planner", "running")
    s.idle()

    for round_, faults in enumerate(SWAP_ROUNDS):
        swapped = comps[round_ * SWAPS_PER_ROUND:(round_ + 1) * SWAPS_PER_ROUND]
        s.client.control("POST", "faults", {"webhooks": faults})
        try:
            for comp in swapped:
                s.set_labels(PLANNER, planners[comp],
                             *sorted(agent_labels(comp, "executor", "status:running")))
            for comp in swapped:
                wait_until(has_labels(s, planners[comp],
                                      agent_labels(comp, "planner", "status:running")),
                           what=f"{comp}: agent:planner restored",
                           describe=partial(s.state, planners[comp]))
            s.idle()
        finally:
            s.client.control("POST", "faults", {})
    s.settle()
    stays(lambda: all(s.labels(planners[c]) == agent_labels(c, "planner", "status:running")
                      for c in comps),
          what="agent:planner kept on every swapped issue", describe=lambda: all_issues(s))

    for comp in comps:
        number = planners[comp]
        [body] = comments_now(s, number, 1)
        assert "R3" in body and f"@{PLANNER}" in body, body
        assert s.agent_issues(comp, "executor") == []

    # Still the planner stage: its completion hands off to the analyzer, not further.
    move_one_request(s, PLANNER, planners[comps[0]], comps[0], "planner", "completed")
    assert names(next_issue(s, comps[0], "analyzer")) == agent_labels(
        comps[0], "analyzer", "status:starting")
    s.settle()
    assert s.agent_issues(comps[0], "monitor") == []
    assert s.labels(planners[comps[0]]) == agent_labels(comps[0], "planner", "status:completed")


def test_6_a_status_set_before_the_agent_label_is_judged_when_the_label_comes(
    scenario: Scenario,
) -> None:
    """``comp:z`` + ``status:running`` with no ``agent:`` label, then ``agent:executor``
    while z's planner is idle: ``status:running`` is undone (idle → running breaks R1/R2)."""
    s, comp = scenario, "z"
    planner = open_planners(s, [comp])[comp]
    number = s.open_issue(EXECUTOR, title(comp, "executor"), [f"comp:{comp}", "status:running"])
    s.idle()
    assert s.labels(number) == {f"comp:{comp}", "status:running"}
    s.add_labels(EXECUTOR, number, "agent:executor")

    settled_on(s, number, agent_labels(comp, "executor"), what="status:running removed")
    [body] = comments_now(s, number, 1)
    assert re.search(r"\bR[12]\b", body) and f"@{EXECUTOR}" in body, body
    assert s.labels(planner) == agent_labels(comp, "planner")
    assert s.app_comments(planner) == []


def test_7_a_maintainers_move_to_another_competition_rehomes_the_issue(
    scenario: Scenario,
) -> None:
    """A maintainer moves an idle analyzer issue ``comp:alpha`` → ``comp:beta``: kept. Alpha's
    hand-off then ignores it; in beta it cannot start while beta's planner is idle; beta's
    hand-off starts it rather than creating a second open beta analyzer issue."""
    s = scenario
    planners = open_planners(s, ["alpha", "beta"])
    moved = s.open_issue(ANALYZER, title("alpha", "analyzer"),
                         sorted(agent_labels("alpha", "analyzer")))
    s.idle()
    s.set_labels(MAINTAINER, moved, *sorted(agent_labels("beta", "analyzer")))
    s.idle()
    assert s.labels(moved) == agent_labels("beta", "analyzer")  # kept (checked again below)
    assert s.app_comments(moved) == []

    drive_to_completed(s, planners["alpha"], "alpha", "planner")
    alpha_analyzer = next_issue(s, "alpha", "analyzer")
    assert alpha_analyzer["number"] != moved and alpha_analyzer["user"]["login"] == s.bot
    s.settle()
    assert s.labels(moved) == agent_labels("beta", "analyzer")

    s.add_labels(ANALYZER, moved, "status:starting")
    settled_on(s, moved, agent_labels("beta", "analyzer"), what="status:starting undone in beta")
    [body] = comments_now(s, moved, 1)
    assert "R2" in body and f"#{planners['beta']}" in body, body

    drive_to_completed(s, planners["beta"], "beta", "planner")
    settled_on(s, moved, agent_labels("beta", "analyzer", "status:starting"),
               what="beta's hand-off starts the moved issue")
    beta = [i for i in s.agent_issues("beta", "analyzer") if i["state"] == "open"]
    assert [i["number"] for i in beta] == [moved], all_issues(s)
    assert [i["number"] for i in s.agent_issues("alpha", "analyzer")] == [
        alpha_analyzer["number"]]
    handoff = [b for b in s.app_comments(moved) + s.app_comments(planners["beta"])
               if is_handoff(b)]
    assert len(handoff) == 1 and f"#{moved}" in handoff[0], handoff


def app_token_config(s: Scenario) -> str:
    """CONFIG with the App's own login as a planner agent (an agent using the App's token)."""
    line = f"planner: [planner-bot, {SECOND_PLANNER}]"
    assert line in CONFIG
    return CONFIG.replace(line, f'planner: [planner-bot, {SECOND_PLANNER}, "{s.bot}"]')


def test_8_an_agent_with_the_apps_own_token_is_judged_but_the_reactors_writes_are_not(
    scenario: Scenario,
) -> None:
    """The planner agent acts with an installation token of the App: its idle → completed is
    reverted (R1); its valid run is accepted and hands off; the hand-off's own writes (the new
    analyzer issue in ``starting``, by the same login) are never judged."""
    s, comp = scenario, "apptoken"
    s.write_config(app_token_config(s))
    s.idle()
    token = s.client.control("POST", "tokens", {"installation_id": s.installation_id})["token"]

    def as_app(method: str, path: str, body: dict[str, Any]) -> None:
        response = s.client.as_token(token, method, s.path + path, json=body)
        assert response.status_code in (200, 201), response.text

    number = open_planners(s, [comp])[comp]
    as_app("POST", f"/issues/{number}/labels", {"labels": ["status:completed"]})
    settled_on(s, number, agent_labels(comp, "planner"), what="status:completed undone")
    [body] = comments_now(s, number, 1)
    assert "R1" in body and f"@{s.bot}" in body, body
    assert s.agent_issues(comp, "analyzer") == []

    as_app("POST", f"/issues/{number}/labels", {"labels": ["status:starting"]})
    s.idle()
    assert s.labels(number) == agent_labels(comp, "planner", "status:starting")
    as_app("PUT", f"/issues/{number}/labels",
           {"labels": sorted(agent_labels(comp, "planner", "status:running"))})
    s.idle()
    assert s.labels(number) == agent_labels(comp, "planner", "status:running")
    as_app("PUT", f"/issues/{number}/labels",
           {"labels": sorted(agent_labels(comp, "planner", "status:completed"))})

    analyzer = next_issue(s, comp, "analyzer")
    s.settle()
    stays(has_labels(s, analyzer["number"], agent_labels(comp, "analyzer", "status:starting")),
          what="the hand-off's status:starting kept", describe=lambda: all_issues(s))
    assert s.labels(number) == agent_labels(comp, "planner", "status:completed")
    bodies = s.app_comments(number)
    assert len(bodies) == 2 and is_handoff(bodies[1]), bodies
    assert s.app_comments(analyzer["number"]) == []
    assert len(s.agent_issues(comp, "analyzer")) == 1


# -- the revert-war cap ----------------------------------------------------------------------


ESCALATED = "stops reverting"  # words of the escalation comment (reactor/core/comments.py)


def violate(s: Scenario, number: int, comp: str, *, comments: int) -> None:
    """The planner agent moves its idle issue to completed (R1): undone, one more comment."""
    s.add_labels(PLANNER, number, "status:completed")
    wait_until(lambda: s.labels(number) == agent_labels(comp, "planner")
               and len(s.app_comments(number)) == comments,
               what=f"revert number {comments}", describe=lambda: s.state(number))
    s.idle()


def test_9ab_a_hand_back_restarts_the_revert_count_and_no_agent_can_forge_needs_human(
    scenario: Scenario,
) -> None:
    """(a) ``revert_limit: 2``: the planner's third violation is escalated, once; the
    maintainer fixes the labels and removes ``reactor:needs-human``; the next violation is
    reverted, not escalated again. (b) Meanwhile, in two other competitions, the executor
    labels its own issue ``reactor:needs-human`` and then starts it while the planner is idle
    — right after (forged1), or once the label was undone (forged2): every change undone."""
    s = scenario
    s.write_config(CONFIG + "revert_limit: 2\n")
    s.idle()
    comps = ["war", "forged1", "forged2"]
    planners = open_planners(s, comps)
    war = planners["war"]
    executors = {c: s.open_issue(EXECUTOR, title(c, "executor"),
                                 sorted(agent_labels(c, "executor"))) for c in comps[1:]}
    s.idle()

    s.add_labels(EXECUTOR, executors["forged1"], "reactor:needs-human")
    s.add_labels(EXECUTOR, executors["forged1"], "status:starting")
    s.add_labels(EXECUTOR, executors["forged2"], "reactor:needs-human")
    violate(s, war, "war", comments=1)
    assert s.labels(executors["forged2"]) == agent_labels("forged2", "executor")
    s.add_labels(EXECUTOR, executors["forged2"], "status:starting")
    violate(s, war, "war", comments=2)

    s.add_labels(PLANNER, war, "status:completed")
    flagged = agent_labels("war", "planner", "status:completed", "reactor:needs-human")
    settled(s, {war: flagged, **{executors[c]: agent_labels(c, "executor") for c in comps[1:]}},
            what="war escalated; the forged label and the early starts undone")
    bodies = comments_now(s, war, 3)
    assert ESCALATED in bodies[2] and f"@{MAINTAINER}" in bodies[2], bodies[2]
    for comp in comps[1:]:
        forged = comments_now(s, executors[comp], 2)
        assert any("R2" in b and f"#{planners[comp]}" in b for b in forged), forged
        assert any("R4" in b and "reactor:needs-human" in b for b in forged), forged
        assert not any(ESCALATED in b for b in forged), forged

    s.remove_label(MAINTAINER, war, "status:completed")
    s.remove_label(MAINTAINER, war, "reactor:needs-human")
    settled_on(s, war, agent_labels("war", "planner"), what="the maintainer's fix kept")
    assert len(s.app_comments(war)) == 3

    violate(s, war, "war", comments=4)
    settled_on(s, war, agent_labels("war", "planner"), what="reverted, not escalated")
    bodies = s.app_comments(war)
    assert len(bodies) == 4 and "R1" in bodies[3] and ESCALATED not in bodies[3], bodies[3]
    assert sum(ESCALATED in b for b in bodies) == 1, bodies


def test_9c_the_revert_window_comes_from_the_config(scenario: Scenario) -> None:
    """``revert_limit: 2``, ``revert_window: 2s``: three violations each more than 2 s after
    the last revert are all reverted; none is escalated (a fixed 1 h window would)."""
    s, comp = scenario, "window"
    s.write_config(CONFIG + "revert_limit: 2\nrevert_window: 2s\n")
    s.idle()
    number = open_planners(s, [comp])[comp]
    for count in (1, 2, 3):
        if count > 1:
            time.sleep(2.5)  # the window itself must pass (the revert was recorded before idle)
        violate(s, number, comp, comments=count)
    stays(has_labels(s, number, agent_labels(comp, "planner")), what="reverted, not escalated",
          describe=lambda: s.state(number))
    bodies = s.app_comments(number)
    assert len(bodies) == 3 and not any(ESCALATED in b for b in bodies), bodies


# -- wrong decisions -------------------------------------------------------------------------


def remembered_status(s: Scenario, number: int) -> str | None:
    client = redis.Redis.from_url(s.stack.redis_url)
    try:
        found = client.hget(keys.issue(repo_id(s), number), "status")
    finally:
        client.close()
    return None if found is None else found.decode()


@pytest.mark.timeout(240)
def test_10_re_running_a_competition_reopens_and_restarts_the_closed_analyzer_issue(
    scenario: Scenario,
) -> None:
    s, comp = scenario, "rerun"
    planner = run_planner(s, comp)
    analyzer = next_issue(s, comp, "analyzer")["number"]
    s.idle()
    move_one_request(s, ANALYZER, analyzer, comp, "analyzer", "running")
    s.idle()
    move_two_requests(s, ANALYZER, analyzer, "running", "completed")
    next_issue(s, comp, "executor")
    s.idle()
    s.call(ANALYZER, "PATCH", f"/issues/{analyzer}",
           json={"state": "closed", "state_reason": "completed"})
    s.settle()
    assert s.labels(analyzer) == agent_labels(comp, "analyzer", "status:completed")
    before = {n: s.app_comments(n) for n in (planner, analyzer)}

    s.set_labels(PLANNER, planner, *sorted(agent_labels(comp, "planner")))  # completed → idle
    s.settle()
    drive_to_completed(s, planner, comp, "planner")

    def restarted() -> bool:
        issue = s.issue(analyzer)
        return issue["state"] == "open" and names(issue) == agent_labels(
            comp, "analyzer", "status:starting")

    wait_until(restarted, what=f"#{analyzer} reopened in status:starting",
               describe=lambda: all_issues(s))
    s.settle()
    stays(restarted, what=f"#{analyzer} reopened in status:starting",
          describe=lambda: all_issues(s))
    assert [i["number"] for i in s.agent_issues(comp, "analyzer")] == [analyzer]
    assert s.labels(planner) == agent_labels(comp, "planner", "status:completed")
    new = [b for n in (planner, analyzer) for b in s.app_comments(n)[len(before[n]):]]
    assert len(new) == 1 and is_handoff(new[0]), new
    assert f"#{planner}" in new[0] and f"#{analyzer}" in new[0], new[0]
    assert remembered_status(s, analyzer) == "starting"
    assert remembered_status(s, planner) == "completed"

    # The reactor and GitHub agree: the analyzer's next move is judged from starting.
    move_one_request(s, ANALYZER, analyzer, comp, "analyzer", "running")
    s.settle()
    stays(has_labels(s, analyzer, agent_labels(comp, "analyzer", "status:running")),
          what="the re-run analyzer's running kept", describe=lambda: s.state(analyzer))
    assert violations(s, analyzer) == []


def test_11_a_next_stage_in_error_is_started_and_one_flagged_for_a_human_is_explained(
    scenario: Scenario,
) -> None:
    """The analyzer moved its issue idle → error before the planner completed: the hand-off
    starts it (error → starting). With ``reactor:needs-human`` on it (a maintainer's), one
    comment on the planner issue says why, and nothing else changes."""
    s = scenario
    comps = ["erred", "flagged"]
    planners = open_planners(s, comps)
    analyzers = {c: s.open_issue(ANALYZER, title(c, "analyzer"),
                                 sorted(agent_labels(c, "analyzer"))) for c in comps}
    s.idle()
    for comp in comps:
        s.add_labels(ANALYZER, analyzers[comp], "status:error")
    s.idle()
    s.add_labels(MAINTAINER, analyzers["flagged"], "reactor:needs-human")
    s.settle()
    flagged = agent_labels("flagged", "analyzer", "status:error", "reactor:needs-human")
    assert s.labels(analyzers["flagged"]) == flagged
    assert s.labels(analyzers["erred"]) == agent_labels("erred", "analyzer", "status:error")

    for comp in comps:
        s.add_labels(PLANNER, planners[comp], "status:starting")
    s.idle()
    for comp in comps:
        move_two_requests(s, PLANNER, planners[comp], "starting", "running")
    s.idle()
    for comp in comps:
        move_one_request(s, PLANNER, planners[comp], comp, "planner", "completed")

    settled_on(s, analyzers["erred"], agent_labels("erred", "analyzer", "status:starting"),
               what="error → starting by the hand-off")
    handoff = s.app_comments(analyzers["erred"]) + s.app_comments(planners["erred"])
    assert len(handoff) == 1 and is_handoff(handoff[0]), handoff
    assert f"#{planners['erred']}" in handoff[0] and f"#{analyzers['erred']}" in handoff[0]

    [body] = comments_now(s, planners["flagged"], 1)
    assert "R9" in body and "reactor:needs-human" in body and f"#{analyzers['flagged']}" in body
    stays(has_labels(s, analyzers["flagged"], flagged), what="the flagged analyzer untouched",
          describe=lambda: s.state(analyzers["flagged"]))
    assert s.app_comments(analyzers["flagged"]) == []
    for comp in comps:
        assert s.labels(planners[comp]) == agent_labels(comp, "planner", "status:completed")
        assert [i["number"] for i in s.agent_issues(comp, "analyzer")] == [analyzers[comp]]


def test_12_a_malformed_config_is_reported_once_per_text_on_the_newest_agent_issue(
    scenario: Scenario,
) -> None:
    """An evaluation in the older competition finds ``stages: 5``: one comment on the
    repository's newest agent issue (not on the older one, nor on a newer plain issue);
    more evaluations add none; a second, different malformed text gets its own comment."""
    s = scenario
    older = open_planners(s, ["older"])["older"]
    newest = open_planners(s, ["newer"])["newer"]
    plain = s.open_issue("alice", "a plain question", [])
    s.idle()

    def poke(count: int) -> None:
        """Changes in the older competition (its planner to error and back: moves a rule
        reads), each evaluated on its own."""
        for _ in range(count):
            s.add_labels(PLANNER, older, "status:error")
            s.idle()
            s.remove_label(PLANNER, older, "status:error")
            s.idle()

    s.write_config("stages: 5\n")
    s.idle()
    poke(2)
    [first] = comments_now(s, newest, 1)
    assert "stages" in first, first

    s.write_config("stages: [planner, analyzer]\nsettle: soon\n")
    s.idle()
    poke(2)
    bodies = comments_now(s, newest, 2)
    assert bodies[0] == first and "settle" in bodies[1], bodies
    s.settle()
    assert s.app_comments(older) == [] and s.app_comments(plain) == []
    assert len(s.app_comments(newest)) == 2


# -- every delivery is accounted for; no delivery lost -----------------------------------------


def audit_cli(s: Scenario, guid: str) -> list[dict[str, Any]]:
    """``reactor audit --delivery GUID --json``, the real command, against the stack's Redis."""
    hidden = ("APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "WEBHOOK_SECRET", "GITHUB_API_URL")
    env = {k: v for k, v in os.environ.items() if k not in hidden}
    done = subprocess.run(
        [sys.executable, "-m", "reactor", "audit", "--delivery", guid, "--json"],
        capture_output=True, text=True, timeout=60, env={**env, "REDIS_URL": s.stack.redis_url})
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def accounts_for(record: dict[str, Any], guid: str) -> bool:
    return guid == record["delivery"] or guid in record.get("deliveries", "").split(",")


@pytest.mark.timeout(240)
def test_13_14_every_delivery_arrives_and_is_accounted_for_in_the_audit_log(
    scenario: Scenario,
) -> None:
    """(13) A busy run — fast agents, a two-request move parked half-made, an intruder,
    hand-offs — then (14) six seconds without a delivery and one more move: the sandbox still
    delivers it (no attempt ever fails with status 0), and every ``issues`` delivery the
    reactor accepted (202) is found in the audit log by its GUID, a parked one as parked."""
    s = scenario
    s.write_config(CONFIG.replace("settle: 1s", "settle: 3s"))  # room to see a burst parked
    s.idle()
    comps = ["busy1", "busy2", "busy3"]
    planners = start_planners(s, comps)

    s.add_labels("mallory", planners["busy3"], "status:error")
    move_fast(s, PLANNER, planners["busy1"], "busy1", "planner")
    s.add_labels(PLANNER, planners["busy2"], "status:running")

    def parked() -> audit.AuditRecord | None:
        return next((r for r in s.stack.audit() if r.issue == str(planners["busy2"])
                     and r.label == "status:running" and r.outcome == "parked"), None)

    held = wait_until(parked, what="the half-made move parked for the settle window",
                      describe=lambda: s.stack.audit()[-10:])
    s.remove_label(PLANNER, planners["busy2"], "status:starting")
    s.idle()
    move_one_request(s, PLANNER, planners["busy2"], "busy2", "planner", "completed")
    for comp in ("busy1", "busy2"):
        analyzer = next_issue(s, comp, "analyzer")["number"]
        s.idle()
        move_fast(s, ANALYZER, analyzer, comp, "analyzer")
        next_issue(s, comp, "executor")
    s.settle()
    assert s.labels(planners["busy3"]) == agent_labels("busy3", "planner", "status:starting")

    before = len(s.client.webhooks())
    time.sleep(6.0)  # the scenario itself: six seconds without a delivery
    assert len(s.client.webhooks()) == before
    move_one_request(s, PLANNER, planners["busy3"], "busy3", "planner", "running")
    settled_on(s, planners["busy3"], agent_labels("busy3", "planner", "status:running"),
               what="the move after the pause accepted")
    sent = s.client.webhooks(before)
    assert any(w["event"] == "issues" for w in sent), sent
    assert all(w["status_code"] in (200, 202) for w in sent), sent
    assert [w for w in s.client.webhooks() if w["status_code"] == 0] == []

    accepted = [w["guid"] for w in s.client.webhooks() if w["event"] == "issues"
                and w["url"] == s.stack.webhook_url and w["status_code"] == 202]
    assert len(accepted) >= 20, len(accepted)
    covered: set[str] = set()
    for record in s.stack.audit():  # reactor.store.audit's reader, the whole log
        covered |= record.guids()
    missing = [g for g in accepted if g not in covered]
    assert missing == [], f"{len(missing)} of {len(accepted)} deliveries have no audit record"

    intruder = next(r for r in s.stack.audit() if r.actor == "mallory")
    for guid in {held.delivery, intruder.delivery, accepted[0], accepted[-1]}:
        found = audit_cli(s, guid)
        assert found and all(accounts_for(r, guid) for r in found), (guid, found)
    own = [r for r in audit_cli(s, held.delivery) if r["delivery"] == held.delivery]
    assert own[0]["outcome"] == "parked", own
    assert "no rule broken" not in own[0]["detail"], own
