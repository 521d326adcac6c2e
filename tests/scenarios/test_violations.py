"""Broken rules are undone on GitHub: R2 order, R3 isolation, R4 authority, R5 duplicates,
R6 reverse-stage creation. Each revert undoes exactly the offending change, touches no other
label, and leaves one comment naming the rule and the actor (SPEC §3)."""

from __future__ import annotations

import threading

import pytest

from tests.scenarios.conftest import (
    AGENTS,
    MAINTAINER,
    SECOND_PLANNER,
    Scenario,
    agent_labels,
    has_labels,
    move_one_request,
    names,
    next_issue,
    run_planner,
    stays,
    title,
    wait_until,
)


def reverted_to(s: Scenario, number: int, expected: set[str], *, what: str) -> None:
    """The labels come back to ``expected`` and stay so past the settle window."""
    wait_until(has_labels(s, number, expected), what=what, describe=lambda: s.state(number))
    s.settle()
    stays(has_labels(s, number, expected), what=what, describe=lambda: s.state(number))


def one_comment(s: Scenario, number: int, *needles: str) -> str:
    """Exactly one App comment on the issue, and it says every one of ``needles``."""
    bodies = wait_until(lambda: s.app_comments(number), what=f"an App comment on #{number}")
    s.idle()
    bodies = s.app_comments(number)
    assert len(bodies) == 1, bodies
    missing = [n for n in needles if n not in bodies[0]]
    assert not missing, (missing, bodies[0])
    return bodies[0]


def test_an_executor_started_before_the_analyzer_completed_is_reverted_with_a_link(
    scenario: Scenario,
) -> None:
    s, comp = scenario, "titanic"
    run_planner(s, comp)
    analyzer = next_issue(s, comp, "analyzer")["number"]
    s.idle()
    login = AGENTS["executor"]
    executor = s.open_issue(login, title(comp, "executor"), sorted(agent_labels(comp, "executor")))
    s.idle()
    assert s.labels(executor) == agent_labels(comp, "executor")
    s.add_labels(login, executor, "status:starting")

    reverted_to(s, executor, agent_labels(comp, "executor"), what="status:starting removed")
    one_comment(s, executor, "R2", login, f"#{analyzer}")
    assert s.labels(analyzer) == agent_labels(comp, "analyzer", "status:starting")
    assert len(s.agent_issues(comp, "monitor")) == 0


def test_a_second_comp_label_on_an_agent_issue_is_removed(scenario: Scenario) -> None:
    s = scenario
    number = s.open_issue(AGENTS["planner"], title("titanic", "planner"),
                          sorted(agent_labels("titanic", "planner")))
    s.idle()
    s.add_labels("mallory", number, "comp:spaceship")

    reverted_to(s, number, agent_labels("titanic", "planner"), what="comp:spaceship removed")
    one_comment(s, number, "R3", "mallory")
    assert s.agent_issues("spaceship", "planner") == []


@pytest.mark.parametrize("requests", ["one-request", "two-requests"])
def test_a_swapped_comp_label_is_swapped_back(scenario: Scenario, requests: str) -> None:
    """``comp:titanic`` → ``comp:spaceship`` by PUT (one request), or by removing one and
    adding the other: the issue ends with ``comp:titanic`` only."""
    s = scenario
    number = s.open_issue(AGENTS["planner"], title("titanic", "planner"),
                          sorted(agent_labels("titanic", "planner")))
    s.idle()
    if requests == "one-request":
        s.set_labels("mallory", number, *sorted(agent_labels("spaceship", "planner")))
    else:
        s.remove_label("mallory", number, "comp:titanic")
        s.add_labels("mallory", number, "comp:spaceship")

    reverted_to(s, number, agent_labels("titanic", "planner"),
                what="comp:titanic restored and comp:spaceship removed")
    one_comment(s, number, "R3", "mallory")


