"""R6 reverse: an agent of a later stage may not create an issue for an earlier one."""

from __future__ import annotations

from reactor.core.actions import CloseIssue, CloseReason, Comment, Rule
from reactor.core.config import parse_config
from tests.core.world import K, agent, change, issue, of_type, run, settles, view

CONFIG = parse_config("""
agents:
  planner: [plan-bot]
  executor: [exec-bot, multi-bot]
  analyzer: [multi-bot]
maintainers: [exec-boss]
""")


def test_an_executor_creating_a_planner_issue_gets_it_closed() -> None:
    state = view(agent(4, "planner", author="exec-bot"))
    decision = settles([change(K.OPENED, 4, by="exec-bot")], state, CONFIG)
    [close] = of_type(decision, CloseIssue)
    assert (close.issue, close.state_reason, close.rule) == (4, CloseReason.NOT_PLANNED, Rule.R6)
    [comment] = of_type(decision, Comment)
    assert "@exec-bot" in comment.body and "planner" in comment.body and "R6" in comment.body


def test_labelling_ones_own_new_issue_with_an_earlier_stage_counts_as_creating_it() -> None:
    state = view(agent(4, "planner", author="exec-bot"))
    changes = [change(K.LABELED, 4, "agent:planner", by="exec-bot")]
    assert of_type(settles(changes, state, CONFIG), CloseIssue)


def test_same_or_later_stages_are_fine() -> None:
    state = view(agent(4, "executor", author="exec-bot"), agent(5, "monitor", author="exec-bot"))
    changes = [change(K.OPENED, 4, by="exec-bot"), change(K.OPENED, 5, by="exec-bot")]
    assert run(changes, state, CONFIG).actions == ()


def test_an_agent_of_several_stages_counts_from_its_earliest() -> None:
    state = view(agent(4, "analyzer", author="multi-bot"), agent(5, "planner", author="multi-bot"))
    changes = [change(K.OPENED, 4, by="multi-bot"), change(K.OPENED, 5, by="multi-bot")]
    assert [c.issue for c in of_type(run(changes, state, CONFIG), CloseIssue)] == [5]


def test_unknown_creators_maintainers_and_plain_issues_are_left_alone() -> None:
    state = view(agent(4, "planner", author="someone"), agent(5, "planner", author="exec-boss"),
                 issue(6, "bug", author="exec-bot"))
    changes = [change(K.OPENED, 4, by="someone"), change(K.OPENED, 5, by="exec-boss"),
               change(K.OPENED, 6, by="exec-bot")]
    config = parse_config("agents: {executor: [exec-bot, exec-boss]}\nmaintainers: [exec-boss]")
    assert run(changes, state, config).actions == ()


def test_someone_else_adding_the_stage_label_is_not_creation() -> None:
    state = view(agent(4, "planner", author="someone"))
    assert run([change(K.LABELED, 4, "agent:planner", by="exec-bot")], state, CONFIG).actions == ()
