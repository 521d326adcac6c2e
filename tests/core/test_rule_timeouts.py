"""R8 timeouts: ``running`` lasts at most the stage's timeout and ``starting`` at most
``start_timeout``; a check that fires acts only on the status entry it was scheduled for."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactor.core.actions import Action, AddLabel, Comment, RemoveLabel, Rule
from reactor.core.comments import span
from reactor.core.config import DEFAULT_CONFIG, RepoConfig, parse_config
from reactor.core.labels import Status
from reactor.core.markers import comment_marker
from reactor.core.rules import timeouts
from reactor.core.transitions import is_allowed
from reactor.core.view import IssueSnapshot
from tests.core.world import T0, agent, at

FAST = parse_config("timeouts: {executor: 2s}\nstart_timeout: 1m")


def fire(issue: IssueSnapshot, status: str, *, after: float, entered: float = 0,
         config: RepoConfig = DEFAULT_CONFIG, stage: str = "executor",
         remembered: float | None = None) -> tuple[Action, ...]:
    """The scheduled check of ``status`` entered at ``entered`` s, firing ``after`` s later."""
    return timeouts.check(issue, stage=stage, status=Status(status), entered=at(entered),
                          now=at(entered + after), config=config,
                          remembered=None if remembered is None else at(remembered))


def labels_after(issue: IssueSnapshot, actions: tuple[Action, ...]) -> IssueSnapshot:
    names = set(issue.labels)
    for action in actions:
        if isinstance(action, AddLabel):
            names.add(action.label)
        elif isinstance(action, RemoveLabel):
            names.remove(action.label)
    return dataclasses.replace(issue, labels=frozenset(names))


# --- deadlines ------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "stage", "config", "limit"), [
    (Status.RUNNING, "executor", DEFAULT_CONFIG, timedelta(hours=4)),
    (Status.RUNNING, "planner", DEFAULT_CONFIG, timedelta(minutes=30)),
    (Status.RUNNING, "executor", FAST, timedelta(seconds=2)),
    (Status.RUNNING, "deployer", DEFAULT_CONFIG, timedelta(hours=1)),  # not in the defaults
    (Status.STARTING, "executor", DEFAULT_CONFIG, timedelta(minutes=10)),
    (Status.STARTING, "executor", FAST, timedelta(minutes=1)),
])
def test_running_has_the_stage_timeout_and_starting_the_start_timeout(
        status: Status, stage: str, config: RepoConfig, limit: timedelta) -> None:
    assert timeouts.deadline(status, stage=stage, entered=T0, config=config) == T0 + limit


@pytest.mark.parametrize("status", [s for s in Status if s not in timeouts.TIMED])
def test_other_statuses_never_time_out(status: Status) -> None:
    assert timeouts.deadline(status, stage="executor", entered=T0, config=FAST) is None
    assert fire(agent(1, "executor", status.value), status.value, after=10**6) == ()


def test_the_lifecycle_allows_both_timed_statuses_to_time_out() -> None:
    assert all(is_allowed(s, Status.TIMEOUT) for s in timeouts.TIMED)


# --- the check ------------------------------------------------------------------------------

def test_running_past_the_stage_timeout_moves_to_timeout_with_one_comment() -> None:
    issue = agent(7, "executor", "running")
    actions = fire(issue, "running", after=4 * 3600 + 125)
    remove, add, comment = actions
    assert remove == RemoveLabel(7, "status:running", Rule.R8,
                                 "`running` for longer than 4h")
    assert add == AddLabel(7, "status:timeout", Rule.R8, "`running` for longer than 4h")
    assert isinstance(comment, Comment) and comment.rule is Rule.R8 and comment.issue == 7
    for text in ("R8 timeouts", "`executor`", "`status:running` for 4h 2m 5s",
                 "limit of 4h", "`timeouts.executor`", "`status:timeout`",
                 "restarts it with `status:starting`", "a maintainer"):
        assert text in comment.body


def test_starting_past_the_start_timeout_names_that_setting() -> None:
    actions = fire(agent(3, "analyzer", "starting"), "starting", after=600, stage="analyzer")
    comment = actions[-1]
    assert isinstance(comment, Comment)
    assert "`status:starting` for 10m" in comment.body and "`start_timeout`" in comment.body


def test_nothing_happens_before_the_deadline_and_it_acts_exactly_at_it() -> None:
    issue = agent(7, "executor", "running")
    assert fire(issue, "running", after=1.999, config=FAST) == ()
    assert len(fire(issue, "running", after=2, config=FAST)) == 3


def test_the_exact_status_label_name_is_removed() -> None:
    issue = agent(7, "executor", None, "Status: Running")
    [remove, _, _] = fire(issue, "running", after=3, config=FAST)
    assert isinstance(remove, RemoveLabel) and remove.label == "Status: Running"


@pytest.mark.parametrize("issue", [
    agent(7, "executor", "completed"),  # moved on in time
    agent(7, "executor", "error"),
    agent(7, "executor", "starting"),  # went back and started again: another entry's check
    agent(7, "executor", "running", "status:error"),  # two status labels: not that entry
    agent(7, "executor", "running", state="closed", reason="completed"),
    agent(7, "executor", "running", "reactor:needs-human"),  # the reactor stays out
])
def test_an_issue_no_longer_in_that_status_entry_is_left_alone(issue: IssueSnapshot) -> None:
    assert fire(issue, "running", after=10, config=FAST) == ()


def test_a_check_for_an_earlier_entry_of_the_same_status_is_stale() -> None:
    issue = agent(7, "executor", "running")
    assert fire(issue, "running", after=10, config=FAST, remembered=5) == ()
    assert len(fire(issue, "running", after=10, config=FAST, remembered=0)) == 3


def test_the_comment_is_keyed_by_the_status_entry() -> None:
    issue = agent(7, "executor", "running")
    first = fire(issue, "running", after=3, config=FAST)[-1]
    retried = fire(issue, "running", after=9, config=FAST)[-1]
    later_entry = fire(issue, "running", entered=60, after=3, config=FAST)[-1]
    assert isinstance(first, Comment) and isinstance(retried, Comment)
    assert isinstance(later_entry, Comment)
    assert first.marker == retried.marker != later_entry.marker
    assert first.marker == comment_marker("R8", 7, "timeout:running:20250101T120000.000000Z")


def test_after_the_move_the_check_asks_for_nothing_more() -> None:
    issue = agent(7, "executor", "running")
    actions = fire(issue, "running", after=3, config=FAST)
    moved = labels_after(issue, actions)
    assert moved.status is Status.TIMEOUT
    assert fire(moved, "running", after=4, config=FAST) == ()


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (45, "45s"), (1800, "30m"), (5400, "1h 30m"), (90061.9, "1d 1h 1m 1s"),
])
def test_durations_read_like_the_config(seconds: float, text: str) -> None:
    assert span(timedelta(seconds=seconds)) == text


@settings(max_examples=200, deadline=None)
@given(status=st.sampled_from(sorted(timeouts.TIMED)),
       stage=st.sampled_from(["planner", "executor", "deployer"]),
       elapsed=st.integers(0, 10 * 3600), shown=st.sampled_from([*Status]))
def test_it_acts_exactly_when_the_deadline_passed_in_that_status(
        status: Status, stage: str, elapsed: int, shown: Status) -> None:
    issue = agent(5, stage, shown.value)
    due = timeouts.deadline(status, stage=stage, entered=T0, config=DEFAULT_CONFIG)
    assert due is not None
    actions = fire(issue, status.value, after=elapsed, stage=stage)
    acts = shown is status and at(elapsed) >= due
    assert bool(actions) == acts
    if acts:
        assert labels_after(issue, actions).status is Status.TIMEOUT
        assert [type(a) for a in actions] == [RemoveLabel, AddLabel, Comment]
