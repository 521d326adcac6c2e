"""The hand-off as a saga (R9): a worker killed at any step, GitHub answering 5xx after it
wrote, and a step refused for good.

The crash tests run the completion on a worker armed with a crash point
(reactor/shell/crashpoints.py, tests/crashing_worker.py): ``after-step=N`` exits as if killed
right after performing step N and before its journal records it — the worst moment — and
``after-handoff`` once the hand-off is done but before its round closes. A normal worker then
takes over.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Stack, running_stack
from tests.scenarios.conftest import (
    AGENTS,
    Scenario,
    agent_labels,
    make_scenario,
    move_one_request,
    names,
    next_issue,
    run_planner,
    stays,
    title,
    wait_until,
)


@pytest.fixture
def stack1(redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    """web + one worker, so a test decides which worker handles the hand-off."""
    with running_stack(redis_url, workers=1, log_dir=tmp_path) as stack:
        yield stack


@pytest.fixture
def solo(stack1: Stack, request: pytest.FixtureRequest) -> Iterator[Scenario]:
    yield from make_scenario(stack1, request)


def crash_on_completion(s: Scenario, crash_at: str, complete: Callable[[], None]) -> None:
    """Stop the normal worker, let one armed with ``crash_at`` take the completion, then
    resume normally."""
    normal = s.stack.processes.pop(1)
    normal.terminate()
    normal.wait(timeout=10)
    crashing = s.stack.start("worker", crash_at=crash_at)
    complete()
    assert crashing.wait(timeout=30) == 137, "the worker did not crash at the hand-off step"
    s.stack.processes.remove(crashing)
    s.stack.start("worker")


def handed_off_once(s: Scenario, comp: str, planner: int, expected: tuple[int, int, int]
                    ) -> None:
    """The dead worker's lease expires (locks.LEASE_TTL_MS) and the scheduler wakes the
    competition whose round outlived it; the new worker resumes the journal; then the counts
    hold and stay (its RQ job waits in the started registry until RQ's maintenance finds it
    abandoned, so the reactor is not waited idle here)."""
    wait_until(lambda: hand_off_counts(s, comp, planner) == expected, timeout=60,
               what=f"the hand-off done once {expected}",
               describe=lambda: hand_off_counts(s, comp, planner))
    stays(lambda: hand_off_counts(s, comp, planner) == expected, for_s=3,
          what="no second hand-off", describe=lambda: hand_off_counts(s, comp, planner))


def hand_off_counts(s: Scenario, comp: str, planner: int) -> tuple[int, int, int]:
    """(analyzer issues, hand-off comments on the planner issue, on the analyzer issue)."""
    analyzers = s.agent_issues(comp, "analyzer")
    on_analyzer = sum(len([b for b in s.app_comments(i["number"]) if "R9 hand-off" in b])
                      for i in analyzers)
    on_planner = len([b for b in s.app_comments(planner) if "R9 hand-off" in b])
    return len(analyzers), on_planner, on_analyzer


def running_planner(s: Scenario, comp: str) -> int:
    """A planner issue opened by its agent and moved to ``running``, each step judged."""
    login = AGENTS["planner"]
    planner = s.open_issue(login, title(comp, "planner"), sorted(agent_labels(comp, "planner")))
    s.idle()
    s.add_labels(login, planner, "status:starting")
    s.idle()
    move_one_request(s, login, planner, comp, "planner", "running")
    s.idle()
    return planner


@pytest.mark.parametrize("step", [0, 1])
def test_a_worker_killed_while_creating_the_next_issue_leaves_it_created_once(
    solo: Scenario, step: int
) -> None:
    s, comp = solo, "titanic"
    login = AGENTS["planner"]
    planner = running_planner(s, comp)
    crash_on_completion(s, f"after-step={step}", lambda: move_one_request(
        s, login, planner, comp, "planner", "completed"))
    handed_off_once(s, comp, planner, (1, 1, 0))
    assert "status:starting" in names(next_issue(s, comp, "analyzer"))
    resumed = s.stack.wait_for_audit(lambda r: r.action == "resume" and r.issue == str(planner))
    assert f"hand-off from #{planner} resumed at step {step + 1}" in resumed.detail
    # the record names the deliveries the completion accounted for (not judged again)
    assert resumed.guids() and all(g.count("-") == 4 for g in resumed.guids())


def test_a_worker_killed_after_the_hand_off_before_its_round_closed_leaves_nothing_unrecorded(
    solo: Scenario,
) -> None:
    """The hand-off was done and its journal gone, and the deliveries of the completion marked
    judged, but the round's records were never written: the next round, finding them judged,
    records what became of them rather than passing over them."""
    s, comp = solo, "titanic"
    login = AGENTS["planner"]
    planner = running_planner(s, comp)
    crash_on_completion(s, "after-handoff", lambda: move_one_request(
        s, login, planner, comp, "planner", "completed"))
    handed_off_once(s, comp, planner, (1, 1, 0))
    wait_until(lambda: not unrecorded(s), timeout=30, what="every delivery recorded",
               describe=lambda: unrecorded(s))


def unrecorded(s: Scenario) -> set[str]:
    """Deliveries the reactor answered 2xx that no audit record names."""
    answered = {w["guid"] for w in s.client.webhooks() if w["url"] == s.stack.webhook_url
                and w["status_code"] is not None and 200 <= w["status_code"] < 300}
    return answered - {guid for r in s.stack.audit() for guid in r.guids()}


def test_a_worker_killed_between_claiming_a_comment_and_posting_it_leaves_it_posted_once(
    solo: Scenario,
) -> None:
    """The hand-off's first comment was claimed, never posted: the next worker finds it
    missing on GitHub and posts it."""
    s, comp = solo, "titanic"
    login = AGENTS["planner"]
    planner = running_planner(s, comp)
    crash_on_completion(s, "after-claim", lambda: move_one_request(
        s, login, planner, comp, "planner", "completed"))
    handed_off_once(s, comp, planner, (1, 1, 0))


def analyzer_and_running_planner(s: Scenario, comp: str) -> tuple[int, int]:
    """An analyzer issue opened by its agent, and the planner's issue moved to running."""
    analyzer = s.open_issue(AGENTS["analyzer"], title(comp, "analyzer"),
                            sorted(agent_labels(comp, "analyzer")))
    return analyzer, running_planner(s, comp)


