"""R9 hand-off end to end: a whole competition flows, and racing completions hand off once.

Agents change status both ways SPEC §3 allows: two requests (add the new ``status:`` label,
then remove the old one) and one request (``PUT`` the full label set). Neither may be
reverted, and every hand-off creates the next stage's issue exactly once.
"""

from __future__ import annotations

import copy
import itertools
import re
import threading
import uuid
from collections import Counter
from typing import Any

from tests.scenarios.conftest import (
    AGENTS,
    LINKED,
    STAGES,
    Scenario,
    agent_labels,
    has_labels,
    is_handoff,
    move_one_request,
    move_two_requests,
    names,
    next_issue,
    run_planner,
    stays,
    title,
    wait_until,
)

# A comment of a rule that reverts or closes (R1–R8) has no place in a valid flow.
VIOLATION = re.compile(r"\bR[1-8]\b")


def blockers(s: Scenario, number: int) -> list[int]:
    return [b["number"] for b in s.call(s.bot, "GET", f"/issues/{number}/dependencies/blocked_by")]


def linked(s: Scenario, earlier: int, later: int) -> bool:
    """The hand-off links both ways, once: the later issue names the earlier (body or App
    comment) and is "blocked by" it in GitHub's own dependencies, which GitHub shows on both;
    the App's hand-off comment — the link's fallback — is not posted as well."""
    texts = [s.issue(later)["body"] or "", *s.app_comments(later)]
    comments = [t for n in (earlier, later) for t in s.app_comments(n) if is_handoff(t)]
    return (any(f"#{earlier}" in t for t in texts) and blockers(s, later) == [earlier]
            and comments == [])


def drive(s: Scenario, number: int, comp: str, stage: str, *, two_requests_first: bool) -> None:
    """Play ``stage``'s agent on its issue: starting → running → completed."""
    login = AGENTS[stage]
    if two_requests_first:
        move_two_requests(s, login, number, "starting", "running")
    else:
        move_one_request(s, login, number, comp, stage, "running")
    s.idle()
    assert s.labels(number) == agent_labels(comp, stage, "status:running"), s.state(number)
    if two_requests_first:
        move_one_request(s, login, number, comp, stage, "completed")
    else:
        move_two_requests(s, login, number, "running", "completed")


def test_a_five_stage_competition_hands_off_stage_by_stage_to_the_retrospective(
    scenario: Scenario,
) -> None:
    s, comp = scenario, "titanic"
    s.write_config(LINKED)
    numbers = {"planner": run_planner(s, comp)}
    for k, stage in enumerate(STAGES[1:], start=1):
        previous = numbers[STAGES[k - 1]]
        issue = next_issue(s, comp, stage)
        number = issue["number"]
        numbers[stage] = number
        assert issue["title"] == title(comp, stage)
        assert names(issue) == agent_labels(comp, stage, "status:starting")
        assert issue["user"]["login"] == s.bot and issue["state"] == "open"
        assert s.labels(previous) == agent_labels(comp, STAGES[k - 1], "status:completed")
        s.idle()
        drive(s, number, comp, stage, two_requests_first=k % 2 == 1)
    s.settle()

    final = {stage: agent_labels(comp, stage, "status:completed") for stage in STAGES}

    def as_expected() -> bool:
        issues = s.issues()
        return (len(issues) == len(STAGES)
                and all(names(s.issue(numbers[st])) == final[st] for st in STAGES))

    describe = lambda: [(i["number"], i["title"], i["state"], sorted(names(i)))  # noqa: E731
                        for i in s.issues()]
    wait_until(as_expected, what="five completed issues", describe=describe)
    stays(as_expected, what="five completed issues", describe=describe)

    issues = s.issues()
    assert [i["title"] for i in issues] == [title(comp, st) for st in STAGES]
    assert all(i["state"] == "open" for i in issues)
    assert [i["user"]["login"] for i in issues] == [AGENTS["planner"]] + [s.bot] * 4
    created = [r for r in s.requests() if r["actor"] == s.bot and r["method"] == "POST"
               and r["path"] == f"{s.path}/issues" and r["status"] == 201]
    assert len(created) == len(STAGES) - 1, created
    for earlier, later in itertools.pairwise(STAGES):
        # The chain in GitHub itself: each stage "blocked by" the one before (chain default).
        assert linked(s, numbers[earlier], numbers[later]), (earlier, later)
    links = [r for r in s.requests() if r["actor"] == s.bot and r["method"] == "POST"
             and r["path"].endswith("/dependencies/blocked_by")]
    assert len(links) == len(STAGES) - 1, links  # one link a hand-off, never repeated
    for stage in STAGES:
        bodies = s.app_comments(numbers[stage])
        assert len(bodies) == len(set(bodies)), f"a comment posted twice on {stage}: {bodies}"
        assert not [b for b in bodies if VIOLATION.search(b)], (stage, bodies)


