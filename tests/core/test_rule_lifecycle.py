"""R1 lifecycle: transitions judged from the accepted status to the fresh read; settle window."""

from __future__ import annotations

import dataclasses

from reactor.core.actions import AddLabel, Comment, RemoveLabel, Rule
from reactor.core.labels import Status
from tests.core.world import K, agent, at, change, issue, of_type, run, settles, view


def test_a_valid_move_is_accepted_without_any_write() -> None:
    state = view(agent(1, "planner", "starting"))
    decision = settles([change(K.LABELED, 1, "status:starting")], state)
    assert decision.actions == ()
    assert decision.accepted == {1: Status.STARTING}
    assert decision.reverted == frozenset()
    assert any("accepted idle → starting" in n.reason for n in decision.notes)


def test_an_invalid_move_removes_exactly_the_added_label_and_comments_once() -> None:
    state = view(agent(1, "planner", "running", "priority:high"))
    decision = settles([change(K.LABELED, 1, "status:running", by="mallory", t=5)], state)
    removes, adds, notes = of_type(decision, RemoveLabel), of_type(decision, AddLabel), \
        of_type(decision, Comment)
    assert [(a.issue, a.label, a.rule) for a in removes] == [(1, "status:running", Rule.R1)]
    assert adds == []  # no status label = idle: nothing to put back
    assert len(notes) == 1
    body = notes[0].body
    assert "R1 lifecycle" in body and "@mallory" in body and "`status:starting`" in body
    assert notes[0].marker == "<!-- reactor:R1:1:d-labeled-1-status:running-5 -->"
    assert body.endswith(notes[0].marker)
    assert decision.accepted == {1: Status.IDLE}
    assert decision.reverted == {1}


def test_a_removed_status_idle_label_is_put_back_when_the_change_removed_it() -> None:
    state = view(agent(1, "planner", "completed"))
    changes = [change(K.UNLABELED, 1, "status:idle", t=1),
               change(K.LABELED, 1, "status:completed", t=2)]
    decision = settles(changes, state)
    assert [a.label for a in of_type(decision, RemoveLabel)] == ["status:completed"]
    assert [a.label for a in of_type(decision, AddLabel)] == ["status:idle"]


def test_the_label_removed_is_restored_by_its_exact_name() -> None:
    state = view(agent(1, "planner", "completed"), accepted={1: "starting"})
    changes = [change(K.UNLABELED, 1, "Status:Starting", t=1),
               change(K.LABELED, 1, "status:completed", t=2)]
    decision = settles(changes, state)
    assert [a.label for a in of_type(decision, AddLabel)] == ["Status:Starting"]
    assert decision.accepted == {1: Status.STARTING}


def test_labels_are_read_regardless_of_case() -> None:
    state = view(agent(1, "planner", None, "Status: Running"), accepted={1: "starting"})
    changes = [change(K.UNLABELED, 1, "status:starting", t=1),
               change(K.LABELED, 1, "Status: Running", t=1)]
    decision = settles(changes, state, now=10)
    assert decision.actions == () and decision.accepted == {1: Status.RUNNING}


def test_a_two_request_change_is_judged_as_one_move() -> None:
    """starting → running as add-then-remove: both halves in one burst, one clean read."""
    state = view(agent(1, "planner", "running"), accepted={1: "starting"})
    changes = [change(K.LABELED, 1, "status:running", t=1),
               change(K.UNLABELED, 1, "status:starting", t=1.2)]
    assert settles(changes, state).accepted == {1: Status.RUNNING}


def test_two_status_labels_within_the_settle_window_wait_and_touch_nothing() -> None:
    state = view(agent(1, "planner", "starting", "status:running"), accepted={1: "starting"})
    decision = run([change(K.LABELED, 1, "status:running", t=10)], state, now=10.5)
    assert decision.actions == () and decision.accepted == {}
    assert decision.settle_until is not None
    assert decision.settle_until.timestamp() - state.issues[0].created_at.timestamp() == 11


def test_two_status_labels_after_the_settle_window_revert_the_added_one() -> None:
    state = view(agent(1, "planner", "starting", "status:running"), accepted={1: "starting"})
    decision = settles([change(K.LABELED, 1, "status:running", t=10)], state, now=11)
    assert [a.label for a in of_type(decision, RemoveLabel)] == ["status:running"]
    assert of_type(decision, AddLabel) == []
    assert "exactly one known status" in of_type(decision, Comment)[0].body


def test_no_label_right_after_a_non_idle_status_waits_then_restores_it() -> None:
    state = view(agent(1, "planner", None), accepted={1: "running"})
    changes = [change(K.UNLABELED, 1, "status:running", t=10)]
    assert run(changes, state, now=10.2).settle_until is not None
    late = settles(changes, state, now=12)
    assert [a.label for a in of_type(late, AddLabel)] == ["status:running"]


def test_completed_to_idle_by_removing_the_label_is_accepted_after_settling() -> None:
    state = view(agent(1, "planner", None), accepted={1: "completed"})
    changes = [change(K.UNLABELED, 1, "status:completed", t=10)]
    assert run(changes, state, now=10.5).settle_until is not None
    late = settles(changes, state, now=12)
    assert late.actions == () and late.accepted == {1: Status.IDLE}


def test_an_unknown_status_label_is_removed_once_the_settle_window_passed() -> None:
    state = view(agent(1, "planner", "running", "status:done"), accepted={1: "running"})
    early = run([change(K.LABELED, 1, "status:done", t=59.9)], state, now=60)
    assert early.actions == () and early.settle_until is not None
    decision = settles([change(K.LABELED, 1, "status:done", t=59.9)], state, now=61)
    assert [a.label for a in of_type(decision, RemoveLabel)] == ["status:done"]


