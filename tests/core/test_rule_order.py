"""R2 order: a stage starts or runs only once every earlier stage has completed."""

from __future__ import annotations

import pytest

from reactor.core.actions import AddLabel, Comment, RemoveLabel, Rule
from reactor.core.labels import Status
from tests.core.world import K, agent, change, of_type, run, settles, view


def test_starting_before_the_previous_stage_completed_is_reverted_with_a_link() -> None:
    state = view(agent(1, "planner", "completed"), agent(2, "analyzer", "running"),
                 agent(3, "executor", "starting"),
                 accepted={1: "completed", 2: "running"})
    decision = settles([change(K.LABELED, 3, "status:starting", by="exec-bot[bot]")], state)
    [remove] = of_type(decision, RemoveLabel)
    assert (remove.issue, remove.label, remove.rule) == (3, "status:starting", Rule.R2)
    [comment] = of_type(decision, Comment)
    assert "R2 stage order" in comment.body and "#2" in comment.body
    assert "stage analyzer has not completed" in comment.body
    assert "@exec-bot[bot]" in comment.body


def test_a_missing_earlier_stage_is_named_in_the_comment() -> None:
    state = view(agent(1, "planner", "completed"), agent(3, "executor", "starting"),
                 accepted={1: "completed"})
    decision = settles([change(K.LABELED, 3, "status:starting")], state)
    [comment] = of_type(decision, Comment)
    assert "stage analyzer of titanic has no issue yet" in comment.body


@pytest.mark.parametrize("earlier", [
    agent(2, "analyzer", "completed"),
    agent(2, "analyzer", "running", state="closed", reason="completed"),
])
def test_completed_or_closed_as_completed_earlier_stages_let_it_start(earlier: object) -> None:
    state = view(agent(1, "planner", "completed"), earlier,  # type: ignore[arg-type]
                 agent(3, "executor", "starting"))
    decision = settles([change(K.LABELED, 3, "status:starting")], state)
    assert decision.actions == () and decision.accepted[3] is Status.STARTING


def test_closed_as_not_planned_does_not_count() -> None:
    state = view(agent(1, "planner", "running", state="closed", reason="not_planned"),
                 agent(2, "analyzer", "starting"), accepted={1: "running"})
    assert of_type(settles([change(K.LABELED, 2, "status:starting")], state), RemoveLabel)


def test_the_first_stage_is_never_blocked() -> None:
    state = view(agent(1, "planner", "starting"))
    assert settles([change(K.LABELED, 1, "status:starting")], state).actions == ()


def test_a_start_judged_with_its_predecessors_completion_is_taken_back_and_handed_off() -> None:
    """Webhooks arrive in any order, so a completion in the same burst may have come after
    the start: the agent's label is taken back (R2) and the hand-off labels the stage
    itself, so the agent sees the App's ``labeled`` event, its signal to start."""
    state = view(agent(1, "planner", "completed"), agent(2, "analyzer", "starting"),
                 accepted={1: "running"})
    changes = [change(K.LABELED, 1, "status:completed", t=1),
               change(K.UNLABELED, 1, "status:running", t=1),
               change(K.LABELED, 2, "status:starting", t=2)]
    decision = run(changes, state)
    assert decision.accepted[1] is Status.COMPLETED
    assert decision.accepted[2] is Status.STARTING
    writes = [(type(a).__name__, a.label, a.rule) for a in decision.actions
              if isinstance(a, AddLabel | RemoveLabel)]
    assert writes == [("RemoveLabel", "status:starting", Rule.R2),
                      ("AddLabel", "status:starting", Rule.R9)]


def test_an_earlier_stage_completed_invalidly_in_the_same_burst_does_not_unblock() -> None:
    """The planner jumps starting → completed (R1); the analyzer may not ride on it."""
    state = view(agent(1, "planner", "completed"), agent(2, "analyzer", "starting"),
                 accepted={1: "starting"})
    changes = [change(K.LABELED, 1, "status:completed", t=1),
               change(K.UNLABELED, 1, "status:starting", t=1),
               change(K.LABELED, 2, "status:starting", t=2)]
    decision = settles(changes, state)
    rules = {(a.issue, a.rule) for a in of_type(decision, RemoveLabel)}
    assert rules == {(1, Rule.R1), (2, Rule.R2)}


def test_a_remembered_status_wins_over_an_unjudged_read() -> None:
    """The planner's `completed` label has not been judged yet: it does not unblock."""
    state = view(agent(1, "planner", "completed"), agent(2, "analyzer", "starting"),
                 accepted={1: "running"})
    assert of_type(run([change(K.LABELED, 2, "status:starting")], state), RemoveLabel)


def test_moves_into_error_are_not_guarded() -> None:
    state = view(agent(2, "analyzer", "error"))
    assert settles([change(K.LABELED, 2, "status:error")], state).actions == ()


def test_a_stage_the_config_does_not_know_has_no_order() -> None:
    state = view(agent(2, "deployer", "starting"))
    assert settles([change(K.LABELED, 2, "status:starting")], state).actions == ()
