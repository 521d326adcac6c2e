"""A competition's parent issue (``chain: [sub_issues]``): R9 nests each stage under it, R3
puts back a stage someone took out."""

from __future__ import annotations

import dataclasses

from reactor.core.actions import AddSubIssue, Comment, CreateIssue, Note, Rule
from reactor.core.config import parse_config
from reactor.core.rules.handoff import undo_steps
from reactor.core.view import Change, IssueSnapshot
from tests.core.world import K, agent, change, issue, run, settles, view

NESTED = parse_config("chain: [dependencies, sub_issues]\nmaintainers: [boss]")
DONE = [change(K.LABELED, 1, "status:completed", by="plan-bot", t=1, delivery="g-done"),
        change(K.UNLABELED, 1, "status:running", by="plan-bot", t=1.1)]


def parent(number: int = 9, comp: str = "titanic", state: str = "open") -> IssueSnapshot:
    return issue(number, f"comp:{comp}", "reactor:competition", state=state)


def under(snapshot: IssueSnapshot, number: int | None) -> IssueSnapshot:
    return dataclasses.replace(snapshot, parent=number)


def took_out(number: int, of: int, *, by: str = "exec-bot", t: float = 2) -> Change:
    return dataclasses.replace(change(K.SUB_ISSUE_REMOVED, number, by=by, t=t), other=of)


def nests(decision: object) -> list[AddSubIssue]:
    return [a for a in decision.actions if isinstance(a, AddSubIssue)]  # type: ignore[attr-defined]


def test_the_first_hand_off_creates_the_parent_and_nests_both_stages_under_it() -> None:
    state = view(agent(1, "planner", "completed"), accepted={1: "running"})
    decision = settles(DONE, state, NESTED)
    creates = [a for a in decision.actions if isinstance(a, CreateIssue)]
    [made] = [c for c in creates if "reactor:competition" in c.labels]
    [stage] = [c for c in creates if c is not made]
    assert made.labels == ("comp:titanic", "reactor:competition")
    assert made.title == "[titanic] competition"
    assert [(a.parent, a.parent_key, a.sub, a.sub_key, a.sub_id) for a in nests(decision)] == [
        (0, made.key, 1, "", 1001), (0, made.key, 0, stage.key, 0)]
    steps = decision.sagas[0].steps
    assert made in steps and all(a in steps for a in nests(decision))
    assert steps.index(stage) < steps.index(nests(decision)[1])  # the stage exists first


def test_a_later_hand_off_nests_only_the_started_stage_under_the_parent() -> None:
    state = view(under(agent(1, "planner", "completed"), 9), agent(2, "analyzer"), parent(),
                 accepted={1: "running"})
    assert [(a.parent, a.sub, a.sub_id, a.replace) for a in nests(run(DONE, state, NESTED))] \
        == [(9, 2, 1002, False)]
    already = view(under(agent(1, "planner", "completed"), 9),
                   under(agent(2, "analyzer"), 9), parent(), accepted={1: "running"})
    assert nests(run(DONE, already, NESTED)) == []


def test_a_stage_under_a_parent_of_its_own_is_left_there() -> None:
    """The completed stage already has a parent (a person's tracking issue): not taken."""
    state = view(under(agent(1, "planner", "completed"), 40), agent(2, "analyzer"), parent(),
                 accepted={1: "running"})
    assert [a.sub for a in nests(run(DONE, state, NESTED))] == [2]


def test_without_sub_issues_in_chain_nothing_is_nested_or_created() -> None:
    state = view(agent(1, "planner", "completed"), agent(2, "analyzer"),
                 accepted={1: "running"})
    decision = run(DONE, state)
    assert nests(decision) == [] and not any(
        isinstance(a, CreateIssue) for a in decision.actions)


def test_a_closed_parent_is_replaced_by_a_new_one_created_once() -> None:
    state = view(agent(1, "planner", "completed"), agent(2, "analyzer"),
                 parent(9, state="closed"), accepted={1: "running"})
    [made] = [a for a in run(DONE, state, NESTED).actions if isinstance(a, CreateIssue)]
    assert made.key.endswith(":titanic:parent:9")


def test_a_failed_hand_off_keeps_the_parent_it_created() -> None:
    state = view(agent(1, "planner", "completed"), accepted={1: "running"})
    steps = run(DONE, state, NESTED).sagas[0].steps
    keys = {a.key: n for n, a in enumerate(steps, start=20) if isinstance(a, CreateIssue)}
    closed = [a.issue for a in undo_steps(steps, keys)]
    parent_key = next(a.key for a in steps if isinstance(a, CreateIssue)
                      and "reactor:competition" in a.labels)
    assert keys[parent_key] not in closed and len(closed) == 1


def test_a_stage_taken_out_of_its_parent_is_put_back_with_one_comment() -> None:
    state = view(agent(3, "executor", "running"), parent(), accepted={3: "running"})
    decision = run([took_out(3, 9)], state, NESTED)
    assert nests(decision) == [AddSubIssue(9, "", 3, "", 1003, False, Rule.R3,
                                           "revert: #3 back under #9")]
    [comment] = [a for a in decision.actions if isinstance(a, Comment)]
    assert comment.issue == 3 and "@exec-bot" in comment.body and "#9" in comment.body
    assert decision.reverted == {3}


def test_a_stage_moved_under_another_parent_is_taken_back_from_it() -> None:
    state = view(under(agent(3, "executor", "running"), 12), parent(), accepted={3: "running"})
    [back] = nests(run([took_out(3, 9)], state, NESTED))
    assert (back.parent, back.sub, back.replace) == (9, 3, True)


def test_what_needs_no_putting_back_is_left_alone() -> None:
    running = agent(3, "executor", "running")
    cases = [
        (view(running, parent(), accepted={3: "running"}), [took_out(3, 9, by="boss")]),
        (view(under(running, 9), parent(), accepted={3: "running"}), [took_out(3, 9)]),
        (view(running, parent(), issue(12, "comp:titanic"), accepted={3: "running"}),
         [took_out(3, 12)]),
        (view(running, accepted={3: "running"}), [took_out(3, 9)]),
    ]
    for state, changes in cases:
        decision = run(changes, state, NESTED)
        assert nests(decision) == [] and decision.reverted == frozenset(), changes
    assert nests(run([took_out(3, 9)], view(running, parent(), accepted={3: "running"}))) == []


def test_past_the_revert_war_cap_a_stage_is_not_put_back_again() -> None:
    state = view(agent(3, "executor", "running"), parent(), accepted={3: "running"},
                 reverts={3: 3})
    decision = run([took_out(3, 9)], state, NESTED)
    assert nests(decision) == []
    assert any(isinstance(n, Note) and n.rule is Rule.R3 and "back under #9" in n.reason
               for n in decision.notes)
