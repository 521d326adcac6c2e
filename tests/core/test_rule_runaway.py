"""R11 runaway: an actor over its budget pauses its competition; a maintainer resumes it."""

from __future__ import annotations

import dataclasses

import pytest

from reactor.core.actions import AddLabel, Comment, RemoveLabel, Rule
from reactor.core.config import Limits, RepoConfigError, parse_config
from reactor.core.rules import evaluate
from reactor.core.view import CompetitionView, Overrun
from tests.core.world import K, agent, at, change, view

CONFIG = parse_config("maintainers: [alice]\nagents: {planner: [bot-a], analyzer: [bot-b]}")
PAUSED = "reactor:paused"
OVER = Overrun("bot-a", "moves", 31, "30 moves per minute", 1, "d-over")


def world(*extra_planner: str, overruns: tuple[Overrun, ...] = ()) -> CompetitionView:
    return dataclasses.replace(
        view(agent(1, "planner", "running", *extra_planner), agent(2, "analyzer"),
             agent(3, "executor", comp="other"), accepted={1: "starting", 2: "idle"}),
        overruns=overruns)


def test_limits_default_and_parse_strictly():
    assert parse_config("").limits == Limits(30, 20, 60)
    assert parse_config("limits: {issues_per_hour: 5}").limits == Limits(30, 5, 60)
    for text, key in (("limits: {moves: 5}", "limits.moves"),
                      ("limits: {moves_per_minute: 0}", "limits.moves_per_minute"),
                      ("limits: 30", "limits")):
        with pytest.raises(RepoConfigError) as raised:
            parse_config(text)
        assert raised.value.key == key


def test_an_actor_over_its_budget_pauses_the_competition_and_its_moves_are_undone():
    move = change(K.LABELED, 1, "status:running", by="bot-a", t=1)
    gone = change(K.UNLABELED, 1, "status:starting", by="bot-a", t=1.1)
    decision = evaluate([move, gone], world(overruns=(OVER,)), CONFIG, now=at(5))
    paused = [(a.issue, a.label) for a in decision.actions if isinstance(a, AddLabel)
              and a.label == PAUSED]
    assert paused == [(1, PAUSED), (2, PAUSED)]  # its own competition's issues only
    [said] = [a for a in decision.actions if isinstance(a, Comment) and a.rule is Rule.R11
              and "paused competition" in a.body]
    assert said.issue == 1 and "@bot-a" in said.body and "31 moves" in said.body
    assert "30 moves per minute" in said.body and "@alice" in said.body
    undo = {(type(a).__name__, a.label) for a in decision.actions
            if isinstance(a, AddLabel | RemoveLabel) and a.label != PAUSED}
    assert undo == {("RemoveLabel", "status:running"), ("AddLabel", "status:starting")}
    assert decision.accepted.get(1) is None  # no move accepted, so no hand-off


def test_a_maintainer_over_a_budget_pauses_nothing():
    move = change(K.LABELED, 2, "status:starting", by="alice", t=1)
    over = Overrun("alice", "moves", 99, "30 moves per minute", 2, move.delivery_id)
    decision = evaluate([move], world(overruns=(over,)), CONFIG, now=at(5))
    assert not [a for a in decision.actions if getattr(a, "label", None) == PAUSED]


def test_a_comment_storm_pauses_the_competition_with_no_change_to_undo():
    over = Overrun("bot-b", "comments", 61, "60 comments per hour", 2, "d-comment")
    decision = evaluate([], world(overruns=(over,)), CONFIG, now=at(5))
    assert {(a.issue, a.label) for a in decision.actions if isinstance(a, AddLabel)} == {
        (1, PAUSED), (2, PAUSED)}
    [said] = [a for a in decision.actions if isinstance(a, Comment)]
    assert said.issue == 2 and "61 comments (budget: 60 comments per hour)" in said.body


