"""Reconcile repairs the rules that are properties of the state, whatever its history.

With no change to judge (the web was down, the deliveries were lost, Redis was wiped), a
standing violation — a stage running before the earlier ones completed, two ``status:``
labels, a second ``comp:`` label, an issue opened for an earlier stage — is repaired from the
state and the reactor's memory alone; a valid state is never touched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timedelta

from reactor.core.actions import (
    AddLabel,
    CloseIssue,
    CloseReason,
    Comment,
    CreateIssue,
    Decision,
    Escalate,
    RemoveLabel,
    Rule,
)
from reactor.core.config import RepoConfig, parse_config
from reactor.core.labels import Status
from reactor.core.rules.reconcile import reconcile
from reactor.core.view import CompetitionView, IssueSnapshot
from tests.core.world import COMP, agent, apply, at, of_type, view

CONFIG = parse_config("""
settle: 1s
agents:
  planner: [plan-bot]
  analyzer: [analyze-bot]
  executor: [exec-bot]
  monitor: [monitor-bot]
  retrospective: [retro-bot]
scopes:
  exec-bot: [titanic]
maintainers: [boss]
""")
NOW = 600.0


def decide(state: CompetitionView, config: RepoConfig = CONFIG, *, now: float = NOW
           ) -> Decision:
    return reconcile(state, config, now=at(now), entered={})


def labels_of(decision: Decision, number: int) -> tuple[set[str], set[str]]:
    """(added, removed) label names on ``number``."""
    added = {a.label for a in of_type(decision, AddLabel) if a.issue == number}
    removed = {a.label for a in of_type(decision, RemoveLabel) if a.issue == number}
    return added, removed


def comments_on(decision: Decision, number: int) -> list[Comment]:
    return [c for c in of_type(decision, Comment) if c.issue == number]


def again(decision: Decision, state: CompetitionView, *, now: float = NOW + 60) -> Decision:
    """Reconcile once more on the state the decision leaves (memory included)."""
    after, _ = apply(decision, state)
    return decide(after, now=now)


def changed(issue: IssueSnapshot, seconds_ago: float, *, now: float = NOW) -> IssueSnapshot:
    return dataclasses.replace(issue, updated_at=at(now - seconds_ago))


def remember(*issues: IssueSnapshot, accepted: Mapping[int, str]) -> CompetitionView:
    """A view whose memory holds the issues' identities and the given statuses."""
    return view(*issues, accepted=accepted,
                competitions={i.number: i.comp or COMP for i in issues},
                stages={i.number: i.stage or "" for i in issues})


# -- R2 order ---------------------------------------------------------------------------------


def test_an_executor_running_in_a_competition_with_no_earlier_stage_goes_back_to_idle() -> None:
    state = view(agent(7, "executor", "running", author="exec-bot"))
    decision = decide(state)
    assert labels_of(decision, 7) == (set(), {"status:running"})
    [comment] = comments_on(decision, 7)
    assert comment.rule is Rule.R2 and comment.body.startswith("**R2 stage order**")
    assert "planner" in comment.body and "`status:idle`" in comment.body
    assert decision.accepted[7] is Status.IDLE
    assert again(decision, state).actions == ()


def test_the_r2_comment_links_the_blocking_issue() -> None:
    state = view(agent(1, "planner", "running"), agent(7, "executor", "starting"))
    [comment] = comments_on(decide(state), 7)
    assert "#1" in comment.body and "Wait for #1" in comment.body


def test_a_stage_running_after_its_earlier_stages_completed_or_closed_as_completed_stands(
) -> None:
    state = view(agent(1, "planner", "completed"),
                 agent(2, "analyzer", "completed", state="closed", reason="completed"),
                 agent(3, "executor", "running"))
    assert decide(state).actions == ()
    assert decide(remember(*state.issues, accepted={1: "completed", 2: "completed",
                                                    3: "running"})).actions == ()


def test_a_start_the_reactor_accepted_stands_while_an_earlier_stage_re_runs() -> None:
    """R2 guards entering a stage: the executor entered validly, then the planner re-ran."""
    state = remember(agent(1, "planner", "running"), agent(2, "analyzer", "completed"),
                     agent(3, "executor", "running"),
                     accepted={1: "running", 2: "completed", 3: "running"})
    assert decide(state).actions == ()