@pytest.mark.parametrize("step", [0, 1])
def test_a_worker_killed_while_starting_an_existing_issue_starts_it_once(
    solo: Scenario, step: int
) -> None:
    s, comp = solo, "titanic"
    analyzer, planner = analyzer_and_running_planner(s, comp)
    login = AGENTS["planner"]
    crash_on_completion(s, f"after-step={step}", lambda: move_one_request(
        s, login, planner, comp, "planner", "completed"))
    handed_off_once(s, comp, planner, (1, 0, 1))
    assert s.labels(analyzer) == agent_labels(comp, "analyzer", "status:starting")


def test_a_comment_github_wrote_before_answering_502_is_not_posted_again(
    scenario: Scenario,
) -> None:
    s, comp = scenario, "titanic"
    s.client.control("POST", "faults", {"routes": {
        "POST /repos/.*/comments$": {"status": 502, "after": True}}})
    try:
        planner = run_planner(s, comp)
        analyzer = next_issue(s, comp, "analyzer")
        s.settle()
    finally:
        s.client.control("POST", "faults", {})
    s.settle()
    bodies = [b for b in s.app_comments(planner) if "R9 hand-off" in b]
    assert len(bodies) == 1, bodies
    assert len(s.agent_issues(comp, "analyzer")) == 1 and analyzer["state"] == "open"


def test_an_issue_github_created_before_answering_502_is_not_created_again(
    scenario: Scenario,
) -> None:
    s, comp = scenario, "titanic"
    planner = s.open_issue(AGENTS["planner"], title(comp, "planner"),
                           sorted(agent_labels(comp, "planner")))
    s.idle()
    s.client.control("POST", "faults", {"routes": {
        r"POST /repos/[^/]+/[^/]+/issues$": {"status": 502, "after": True}}})
    try:
        login = AGENTS["planner"]
        s.add_labels(login, planner, "status:starting")
        s.idle()
        move_one_request(s, login, planner, comp, "planner", "running")
        s.idle()
        move_one_request(s, login, planner, comp, "planner", "completed")
        next_issue(s, comp, "analyzer")
        s.settle()
    finally:
        s.client.control("POST", "faults", {})
    s.settle()
    stays(lambda: len(s.agent_issues(comp, "analyzer")) == 1, what="one analyzer issue",
          describe=lambda: [(i["number"], i["title"]) for i in s.issues()])
    assert len([b for b in s.app_comments(planner) if "R9 hand-off" in b]) == 1


