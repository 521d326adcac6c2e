"""``chain: [sub_issues]`` end to end: a competition's parent issue holds every stage as a
sub-issue, and a stage an agent takes out of it is put back (R3) — a maintainer's move
stands."""

from __future__ import annotations

from typing import Any

from tests.scenarios.conftest import (
    AGENTS,
    LINKED,
    MAINTAINER,
    STAGES,
    Scenario,
    names,
    next_issue,
    run_planner,
    stays,
    wait_until,
)
from tests.scenarios.test_handoff import VIOLATION, drive

NESTED = LINKED + "chain: [dependencies, sub_issues]\n"


def parents(s: Scenario, comp: str) -> list[dict[str, Any]]:
    return [i for i in s.issues()
            if {f"comp:{comp}", "reactor:competition"} <= names(i)]


def sub_issues(s: Scenario, parent: int) -> list[int]:
    return [i["number"] for i in s.call("reader", "GET", f"/issues/{parent}/sub_issues")]


def run_competition(s: Scenario, comp: str) -> dict[str, int]:
    """Every stage driven to completed; the issue of each stage."""
    numbers = {"planner": run_planner(s, comp)}
    for k, stage in enumerate(STAGES[1:], start=1):
        numbers[stage] = next_issue(s, comp, stage)["number"]
        s.idle()
        drive(s, numbers[stage], comp, stage, two_requests_first=k % 2 == 1)
    s.settle()
    return numbers


def test_a_competition_s_parent_issue_holds_every_stage_in_order(scenario: Scenario) -> None:
    s, comp = scenario, "titanic"
    s.write_config(NESTED)
    numbers = run_competition(s, comp)
    [parent] = wait_until(lambda: parents(s, comp) or None, what="the parent issue")
    assert parent["user"]["login"] == s.bot and parent["title"] == f"[{comp}] competition"
    assert parent["state"] == "open"
    stages = [numbers[stage] for stage in STAGES]
    wait_until(lambda: sub_issues(s, parent["number"]) == stages, what="five sub-issues",
               describe=lambda: sub_issues(s, parent["number"]))
    assert s.issue(parent["number"])["sub_issues_summary"]["total"] == len(STAGES)
    made = [r for r in s.requests() if r["actor"] == s.bot and r["method"] == "POST"
            and r["path"].endswith("/sub_issues") and r["status"] == 201]
    assert len(made) == len(STAGES), made  # each stage nested once, never again
    for number in [*stages, parent["number"]]:
        bodies = s.app_comments(number)
        assert not [b for b in bodies if VIOLATION.search(b)], (number, bodies)


def test_a_stage_an_agent_takes_out_of_its_parent_is_put_back_once(scenario: Scenario
                                                                   ) -> None:
    s, comp = scenario, "titanic"
    s.write_config(NESTED)
    planner = run_planner(s, comp)
    analyzer = next_issue(s, comp, "analyzer")
    s.idle()
    [parent] = parents(s, comp)
    wait_until(lambda: sub_issues(s, parent["number"]) == [planner, analyzer["number"]],
               what="both stages nested", describe=lambda: sub_issues(s, parent["number"]))

    s.call(AGENTS["analyzer"], "DELETE", f"/issues/{parent['number']}/sub_issue",
           json={"sub_issue_id": analyzer["id"]})
    s.settle()
    back = lambda: analyzer["number"] in sub_issues(s, parent["number"])  # noqa: E731
    wait_until(back, what="the analyzer issue back under its parent")
    stays(back, what="the analyzer issue under its parent")
    [comment] = [b for b in s.app_comments(analyzer["number"]) if "R3" in b]
    assert f"@{AGENTS['analyzer']}" in comment and f"#{parent['number']}" in comment

    s.call(MAINTAINER, "DELETE", f"/issues/{parent['number']}/sub_issue",
           json={"sub_issue_id": analyzer["id"]})
    s.settle()
    gone = lambda: analyzer["number"] not in sub_issues(s, parent["number"])  # noqa: E731
    stays(gone, what="the maintainer's move standing")
    assert len([b for b in s.app_comments(analyzer["number"]) if "R3" in b]) == 1
