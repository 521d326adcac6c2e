"""R3 isolation: one comp (and one agent) label for life; scoped actors stay in scope."""

from __future__ import annotations

import dataclasses

from reactor.core.actions import AddLabel, CloseIssue, CloseReason, Comment, RemoveLabel, Rule
from reactor.core.config import parse_config
from tests.core.world import K, agent, change, issue, of_type, run, settles, view

SCOPED = parse_config("scopes: {'exec-bot[bot]': [titanic]}\nmaintainers: [boss]")


def labels(decision: object, kind: type) -> list[tuple[int, str]]:
    return [(a.issue, a.label) for a in of_type(decision, kind)]  # type: ignore[arg-type]


def test_a_second_comp_label_is_removed() -> None:
    state = view(agent(1, "planner", None, "comp:iris"))
    decision = settles([change(K.LABELED, 1, "comp:iris", by="eve")], state)
    assert labels(decision, RemoveLabel) == [(1, "comp:iris")]
    [comment] = of_type(decision, Comment)
    assert comment.rule is Rule.R3 and "@eve" in comment.body and "`comp:`" in comment.body


def test_a_removed_comp_label_is_put_back() -> None:
    state = view(issue(1, "agent:planner"))
    decision = settles([change(K.UNLABELED, 1, "comp:titanic", by="eve")], state)
    assert labels(decision, AddLabel) == [(1, "comp:titanic")]


def test_a_swapped_comp_is_swapped_back() -> None:
    state = view(issue(1, "agent:planner", "comp:iris"))
    changes = [change(K.UNLABELED, 1, "comp:titanic", by="eve", t=1),
               change(K.LABELED, 1, "comp:iris", by="eve", t=2)]
    decision = settles(changes, state)
    assert labels(decision, RemoveLabel) == [(1, "comp:iris")]
    assert labels(decision, AddLabel) == [(1, "comp:titanic")]
    assert len(of_type(decision, Comment)) == 1


def test_labelling_a_new_issue_sets_its_identity() -> None:
    state = view(agent(1, "planner"))
    changes = [change(K.OPENED, 1), change(K.LABELED, 1, "agent:planner"),
               change(K.LABELED, 1, "comp:titanic")]
    assert settles(changes, state).actions == ()


def test_two_comps_given_at_once_keep_the_first() -> None:
    state = view(issue(1, "agent:planner", "comp:titanic", "comp:iris"))
    changes = [change(K.LABELED, 1, "comp:titanic", t=1), change(K.LABELED, 1, "comp:iris", t=2)]
    assert labels(settles(changes, state), RemoveLabel) == [(1, "comp:iris")]


def test_the_stage_label_never_changes_either() -> None:
    state = view(issue(1, "agent:executor", "comp:titanic"))
    changes = [change(K.UNLABELED, 1, "agent:planner", t=1),
               change(K.LABELED, 1, "agent:executor", t=2)]
    decision = settles(changes, state)
    assert labels(decision, RemoveLabel) == [(1, "agent:executor")]
    assert labels(decision, AddLabel) == [(1, "agent:planner")]


def test_a_maintainer_may_move_an_issue() -> None:
    state = view(issue(1, "agent:planner", "comp:iris"))
    changes = [change(K.UNLABELED, 1, "comp:titanic", by="boss"),
               change(K.LABELED, 1, "comp:iris", by="boss")]
    assert settles(changes, state, SCOPED).actions == ()


def test_comp_labels_of_plain_issues_are_not_policed() -> None:
    state = view(issue(1, "comp:iris"))
    assert run([change(K.UNLABELED, 1, "comp:titanic")], state).actions == ()


def test_a_scoped_actor_labelling_another_competition_is_reverted() -> None:
    state = view(agent(1, "planner", None, "priority:high", comp="iris"), comp="iris")
    decision = settles([change(K.LABELED, 1, "priority:high", by="exec-bot[bot]")], state, SCOPED)
    assert labels(decision, RemoveLabel) == [(1, "priority:high")]
    [comment] = of_type(decision, Comment)
    assert "outside its scope (titanic)" in comment.body