def test_while_paused_every_agent_change_is_undone_and_nothing_hands_off():
    done = change(K.LABELED, 1, "status:completed", by="bot-a", t=1)
    left = change(K.UNLABELED, 1, "status:running", by="bot-a", t=1.1)
    paused = view(agent(1, "planner", "completed", PAUSED), agent(2, "analyzer", None, PAUSED),
                  accepted={1: "running"})
    decision = evaluate([done, left], paused, CONFIG, now=at(5))
    labels = {(type(a).__name__, a.issue, a.label) for a in decision.actions
              if isinstance(a, AddLabel | RemoveLabel)}
    assert labels == {("RemoveLabel", 1, "status:completed"), ("AddLabel", 1, "status:running")}
    assert not decision.sagas and not decision.accepted
    [comment] = [a for a in decision.actions if isinstance(a, Comment)]
    assert comment.rule is Rule.R11 and "while its competition is paused" in comment.body


def test_an_agent_taking_the_pause_off_is_reverted_and_a_maintainer_resumes():
    agent_took = change(K.UNLABELED, 1, PAUSED, by="bot-a", t=1)
    paused = view(agent(1, "planner", "running"), agent(2, "analyzer", None, PAUSED),
                  accepted={1: "running"})
    restored = evaluate([agent_took], paused, CONFIG, now=at(5))
    assert AddLabel(1, PAUSED, Rule.R4, "revert: restore reactor:paused") in restored.actions
    assert not restored.resumed
    maintainer = change(K.UNLABELED, 1, PAUSED, by="alice", t=1)
    resumed = evaluate([maintainer], paused, CONFIG, now=at(5))
    assert resumed.resumed
    assert [(a.issue, a.label) for a in resumed.actions if isinstance(a, RemoveLabel)] == [
        (2, PAUSED)]


def test_a_maintainer_is_never_braked_nor_undone_while_paused():
    move = change(K.LABELED, 1, "status:completed", by="alice", t=1)
    gone = change(K.UNLABELED, 1, "status:running", by="alice", t=1.1)
    paused = view(agent(1, "planner", "completed", PAUSED), accepted={1: "running"})
    over = dataclasses.replace(paused, overruns=(Overrun("alice", "moves", 99, "30", 1, "d"),))
    decision = evaluate([move, gone], over, CONFIG, now=at(5))
    assert not [a for a in decision.actions if isinstance(a, RemoveLabel)]
    assert decision.accepted.get(1) == "completed"  # a maintainer's move stands


def half_paused(*overruns: Overrun) -> CompetitionView:
    """Titanic with ``reactor:paused`` on the analyzer's issue only: a pause cut short, or a
    maintainer's resume (the planner's issue) whose webhook is not judged yet."""
    return dataclasses.replace(
        view(agent(1, "planner", "running"), agent(2, "analyzer", None, PAUSED),
             agent(3, "executor", comp="other"), accepted={1: "running", 2: "idle"}),
        overruns=overruns)


def test_a_pause_is_written_on_the_culprits_issue_first_with_its_comment():
    """So a pause a conflict cuts short (the runaway is still changing other issues) shows
    where it began, and says why there."""
    over = Overrun("bot-b", "moves", 31, "30 moves per minute", 2, "d-over")
    flip = change(K.LABELED, 2, "priority:high", by="bot-b", t=1)
    decision = evaluate([flip], world(overruns=(over,)), CONFIG, now=at(5))
    first, said, then = decision.actions[:3]
    assert (first, then) == (AddLabel(2, PAUSED, Rule.R11, first.reason),
                             AddLabel(1, PAUSED, Rule.R11, first.reason))
    assert isinstance(said, Comment) and said.issue == 2 and "paused competition" in said.body
    assert decision.paused_by == "bot-b"


def test_a_half_paused_competition_is_frozen_as_it_stands_even_with_an_overrun():
    """Not completed: the planner's label may be gone because a maintainer resumed, and no
    second comment."""
    decision = evaluate([], half_paused(OVER), CONFIG, now=at(5))
    assert not [a for a in decision.actions if isinstance(a, AddLabel | Comment)]
    assert decision.paused_by is None


def test_an_agent_over_budget_taking_the_pause_off_is_reverted_once():
    took = change(K.UNLABELED, 1, PAUSED, by="bot-a", t=1)
    paused = dataclasses.replace(
        view(agent(1, "planner", "running"), agent(2, "analyzer", None, PAUSED),
             accepted={1: "running"}), overruns=(OVER,))
    decision = evaluate([took], paused, CONFIG, now=at(5))
    assert [(a.issue, a.rule) for a in decision.actions
            if isinstance(a, AddLabel) and a.label == PAUSED] == [(1, Rule.R4)]