def test_a_start_whose_webhooks_were_lost_goes_back_to_the_status_the_reactor_accepted(
) -> None:
    state = remember(agent(1, "planner", "running"), agent(3, "executor", "starting"),
                     accepted={1: "running", 3: "error"})
    decision = decide(state)
    assert labels_of(decision, 3) == ({"status:error"}, {"status:starting"})
    assert decision.accepted[3] is Status.ERROR
    assert again(decision, state).actions == ()


def test_order_is_repaired_stage_by_stage() -> None:
    """The planner (stage 1) may run; the analyzer after it then may not."""
    state = view(agent(1, "planner", "running"), agent(2, "analyzer", "running"))
    decision = decide(state)
    assert labels_of(decision, 1) == (set(), set())
    assert labels_of(decision, 2) == (set(), {"status:running"})
    assert decision.accepted == {1: Status.RUNNING, 2: Status.IDLE}


def test_an_issue_changed_moments_ago_is_the_webhook_paths_and_is_not_remembered() -> None:
    """Within the bound on a change's settle window (settle 1 s + 2 s of stretch, and
    GitHub's whole second) the webhook path may still be judging the issue."""
    recent = changed(agent(7, "executor", "running"), 1.5)
    for issue in (recent, changed(recent, 3.5)):
        decision = decide(view(issue))
        assert decision.actions == () and 7 not in decision.accepted
        assert 7 not in decision.identities
    assert labels_of(decide(view(changed(recent, 4.5))), 7) == (set(), {"status:running"})


# -- R1 one status ----------------------------------------------------------------------------


def test_two_status_labels_keep_the_one_the_reactor_accepted() -> None:
    state = remember(agent(1, "planner", "running", "status:completed"),
                     accepted={1: "running"})
    decision = decide(state)
    assert labels_of(decision, 1) == (set(), {"status:completed"})
    [comment] = comments_on(decision, 1)
    assert comment.rule is Rule.R1 and "accepted" in comment.body


def test_with_no_memory_a_change_cut_in_half_keeps_its_later_status_and_hands_off() -> None:
    state = view(agent(1, "planner", "running", "status:completed"))
    decision = decide(state)
    assert labels_of(decision, 1) == (set(), {"status:running"})
    assert decision.accepted[1] is Status.COMPLETED
    [create] = of_type(decision, CreateIssue)
    assert "agent:analyzer" in create.labels
    assert again(decision, state).actions == ()


def test_a_later_status_r2_forbids_leaves_the_earlier_one() -> None:
    state = view(agent(7, "executor", "idle", "status:starting"))
    decision = decide(state)
    assert labels_of(decision, 7) == (set(), {"status:starting"})
    assert decision.accepted[7] is Status.IDLE
    assert again(decision, state).actions == ()


def test_two_statuses_that_lead_to_each_other_keep_the_one_that_stops_the_stage() -> None:
    decision = decide(view(agent(1, "planner", "error", "status:starting")))
    assert labels_of(decision, 1) == (set(), {"status:starting"})
    assert decision.accepted[1] is Status.ERROR


def test_a_start_cut_in_half_before_the_earlier_stages_goes_back_to_idle_under_r2() -> None:
    decision = decide(view(agent(7, "executor", "starting", "status:running")))
    assert labels_of(decision, 7) == (set(), {"status:starting", "status:running"})
    assert [c.rule for c in comments_on(decision, 7)] == [Rule.R2]


def test_an_unknown_status_label_beside_a_known_one_is_removed() -> None:
    decision = decide(view(agent(1, "planner", "running", "status:done")))
    assert labels_of(decision, 1) == (set(), {"status:done"})
    assert decision.accepted[1] is Status.RUNNING


def test_two_statuses_nothing_tells_apart_go_to_a_human() -> None:
    state = view(agent(1, "planner", "completed", "status:error"))
    decision = decide(state)
    [escalate] = of_type(decision, Escalate)
    assert escalate.issue == 1 and escalate.mentions == ("boss",)
    [comment] = comments_on(decision, 1)
    assert "@boss" in comment.body and "reactor:needs-human" in comment.body
    assert labels_of(decision, 1) == (set(), set()) and 1 not in decision.accepted
    assert again(decision, state).actions == ()  # left to the human


# -- R3 identity and scope --------------------------------------------------------------------


