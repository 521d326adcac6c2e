"""R7 on the real stack: a dependency that closes a cycle — through issue bodies or GitHub's
own "blocked by" links, with stage order, within a competition or across competitions — is
refused with ``reactor:blocked`` and a comment naming the cycle; removing the link lifts the
label."""

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


def test_a_link_that_closes_a_cycle_across_competitions_is_refused_then_lifted(
    scenario: Scenario,
) -> None:
    """titanic's planner is blocked by lusitania's; lusitania's then blocked by titanic's
    closes the cycle through both competitions: the second link is refused."""
    s = scenario
    login = AGENTS["planner"]
    titanic = s.open_issue(login, title("titanic", "planner"),
                           sorted(agent_labels("titanic", "planner")))
    lusitania = s.open_issue(login, title("lusitania", "planner"),
                             sorted(agent_labels("lusitania", "planner")))
    s.idle()
    s.call(login, "POST", f"/issues/{titanic}/dependencies/blocked_by",
           json={"issue_id": s.issue(lusitania)["id"]})
    s.idle()
    stays(has_labels(s, titanic, agent_labels("titanic", "planner")), for_s=1,
          what="a link closing no cycle is left alone")
    titanic_id = s.issue(titanic)["id"]
    s.call(login, "POST", f"/issues/{lusitania}/dependencies/blocked_by",
           json={"issue_id": titanic_id})
    blocked(s, lusitania, "lusitania", "planner")
    s.idle()
    [comment] = [b for b in s.app_comments(lusitania) if "R7" in b]
    assert f"#{lusitania} → #{titanic} → #{lusitania}" in comment
    assert has_labels(s, titanic, agent_labels("titanic", "planner"))()
    s.call(login, "DELETE", f"/issues/{lusitania}/dependencies/blocked_by/{titanic_id}")
    wait_until(has_labels(s, lusitania, agent_labels("lusitania", "planner")),
               what="reactor:blocked lifted", describe=lambda: s.state(lusitania))