def test_a_scoped_actor_removing_a_label_elsewhere_gets_it_put_back() -> None:
    state = view(agent(1, "planner", None, comp="iris"), comp="iris")
    decision = settles([change(K.UNLABELED, 1, "bug", by="exec-bot[bot]")], state, SCOPED)
    assert labels(decision, AddLabel) == [(1, "bug")]


def test_a_scoped_actor_moving_a_status_elsewhere_is_reverted_under_r3() -> None:
    state = view(agent(1, "planner", "starting", comp="iris"), comp="iris")
    decision = settles([change(K.LABELED, 1, "status:starting", by="exec-bot[bot]")],
                       state, SCOPED)
    [remove] = of_type(decision, RemoveLabel)
    assert (remove.label, remove.rule) == ("status:starting", Rule.R3)


def test_a_scoped_actor_relabelling_its_own_issue_into_another_comp_is_reverted() -> None:
    state = view(agent(1, "executor", None, "comp:iris"))
    decision = settles([change(K.LABELED, 1, "comp:iris", by="exec-bot[bot]")], state, SCOPED)
    assert labels(decision, RemoveLabel) == [(1, "comp:iris")]
    assert len(of_type(decision, Comment)) == 1  # identity and scope merge into one R3 comment


def test_a_scoped_actor_works_freely_in_scope() -> None:
    state = view(agent(1, "executor", None, "priority:high"))
    changes = [change(K.LABELED, 1, "priority:high", by="exec-bot[bot]")]
    assert settles(changes, state, SCOPED).actions == ()


def test_an_issue_opened_outside_the_actors_scope_is_closed_not_planned() -> None:
    state = view(agent(5, "executor", comp="iris", author="exec-bot[bot]"), comp="iris")
    changes = [change(K.OPENED, 5, by="exec-bot[bot]"),
               change(K.LABELED, 5, "comp:iris", by="exec-bot[bot]")]
    decision = settles(changes, state, SCOPED)
    [close] = of_type(decision, CloseIssue)
    assert (close.issue, close.state_reason, close.rule) == (5, CloseReason.NOT_PLANNED, Rule.R3)
    assert of_type(decision, RemoveLabel) == []  # a closed issue needs no other correction
    [comment] = of_type(decision, Comment)
    assert "closed this issue" in comment.body


def test_an_unscoped_issue_opened_by_a_scoped_actor_is_fine() -> None:
    state = view(issue(5, "bug", author="exec-bot[bot]"), comp=None)
    assert settles([change(K.OPENED, 5, by="exec-bot[bot]")], state, SCOPED).actions == ()


def test_a_new_issue_keeps_its_comp_when_another_was_added_in_a_burst_of_that_comp() -> None:
    """An adversary adds ``comp:iris`` to an issue a moment after it was opened in titanic;
    that change is routed to iris's burst. Titanic's burst reads both labels but holds only
    the issue's own: the ``opened`` payload showed titanic, so titanic stays its identity
    and iris's burst, judged next, removes iris."""
    state = view(agent(1, "planner", "starting", "comp:iris"))
    opened = dataclasses.replace(change(K.OPENED, 1, t=1, by="planner-bot"),
                                 opened_with=frozenset({"agent:planner", "comp:titanic"}))
    ours = [opened,
            change(K.LABELED, 1, "agent:planner", by="planner-bot", t=1.01),
            change(K.LABELED, 1, "comp:titanic", by="planner-bot", t=1.02),
            change(K.LABELED, 1, "status:starting", by="planner-bot", t=1.03)]
    first = run(ours, state)
    assert labels(first, RemoveLabel) == [] and labels(first, AddLabel) == []
    assert first.identities[1].comp == "titanic"
    remembered = view(*state.issues, competitions={1: "titanic"}, stages={1: "planner"},
                      accepted=first.accepted, comp="iris")
    theirs = run([change(K.LABELED, 1, "comp:iris", by="eve", t=1.05)], remembered)
    assert labels(theirs, RemoveLabel) == [(1, "comp:iris")]