def test_a_second_comp_label_is_removed_when_the_reactor_remembers_the_first() -> None:
    state = remember(agent(5, "analyzer", None, "comp:house"), accepted={})
    decision = decide(state)
    assert labels_of(decision, 5) == (set(), {"comp:house"})
    [comment] = comments_on(decision, 5)
    assert comment.rule is Rule.R3 and "`comp:house`" in comment.body
    assert again(decision, state).actions == ()


def test_a_swapped_comp_label_is_put_back() -> None:
    swapped = agent(5, "analyzer", comp="house")
    state = view(swapped, competitions={5: COMP}, stages={5: "analyzer"})
    assert labels_of(decide(state), 5) == ({f"comp:{COMP}"}, {"comp:house"})


def test_with_no_memory_the_title_names_the_comp_to_keep_and_only_its_reconcile_acts(
) -> None:
    issue = agent(5, "analyzer", None, "comp:house", title=f"[{COMP}] analyzer: look")
    assert labels_of(decide(view(issue)), 5) == (set(), {"comp:house"})
    assert decide(view(issue, comp="house")).actions == ()


def test_two_comp_labels_nothing_tells_apart_go_to_a_human_once() -> None:
    issue = agent(5, "analyzer", None, "comp:house", title="look around")
    assert decide(view(issue)).actions == ()  # judged in one competition only: "house"
    decision = decide(view(issue, comp="house"))
    [escalate] = of_type(decision, Escalate)
    assert escalate.rule is Rule.R3 and labels_of(decision, 5) == (set(), set())
    assert "`comp:house`" in comments_on(decision, 5)[0].body
    assert again(decision, view(issue, comp="house")).actions == ()


def test_a_second_agent_label_is_removed() -> None:
    state = remember(agent(5, "analyzer", None, "agent:planner"), accepted={})
    state = dataclasses.replace(state, stages={5: "analyzer"})
    assert labels_of(decide(state), 5) == (set(), {"agent:planner"})


def test_an_issue_opened_outside_its_authors_scope_is_closed() -> None:
    decision = decide(view(agent(5, "executor", comp="house", author="exec-bot"),
                           comp="house"))
    [close] = of_type(decision, CloseIssue)
    assert (close.issue, close.state_reason, close.rule) == (5, CloseReason.NOT_PLANNED, Rule.R3)
    assert "@exec-bot" in comments_on(decision, 5)[0].body


# -- R6 reverse -------------------------------------------------------------------------------


def test_an_issue_a_later_stage_opened_for_an_earlier_one_is_closed() -> None:
    state = view(agent(4, "planner", author="exec-bot"))
    decision = decide(state)
    [close] = of_type(decision, CloseIssue)
    assert (close.issue, close.state_reason, close.rule) == (4, CloseReason.NOT_PLANNED, Rule.R6)
    [comment] = comments_on(decision, 4)
    assert comment.body.startswith("**R6 reverse stage**") and "@exec-bot" in comment.body
    assert of_type(decision, CreateIssue) == []  # a closed issue hands nothing off
    assert again(decision, state).actions == ()


def test_an_issue_the_reactor_judged_before_is_not_closed_again() -> None:
    """It saw the issue opened (or a maintainer reopened it): that judgement stands."""
    state = remember(agent(4, "planner", author="exec-bot"), accepted={4: "idle"})
    assert decide(state).actions == ()


def test_maintainers_own_stage_agents_and_the_reactor_may_open_any_stage() -> None:
    state = view(agent(4, "planner", author="boss"), agent(5, "planner", author="plan-bot"),
                 agent(6, "planner", author="someone"))
    assert of_type(decide(state), CloseIssue) == []


# -- who is left alone ------------------------------------------------------------------------


def test_an_issue_handed_to_a_human_is_left_to_the_human() -> None:
    state = view(agent(7, "executor", "running", "reactor:needs-human"))
    assert decide(state).actions == ()


def test_the_quiet_period_follows_the_configured_settle_window() -> None:
    """The webhook path's window: ``settle`` and its 2 s of stretch after GitHub's
    second-rounded ``updated_at``."""
    config = dataclasses.replace(CONFIG, settle=timedelta(seconds=30))
    issue = changed(agent(7, "executor", "running"), 32)
    assert decide(view(issue), config).actions == ()
    assert decide(view(changed(issue, 34)), config).actions != ()
