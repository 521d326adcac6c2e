"""R5 duplicates: one open agent issue per (competition, stage, normalised title)."""

from __future__ import annotations

import pytest

from reactor.core.actions import AddLabel, CloseIssue, CloseReason, Comment, Rule
from reactor.core.config import parse_config
from reactor.core.markers import creation_marker
from reactor.core.rules import normalise_title
from tests.core.world import APP, K, agent, change, of_type, run, settles, view


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Train the model", "train the model"),
        ("Train  the\tmodel!", "train the model"),
        ("[titanic] executor: Train the model", "Train the model."),
        ("Train_the-model", "train the model"),
        ("Ｔｒａｉｎ the model", "train the model"),  # full-width letters (NFKC)
        ("  TRAIN, the MODEL ?", "train the model"),
    ],
)
def test_titles_that_normalise_alike(a: str, b: str) -> None:
    assert normalise_title(a) == normalise_title(b) == "train the model"


@pytest.mark.parametrize(("a", "b"), [("Train the model", "Train a model"),
                                      ("v1 train", "v2 train")])
def test_titles_that_differ(a: str, b: str) -> None:
    assert normalise_title(a) != normalise_title(b)


def test_the_newer_duplicate_is_closed_labelled_and_linked() -> None:
    state = view(agent(3, "executor", title="Train model"),
                 agent(7, "executor", title="train model!", author="dup-bot[bot]"))
    decision = settles([change(K.OPENED, 7, by="dup-bot[bot]")], state)
    [close] = of_type(decision, CloseIssue)
    assert (close.issue, close.state_reason, close.duplicate_of, close.duplicate_issue_id) == \
        (7, CloseReason.DUPLICATE, 3, 1003)
    assert [(a.issue, a.label) for a in of_type(decision, AddLabel)] == [(7, "reactor:duplicate")]
    [comment] = of_type(decision, Comment)
    assert comment.issue == 7 and "#3" in comment.body and comment.rule is Rule.R5


def test_an_edit_that_makes_an_old_issue_match_closes_the_newer_one() -> None:
    state = view(agent(3, "executor", title="same"), agent(7, "executor", title="same"))
    decision = settles([change(K.EDITED, 3)], state)
    assert [c.issue for c in of_type(decision, CloseIssue)] == [7]


def test_different_stage_or_competition_is_no_duplicate() -> None:
    state = view(agent(3, "executor", title="same"), agent(7, "monitor", title="same"),
                 agent(8, "executor", title="same", comp="iris"))
    assert run([change(K.OPENED, 7), change(K.OPENED, 8)], state).actions == ()


def test_a_closed_original_leaves_room_for_a_new_issue() -> None:
    state = view(agent(3, "executor", title="same", state="closed", reason="completed"),
                 agent(7, "executor", title="same"))
    assert run([change(K.OPENED, 7)], state).actions == ()


def test_untouched_groups_are_left_alone() -> None:
    state = view(agent(3, "executor", title="same"), agent(7, "executor", title="same"),
                 agent(9, "planner"))
    assert run([change(K.EDITED, 9)], state).actions == ()


def test_a_maintainers_second_issue_is_kept() -> None:
    config = parse_config("maintainers: [boss]")
    state = view(agent(3, "executor", title="same"),
                 agent(7, "executor", title="same", author="boss"))
    assert run([change(K.OPENED, 7, by="boss"), change(K.EDITED, 3)], state, config).actions == ()


def test_the_reactors_own_issue_is_the_original_even_when_newer() -> None:
    state = view(agent(3, "executor", title="[titanic] executor: fit"),
                 agent(7, "executor", "starting", title="[titanic] executor: fit",
                       body=creation_marker("acme/lab:titanic:executor"), author=APP))
    decision = settles([change(K.OPENED, 3)], state)
    [close] = of_type(decision, CloseIssue)
    assert (close.issue, close.duplicate_of) == (3, 7)


def test_a_pasted_creation_marker_makes_no_issue_the_original() -> None:
    """Anyone can paste the reactor's hidden marker into an issue; it counts only in an issue
    the App's account wrote, so the older, genuine issue stays open."""
    state = view(agent(3, "executor", title="[titanic] executor: fit"),
                 agent(7, "executor", title="[titanic] executor: fit", author="mallory",
                       body=creation_marker("anything")))
    decision = settles([change(K.OPENED, 7, by="mallory")], state)
    [close] = of_type(decision, CloseIssue)
    assert (close.issue, close.duplicate_of) == (7, 3)


def test_three_alike_close_all_but_the_oldest() -> None:
    state = view(*(agent(n, "executor", title="same") for n in (4, 5, 6)))
    decision = settles([change(K.OPENED, 5), change(K.OPENED, 6)], state)
    assert [(c.issue, c.duplicate_of) for c in of_type(decision, CloseIssue)] == [(5, 4), (6, 4)]