def test_a_hand_off_refused_for_good_is_undone_and_handed_to_a_human(
    scenario: Scenario,
) -> None:
    """The comment on the next issue answers 403 (it was locked): the done steps (its label
    swap) are undone, the completed issue gets reactor:needs-human and one comment saying
    what failed."""
    s, comp = scenario, "titanic"
    analyzer = s.open_issue(AGENTS["analyzer"], title(comp, "analyzer"),
                            sorted(agent_labels(comp, "analyzer", "status:idle")))
    s.idle()
    s.client.control("POST", "faults", {"routes": {
        f"POST /repos/.*/issues/{analyzer}/comments$": {"status": 403}}})
    try:
        planner = run_planner(s, comp)
        wait_until(lambda: "reactor:needs-human" in s.labels(planner),
                   what="the completed issue handed to a human",
                   describe=lambda: s.state(planner))
        s.settle()
    finally:
        s.client.control("POST", "faults", {})
    assert s.labels(analyzer) == agent_labels(comp, "analyzer", "status:idle")
    failed = [b for b in s.app_comments(planner) if "hand-off to the next stage failed" in b]
    assert len(failed) == 1 and "403" in failed[0]


def test_a_label_github_wrote_before_answering_502_is_not_written_again(
    scenario: Scenario,
) -> None:
    """The hand-off's ``status:starting`` is applied but answered 502, and the analyzer's
    agent moves on at once. The App reads the issue's timeline instead of writing the label
    again, which (after the agent removed it) would have undone the agent's move."""
    s, comp = scenario, "titanic"
    analyzer, planner = analyzer_and_running_planner(s, comp)
    login = AGENTS["planner"]
    s.client.control("POST", "faults", {"routes": {
        r"POST /repos/[^/]+/[^/]+/issues/[0-9]+/labels$": {"status": 502, "after": True}}})
    try:
        move_one_request(s, login, planner, comp, "planner", "completed")
        wait_until(lambda: "status:starting" in s.labels(analyzer), what="the hand-off")
        move_one_request(s, AGENTS["analyzer"], analyzer, comp, "analyzer", "running")
        s.settle()
    finally:
        s.client.control("POST", "faults", {})
    s.settle()
    assert s.labels(analyzer) == agent_labels(comp, "analyzer", "status:running")
    events = s.call("reader", "GET", f"/issues/{analyzer}/events", params={"per_page": 100})
    by_app = [(e["event"], e["label"]["name"]) for e in events
              if e["actor"]["login"] == s.bot and "label" in e]
    assert by_app == [("labeled", "status:starting")], by_app
    assert len([b for b in s.app_comments(analyzer) if "R9 hand-off" in b]) == 1


def test_a_revert_whose_second_write_answered_502_is_finished(scenario: Scenario) -> None:
    """The agent moves ``completed → starting`` (invalid). The App's revert puts
    ``status:completed`` back, and GitHub answers 502 without writing it. The issue shows
    exactly what the App's own writes left, so the label is written once more — rather than
    the revert being decided afresh from a read the App itself changed."""
    s, comp = scenario, "titanic"
    login = AGENTS["planner"]
    planner = running_planner(s, comp)
    move_one_request(s, login, planner, comp, "planner", "completed")
    s.settle()
    s.client.control("POST", "faults", {"routes": {
        rf"POST /repos/[^/]+/[^/]+/issues/{planner}/labels$": {"status": 502, "times": 1}}})
    mark = len(s.requests())
    try:
        move_one_request(s, login, planner, comp, "planner", "starting")  # one PUT
        s.settle()
    finally:
        s.client.control("POST", "faults", {})
    assert s.labels(planner) == agent_labels(comp, "planner", "status:completed")
    posts = [r["status"] for r in s.requests(mark)  # a fault answers before knowing who asks
             if r["method"] == "POST" and r["path"].endswith(f"/issues/{planner}/labels")]
    assert posts == [502, 200], posts
