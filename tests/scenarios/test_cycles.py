"""R7 on the real stack: a dependency that closes a cycle — through issue bodies or GitHub's
own "blocked by" links, with stage order — is refused with ``reactor:blocked`` and a comment
naming the cycle; removing the link lifts the label."""

from __future__ import annotations

from tests.scenarios.conftest import (
    AGENTS,
    Scenario,
    agent_labels,
    has_labels,
    stays,
    title,
    wait_until,
)


def planner_and_analyzer(s: Scenario, comp: str) -> tuple[int, int]:
    """A planner issue and an analyzer issue of ``comp``: the analyzer waits for the planner
    by stage order."""
    planner = s.open_issue(AGENTS["planner"], title(comp, "planner"),
                           sorted(agent_labels(comp, "planner")))
    analyzer = s.open_issue(AGENTS["analyzer"], title(comp, "analyzer"),
                            sorted(agent_labels(comp, "analyzer")))
    s.idle()
    return planner, analyzer


def blocked(s: Scenario, number: int, comp: str, stage: str) -> None:
    wait_until(has_labels(s, number, agent_labels(comp, stage, "reactor:blocked")),
               what=f"#{number} labelled reactor:blocked", describe=lambda: s.state(number))


def test_a_body_that_makes_an_earlier_stage_wait_for_a_later_one_is_refused_then_lifted(
    scenario: Scenario,
) -> None:
    s, comp = scenario, "titanic"
    planner, analyzer = planner_and_analyzer(s, comp)
    s.call(AGENTS["planner"], "PATCH", f"/issues/{planner}",
           json={"body": f"This depends on #{analyzer}."})
    blocked(s, planner, comp, "planner")
    s.idle()
    [comment] = [b for b in s.app_comments(planner) if "R7" in b]
    assert f"#{planner}" in comment and f"#{analyzer}" in comment
    s.call(AGENTS["planner"], "PATCH", f"/issues/{planner}", json={"body": "No dependency."})
    wait_until(has_labels(s, planner, agent_labels(comp, "planner")),
               what="reactor:blocked lifted", describe=lambda: s.state(planner))
    s.idle()
    stays(lambda: len([b for b in s.app_comments(planner) if "R7" in b]) == 1,
          what="one R7 comment")


def test_a_native_blocked_by_link_that_closes_a_cycle_is_refused_then_lifted(
    scenario: Scenario,
) -> None:
    s, comp = scenario, "titanic"
    planner, analyzer = planner_and_analyzer(s, comp)
    analyzer_id = s.issue(analyzer)["id"]
    s.call(AGENTS["planner"], "POST", f"/issues/{planner}/dependencies/blocked_by",
           json={"issue_id": analyzer_id})
    blocked(s, planner, comp, "planner")
    s.idle()
    assert len([b for b in s.app_comments(planner) if "R7" in b]) == 1
    s.call(AGENTS["planner"], "DELETE", f"/issues/{planner}/dependencies/blocked_by/{analyzer_id}")
    wait_until(has_labels(s, planner, agent_labels(comp, "planner")),
               what="reactor:blocked lifted", describe=lambda: s.state(planner))


def test_a_dependency_along_the_stage_order_is_no_cycle(scenario: Scenario) -> None:
    s, comp = scenario, "titanic"
    planner, analyzer = planner_and_analyzer(s, comp)
    s.call(AGENTS["analyzer"], "PATCH", f"/issues/{analyzer}",
           json={"body": f"Blocked by #{planner} until the plan is done."})
    s.idle()
    stays(has_labels(s, analyzer, agent_labels(comp, "analyzer")), what="no reactor:blocked")
    assert not [b for b in s.app_comments(analyzer) if "R7" in b]
