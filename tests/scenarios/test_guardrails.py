"""Guardrails on the real stack, played by the demo's agents: two agents in ping-pong over
one label are stopped after the limit (R12), and a maintainer hands the issue back."""

from __future__ import annotations

import time

from reactor.ops.demo.script import MAINTAINER
from tests.scenarios.conftest import (
    AGENTS,
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