def test_status_changes_by_actors_not_configured_for_the_stage_are_reverted(
    scenario: Scenario,
) -> None:
    """mallory (nobody's agent) starts a planner issue; the analyzer agent completes another
    competition's running planner issue in one request: both undone, nothing handed off."""
    s = scenario
    planner = AGENTS["planner"]
    first = s.open_issue(planner, title("titanic", "planner"),
                         sorted(agent_labels("titanic", "planner")))
    second = s.open_issue(planner, title("spaceship", "planner"),
                          sorted(agent_labels("spaceship", "planner")))
    s.idle()
    s.add_labels(planner, second, "status:starting")
    s.idle()
    s.add_labels(planner, second, "status:running")
    s.remove_label(planner, second, "status:starting")
    s.idle()
    assert s.labels(second) == agent_labels("spaceship", "planner", "status:running")

    s.add_labels("mallory", first, "status:starting")
    move_one_request(s, AGENTS["analyzer"], second, "spaceship", "planner", "completed")

    reverted_to(s, first, agent_labels("titanic", "planner"), what="status:starting removed")
    reverted_to(s, second, agent_labels("spaceship", "planner", "status:running"),
                what="status:completed removed and status:running restored")
    one_comment(s, first, "R4", "mallory")
    one_comment(s, second, "R4", AGENTS["analyzer"])
    assert s.agent_issues("spaceship", "analyzer") == []
    assert s.agent_issues("titanic", "analyzer") == []


def test_two_agents_opening_the_same_issue_at_once_leave_one_open(scenario: Scenario) -> None:
    s, comp = scenario, "titanic"
    gate = threading.Barrier(2)
    numbers: list[int] = []

    def create(login: str) -> None:
        gate.wait()
        numbers.append(s.open_issue(login, title(comp, "planner"),
                                    sorted(agent_labels(comp, "planner"))))

    threads = [threading.Thread(target=create, args=(login,))
               for login in (AGENTS["planner"], SECOND_PLANNER)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    original, newer = sorted(numbers)

    def closed_as_duplicate() -> bool:
        issue = s.issue(newer)
        return (issue["state"] == "closed" and issue["state_reason"] == "duplicate"
                and "reactor:duplicate" in names(issue))

    describe = lambda: [s.state(n) for n in (original, newer)]  # noqa: E731
    wait_until(closed_as_duplicate, what=f"#{newer} closed as a duplicate", describe=describe)
    s.settle()
    stays(lambda: closed_as_duplicate() and s.issue(original)["state"] == "open",
          what="one open, one duplicate", describe=describe)
    assert s.labels(original) == agent_labels(comp, "planner")
    one_comment(s, newer, "R5", f"#{original}")
    assert s.app_comments(original) == []
    assert [i["number"] for i in s.issues() if i["state"] == "open"] == [original]


def test_an_executor_opening_a_planner_issue_sees_it_closed_with_a_comment(
    scenario: Scenario,
) -> None:
    s, comp = scenario, "titanic"
    login = AGENTS["executor"]
    number = s.open_issue(login, title(comp, "planner", "redo the plan"),
                          sorted(agent_labels(comp, "planner")))

    closed = lambda: s.issue(number)["state"] == "closed"  # noqa: E731
    wait_until(closed, what=f"#{number} closed", describe=lambda: s.state(number))
    s.settle()
    stays(closed, what=f"#{number} closed", describe=lambda: s.state(number))
    # Closed as completed would count as a completed planner stage for R2 (SPEC §3).
    assert s.issue(number)["state_reason"] == "not_planned"
    one_comment(s, number, "R6", login)
    assert s.agent_issues(comp, "analyzer") == []


def test_a_maintainer_may_override(scenario: Scenario) -> None:
    """Control case for the reverts above: the same kind of change by a maintainer stays."""
    s = scenario
    number = s.open_issue(AGENTS["planner"], title("titanic", "planner"),
                          sorted(agent_labels("titanic", "planner")))
    s.idle()
    s.add_labels(MAINTAINER, number, "status:starting")
    s.settle()
    stays(has_labels(s, number, agent_labels("titanic", "planner", "status:starting")),
          what="the maintainer's status:starting kept", describe=lambda: s.state(number))
    assert s.app_comments(number) == []