def _completed_copy(payload: dict[str, Any]) -> dict[str, Any]:
    """The ``labeled status:running`` payload rewritten as ``labeled status:completed``."""
    fake = copy.deepcopy(payload)
    fake["label"]["name"] = "status:completed"
    fake["issue"]["labels"] = [
        {**label, "name": "status:completed"} if label["name"] == "status:running" else label
        for label in fake["issue"]["labels"]
    ]
    return fake


def test_twenty_racing_completions_of_one_stage_create_exactly_one_next_issue(
    scenario: Scenario,
) -> None:
    """Four workers; the analyzer's completion arrives once from the sandbox (sent twice with
    the same GUID by the duplicate fault) and 20 more times as replays with new GUIDs, all at
    once: one executor issue, one hand-off link (and no comment)."""
    s, comp = scenario, "titanic"
    s.write_config(LINKED)
    run_planner(s, comp)
    analyzer = next_issue(s, comp, "analyzer")["number"]
    s.idle()
    move_one_request(s, AGENTS["analyzer"], analyzer, comp, "analyzer", "running")
    s.idle()
    assert s.labels(analyzer) == agent_labels(comp, "analyzer", "status:running")
    running = s.find_delivery(lambda p: p.get("action") == "labeled"
                              and p["issue"]["number"] == analyzer
                              and p["label"]["name"] == "status:running")
    fake = _completed_copy(running["request"]["payload"])
    webhooks_before = len(s.client.webhooks())
    s.client.control("POST", "faults", {"webhooks": {"duplicate": 1.0}})

    gate = threading.Barrier(21)
    answers: list[int] = []

    def complete() -> None:
        gate.wait()
        move_one_request(s, AGENTS["analyzer"], analyzer, comp, "analyzer", "completed")

    def replay() -> None:
        gate.wait()
        answers.append(s.post_delivery(fake, guid=str(uuid.uuid4())).status_code)

    threads = [threading.Thread(target=complete)] + [
        threading.Thread(target=replay) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == [202] * 20

    next_issue(s, comp, "executor")
    s.settle()
    one = lambda: len(s.agent_issues(comp, "executor")) == 1  # noqa: E731
    stays(one, what="exactly one executor issue",
          describe=lambda: [(i["number"], i["title"], sorted(names(i))) for i in s.issues()])
    s.client.control("POST", "faults", {})

    executor = s.agent_issues(comp, "executor")[0]
    assert names(executor) == agent_labels(comp, "executor", "status:starting")
    assert executor["title"] == title(comp, "executor")
    creations = [r for r in s.requests() if r["actor"] == s.bot and r["method"] == "POST"
                 and r["path"] == f"{s.path}/issues" and r["status"] == 201]
    assert len(creations) == 2, creations  # the analyzer's issue and the executor's
    assert has_labels(s, analyzer, agent_labels(comp, "analyzer", "status:completed"))()
    for number in (analyzer, executor["number"]):
        bodies = s.app_comments(number)
        assert len(bodies) == len(set(bodies)), bodies
        assert not [b for b in bodies if VIOLATION.search(b)], bodies
    assert linked(s, analyzer, executor["number"])

    # The duplicate fault really sent GUIDs twice, and the reactor took each only once.
    attempts = s.client.webhooks(webhooks_before)
    by_guid = Counter(w["guid"] for w in attempts if w["url"] == s.stack.webhook_url)
    twice = [g for g, n in by_guid.items() if n >= 2]
    assert twice, "the duplicate fault sent nothing twice"
    codes = sorted(w["status_code"] for w in attempts if w["guid"] == twice[0])
    assert codes == [200, 202], codes


def test_a_link_github_made_but_answered_502_for_is_not_followed_by_the_comment(
    scenario: Scenario,
) -> None:
    """The hand-off's link is made but GitHub answers 502; its retry is refused (the link
    exists). The hand-off is shown once, by the link: the comment — the link's fallback —
    is not posted, as GitHub lists the link."""
    s, comp = scenario, "titanic"
    s.write_config(LINKED)
    login = AGENTS["planner"]
    planner = s.open_issue(login, title(comp, "planner"), sorted(agent_labels(comp, "planner")))
    s.idle()
    s.add_labels(login, planner, "status:starting")
    s.idle()
    move_two_requests(s, login, planner, "starting", "running")
    s.idle()
    s.client.control("POST", "faults", {"routes": {
        r"POST /repos/[^/]+/[^/]+/issues/[0-9]+/dependencies/blocked_by$":
            {"status": 502, "after": True, "times": 1}}})
    try:
        move_one_request(s, login, planner, comp, "planner", "completed")
        analyzer = next_issue(s, comp, "analyzer")["number"]
        s.settle()
    finally:
        s.client.control("POST", "faults", {})
    s.settle()
    posts = [r["status"] for r in s.requests() if r["actor"] == s.bot and r["method"] == "POST"
             and r["path"].endswith("/dependencies/blocked_by")]
    assert posts[0] == 502 and len(posts) >= 2, posts  # the fault struck; the step was retried
    assert linked(s, planner, analyzer)  # once, by the link: no comment as well
