"""Guardrails on the real stack, played by the demo's agents: a runaway agent's competition is
paused and a maintainer resumes it (R11); two agents in ping-pong over one label are stopped
after the limit (R12), and a maintainer hands the issue back."""

from __future__ import annotations

import time

from reactor.ops.demo.script import MAINTAINER
from tests.scenarios.conftest import (
    AGENTS,
    CONFIG,
    Scenario,
    agent_labels,
    has_labels,
    stays,
    title,
    wait_until,
)


def ping_pong(s: Scenario, number: int, label: str, players: list[str]) -> None:
    """Each player in turn takes back the last one's change of ``label``."""
    for login in players:
        if label in s.labels(number):
            s.remove_label(login, number, label)
        else:
            s.add_labels(login, number, label)
        time.sleep(0.3)  # several rounds, as agents reacting to each other's webhooks make


def r12(s: Scenario, number: int) -> list[str]:
    return [b for b in s.app_comments(number) if "R12" in b]


def test_two_agents_undoing_each_other_are_stopped_after_the_limit(scenario: Scenario) -> None:
    s, comp = scenario, "titanic"
    a, b = AGENTS["executor"], AGENTS["monitor"]
    number = s.open_issue(AGENTS["planner"], title(comp, "planner"),
                          sorted(agent_labels(comp, "planner")))
    s.idle()
    ping_pong(s, number, "needs-review", [a, b, a, b, a])  # four undos: allowed
    s.idle()
    stays(has_labels(s, number, agent_labels(comp, "planner", "needs-review")),
          what="four undos are not a loop")
    ping_pong(s, number, "needs-review", [b])  # the fifth
    wait_until(has_labels(s, number, agent_labels(comp, "planner", "reactor:needs-human")),
               what="reactor:needs-human on the looping issue", describe=lambda: s.state(number))
    s.idle()
    [comment] = r12(s, number)
    assert f"@{a}" in comment and f"@{b}" in comment and "`needs-review`" in comment
    assert f"@{MAINTAINER}" in comment

    # The reactor acts on the issue no more: the rally goes on unanswered.
    ping_pong(s, number, "needs-review", [a, b])
    s.idle()
    assert len(r12(s, number)) == 1

    # A maintainer hands it back; the rally starts afresh, so one more undo is no loop.
    s.remove_label(MAINTAINER, number, "reactor:needs-human")
    s.idle()
    ping_pong(s, number, "needs-review", [a, b])
    s.idle()
    stays(has_labels(s, number, agent_labels(comp, "planner")), what="handed back, no loop")
    assert len(r12(s, number)) == 1


PAUSED = "reactor:paused"


def test_a_runaway_agent_pauses_its_competition_until_a_maintainer_resumes_it(
    scenario: Scenario,
) -> None:
    s, comp = scenario, "titanic"
    runaway, other = AGENTS["planner"], AGENTS["analyzer"]
    limits = "limits: {moves_per_minute: 8, issues_per_hour: 100, comments_per_hour: 100}\n"
    s.write_config(CONFIG.split("limits:")[0] + limits)
    planner = s.open_issue(runaway, title(comp, "planner"), sorted(agent_labels(comp, "planner")))
    analyzer = s.open_issue(other, title(comp, "analyzer"), sorted(agent_labels(comp, "analyzer")))
    elsewhere = s.open_issue(runaway, title("house", "planner"),
                             sorted(agent_labels("house", "planner")))
    s.idle()
    for _ in range(5):  # ten moves in a few seconds: over a budget of eight a minute
        s.add_labels(runaway, planner, "priority:high")
        s.remove_label(runaway, planner, "priority:high")
    wait_until(has_labels(s, analyzer, agent_labels(comp, "analyzer", PAUSED)),
               what="titanic paused", describe=lambda: s.state(analyzer))
    s.idle()
    assert PAUSED in s.labels(planner) and PAUSED not in s.labels(elsewhere)
    [said] = [b for b in s.app_comments(planner) if "R11" in b and "paused competition" in b]
    assert f"@{runaway}" in said and "moves per minute" in said and f"@{MAINTAINER}" in said

    # Frozen: the agents' moves there are undone, so no stage starts.
    s.add_labels(other, analyzer, "status:starting")
    wait_until(has_labels(s, analyzer, agent_labels(comp, "analyzer", PAUSED)),
               what="the analyzer's start undone", describe=lambda: s.state(analyzer))
    s.idle()

    # The runaway floods on (each flip undone) and a maintainer resumes titanic at once, the
    # flood's deliveries still queued: the pause leaves every issue, and what the runaway did
    # before the resume is forgiven, however late a round counts it: no second pause.
    for _ in range(6):  # twelve moves: over the budget on their own
        s.add_labels(runaway, planner, "priority:high")
        s.call(runaway, "DELETE", f"/issues/{planner}/labels/priority:high", expect=(200, 404))
    s.remove_label(MAINTAINER, planner, PAUSED)
    wait_until(has_labels(s, analyzer, agent_labels(comp, "analyzer")),
               what="titanic resumed", describe=lambda: s.state(analyzer))
    s.settle()
    stays(lambda: PAUSED not in s.labels(planner) | s.labels(analyzer),
          what="titanic stays resumed", describe=lambda: s.state(planner))
    assert len([b for b in s.app_comments(planner) if "R11" in b and "paused competition" in b
                ]) == 1
    s.add_labels(runaway, planner, "status:starting")
    s.idle()
    # (the pause may have undone a flip of priority:high halfway, so that label may stay)
    stays(lambda: {"status:starting", *agent_labels(comp, "planner")} <= s.labels(planner)
          and PAUSED not in s.labels(planner), what="the planner's start accepted after the resume")


def test_a_comment_storm_pauses_its_competition(scenario: Scenario) -> None:
    s, comp = scenario, "titanic"
    chatty = AGENTS["analyzer"]
    limits = "limits: {moves_per_minute: 100, issues_per_hour: 100, comments_per_hour: 3}\n"
    s.write_config(CONFIG.split("limits:")[0] + limits)
    planner = s.open_issue(AGENTS["planner"], title(comp, "planner"),
                           sorted(agent_labels(comp, "planner")))
    s.idle()
    for n in range(4):  # one over a budget of three an hour
        s.call(chatty, "POST", f"/issues/{planner}/comments", json={"body": f"thinking {n}"})
    wait_until(has_labels(s, planner, agent_labels(comp, "planner", PAUSED)),
               what="titanic paused", describe=lambda: s.state(planner))
    s.idle()
    [said] = [b for b in s.app_comments(planner) if "R11" in b]
    assert f"@{chatty}" in said and "4 comments (budget: 3 comments per hour)" in said