def test_an_issue_opened_with_a_forbidden_status_is_reverted() -> None:
    state = view(agent(1, "planner", "running"))
    decision = settles([change(K.OPENED, 1)], state)
    assert [a.label for a in of_type(decision, RemoveLabel)] == ["status:running"]


def test_issues_without_exactly_one_agent_label_are_not_judged() -> None:
    state = view(issue(1, "status:running", "comp:titanic"))
    assert run([change(K.LABELED, 1, "status:running")], state).actions == ()


def test_a_status_change_on_an_issue_outside_the_view_is_ignored() -> None:
    assert run([change(K.LABELED, 9, "status:running")], view()).actions == ()


def test_other_label_changes_do_not_judge_a_pending_status() -> None:
    """The status moved but its own webhook has not arrived: wait for it."""
    state = view(agent(1, "planner", "completed", "bug"), accepted={1: "starting"})
    assert run([change(K.LABELED, 1, "bug")], state).actions == ()


def test_a_read_newer_than_the_burst_waits_for_its_webhooks_within_the_bound() -> None:
    """The burst holds an old change of #1, but GitHub's ``updated_at`` shows the issue
    changed since: the agent's newer moves (here straight to ``completed``) are still on
    their way, so nothing is judged while they can still arrive — at most STRETCH
    past the change's own settle window (settle 1 s: until 13 for a change at 10)."""
    fresh = dataclasses.replace(agent(1, "planner", "completed"), updated_at=at(11.2))
    state = view(fresh, accepted={1: "starting"})
    burst = [change(K.LABELED, 1, "status:starting", t=10)]
    for now in (10.5, 11.5, 12.9):
        waiting = run(burst, state, now=now)
        assert waiting.actions == () and waiting.settle_until is not None
        assert at(now) < waiting.settle_until <= at(13)


def test_a_read_newer_than_the_burst_is_judged_once_the_bound_has_passed() -> None:
    """However long GitHub's ``updated_at`` keeps moving (an agent touching the issue), a
    change is judged no later than its settle window plus STRETCH after it arrived:
    webhooks that never came by then cannot shield an invalid move."""
    for updated in (12.5, 30.0, 59.5):
        fresh = dataclasses.replace(agent(1, "planner", "completed"), updated_at=at(updated))
        state = view(fresh, accepted={1: "starting"})
        decided = run([change(K.LABELED, 1, "status:starting", t=10)], state,
                      now=max(13.0, updated + 0.1))
        assert decided.settle_until is None
        assert of_type(decided, RemoveLabel)  # starting → completed skips running: undone


def test_labels_no_rule_reads_never_hold_a_settle_window_open() -> None:
    """An executor starts before its planner completed (R2), then keeps adding and removing
    an unrelated label: its window is the start's alone (settle 1 s), and the start is
    undone once it passes, whatever the churn and GitHub's ``updated_at`` say."""
    planner = agent(1, "planner", "idle")
    executor = dataclasses.replace(agent(2, "executor", "starting", "note"), updated_at=at(14))
    state = view(planner, executor, accepted={1: "idle", 2: "idle"})
    churn = [change(K.LABELED if k % 2 == 0 else K.UNLABELED, 2, "note", t=10 + 0.2 * (k + 1))
             for k in range(20)]
    burst = [change(K.LABELED, 2, "status:starting", t=10), *churn]
    assert run(burst, state, now=10.8).settle_until == at(11)
    undone = run(burst, state, now=11.05)
    assert undone.settle_until is None and of_type(undone, RemoveLabel)


def test_a_status_the_burst_removed_counts_as_reached_when_its_labeled_webhook_never_came() -> None:
    """A planner opens its issue and runs through every status in a flash; the delivery of
    ``labeled status:running`` is lost (refused while Redis restarted). Past the window the
    burst still shows ``running`` taken off, so the agent was there: the completion stands."""
    state = view(agent(1, "planner", "completed"))
    changes = [change(K.OPENED, 1, t=1),
               change(K.LABELED, 1, "status:starting", by="planner-bot", t=1.01),
               change(K.UNLABELED, 1, "status:starting", by="planner-bot", t=1.02),
               change(K.LABELED, 1, "status:completed", by="planner-bot", t=1.04),
               change(K.UNLABELED, 1, "status:running", by="planner-bot", t=1.05)]
    decision = settles(changes, state)
    assert decision.accepted == {1: Status.COMPLETED}
    assert not of_type(decision, RemoveLabel) and not of_type(decision, AddLabel)


def test_a_revert_puts_the_restored_label_back_before_taking_the_agents_off() -> None:
    """Cut off after its first write (a worker killed), the revert must not leave a bare
    issue that reads as the agent's own valid ``completed → idle``: the restored label goes
    back first, so both show and the rules undo the agent's again."""
    state = view(agent(1, "planner", "starting"), accepted={1: "completed"})
    put = frozenset({"status:starting"})  # one PUT: both payloads show its end state
    changes = [dataclasses.replace(change(K.UNLABELED, 1, "status:completed", t=1), shown=put),
               dataclasses.replace(change(K.LABELED, 1, "status:starting", t=1), shown=put)]
    writes = [(type(a).__name__, a.label) for a in settles(changes, state).actions
              if isinstance(a, AddLabel | RemoveLabel)]
    assert writes == [("AddLabel", "status:completed"), ("RemoveLabel", "status:starting")]
