"""R9 hand-off: a completed stage starts the next one, found or created, never twice."""

from __future__ import annotations

import dataclasses

import pytest

from reactor.core.actions import (
    AddLabel,
    Comment,
    CreateIssue,
    Dispatch,
    LinkBlockedBy,
    RemoveLabel,
    Rule,
)
from reactor.core.config import parse_config
from reactor.core.labels import Status
from reactor.core.markers import creation_key
from reactor.core.rules import task_of
from reactor.core.view import CompetitionView, IssueSnapshot
from tests.core.world import (
    K,
    agent,
    apply,
    change,
    of_type,
    run,
    settles,
    view,
)

DONE = [change(K.LABELED, 2, "status:completed", by="ana-bot", t=1, delivery="g-done"),
        change(K.UNLABELED, 2, "status:running", by="ana-bot", t=1)]


def completed_analyzer(*others: IssueSnapshot,
                       memory: dict[int, str] | None = None) -> CompetitionView:
    """Planner completed; the analyzer (#2) now reads completed, remembered running."""
    return view(agent(1, "planner", "completed"),
                agent(2, "analyzer", "completed", "priority:high",
                      title="[titanic] analyzer: Explore the data"),
                *others, accepted={1: "completed", 2: "running", **(memory or {})})


def test_an_idle_next_issue_is_started_with_a_linking_comment() -> None:
    state = completed_analyzer(agent(3, "executor"))
    decision = settles(DONE, state)
    assert [(a.issue, a.label, a.rule) for a in of_type(decision, AddLabel)] == \
        [(3, "status:starting", Rule.R9)]
    [comment] = of_type(decision, Comment)
    assert comment.issue == 3 and "#2" in comment.body and "#3" in comment.body
    assert comment.marker == "<!-- reactor:R9:3:g-done -->"
    assert decision.accepted == {2: Status.COMPLETED, 3: Status.STARTING}


def test_a_status_idle_label_on_the_next_issue_is_swapped() -> None:
    state = completed_analyzer(agent(3, "executor", "idle"))
    decision = settles(DONE, state)
    assert [a.label for a in of_type(decision, RemoveLabel)] == ["status:idle"]
    assert [a.label for a in of_type(decision, AddLabel)] == ["status:starting"]


def test_a_missing_next_issue_is_created_in_starting_exactly_once() -> None:
    state = completed_analyzer()
    decision = settles(DONE, state)
    [create] = of_type(decision, CreateIssue)
    assert create.title == "[titanic] executor: Explore the data"
    assert create.labels == ("agent:executor", "comp:titanic", "priority:high", "status:starting")
    assert create.key == "acme/lab:titanic:executor"
    assert create.status is Status.STARTING and create.rule is Rule.R9
    assert "#2" in create.body and creation_key(create.body) == create.key
    [comment] = of_type(decision, Comment)
    assert comment.issue == 2 and "new executor issue" in comment.body


def test_the_created_issue_is_found_next_time_not_created_again() -> None:
    state = completed_analyzer()
    first = run(DONE, state)
    after, _ = apply(first, state)
    stale = {**after.accepted, 2: Status.RUNNING}  # memory lost the completion: judged again
    again = run(DONE, dataclasses.replace(after, accepted=stale))
    assert of_type(again, CreateIssue) == [] and of_type(again, AddLabel) == []
    assert any("already `starting`; left as it is" in n.reason for n in again.notes)


def test_a_running_next_issue_is_left_alone() -> None:
    state = completed_analyzer(agent(3, "executor", "running"), memory={3: "running"})
    decision = settles(DONE, state)
    assert decision.actions == ()
    assert any("#3 is already `running`" in n.reason for n in decision.notes)


def test_a_next_issue_in_error_or_timeout_is_started() -> None:
    """The lifecycle allows error → starting and timeout → starting: the hand-off does it."""
    for status in ("error", "timeout"):
        state = completed_analyzer(agent(3, "executor", status), memory={3: status})
        decision = settles(DONE, state)
        assert [a.label for a in of_type(decision, RemoveLabel)] == [f"status:{status}"]
        assert [a.label for a in of_type(decision, AddLabel)] == ["status:starting"]
        assert decision.accepted[3] is Status.STARTING


def test_a_completed_next_issue_is_run_again_through_idle() -> None:
    """A re-run: completed → idle → starting, the lifecycle's way back."""
    state = completed_analyzer(agent(3, "executor", "completed"), memory={3: "completed"})
    decision = settles(DONE, state)
    assert [a.label for a in of_type(decision, RemoveLabel)] == ["status:completed"]
    assert [a.label for a in of_type(decision, AddLabel)] == ["status:starting"]
    [comment] = of_type(decision, Comment)
    assert "re-run" in comment.body


def test_a_next_issue_closed_as_completed_is_reopened_for_a_re_run() -> None:
    state = completed_analyzer(agent(3, "executor", "completed", state="closed",
                                     reason="completed"), memory={3: "completed"})
    decision = settles(DONE, state)
    assert [type(a).__name__ for a in decision.actions[:3]] == \
        ["ReopenIssue", "RemoveLabel", "AddLabel"]
    assert of_type(decision, CreateIssue) == []
    assert decision.accepted[3] is Status.STARTING


def test_a_dismissed_next_issue_is_replaced_under_a_new_key() -> None:
    """Closed as not planned: not reopened; a new issue is created once, keyed apart from
    the first creation (whose key would find the dismissed issue)."""
    state = completed_analyzer(agent(3, "executor", state="closed", reason="not_planned"))
    [create] = of_type(settles(DONE, state), CreateIssue)
    assert create.key == "acme/lab:titanic:executor:3"


def test_a_next_issue_the_reactor_cannot_start_gets_one_comment_saying_why() -> None:
    state = completed_analyzer(agent(3, "executor", None, "reactor:needs-human"))
    decision = settles(DONE, state)
    assert of_type(decision, AddLabel) == []
    [comment] = of_type(decision, Comment)
    assert comment.issue == 2 and "reactor:needs-human" in comment.body
    ambiguous = completed_analyzer(agent(3, "executor", "error", "status:idle"))
    [comment] = of_type(settles(DONE, ambiguous), Comment)
    assert "exactly one" in comment.body


def test_a_long_task_is_cut_to_fit_githubs_title_limit() -> None:
    long_title = "[titanic] analyzer: " + "word " * 80
    state = view(agent(1, "planner", "completed"),
                 agent(2, "analyzer", "completed", title=long_title),
                 accepted={1: "completed", 2: "running"})
    [create] = of_type(settles(DONE, state), CreateIssue)
    assert len(create.title) <= 256 and create.title.endswith("…")


def test_the_oldest_open_next_issue_is_chosen() -> None:
    state = completed_analyzer(agent(5, "executor"), agent(4, "executor", title="other"),
                               agent(3, "executor", state="closed", reason="completed"))
    assert [a.issue for a in of_type(run(DONE, state), AddLabel)] == [4]


def test_completing_the_last_stage_notes_the_competition_done() -> None:
    state = view(agent(5, "retrospective", "completed"), accepted={5: "running"})
    decision = settles([change(K.LABELED, 5, "status:completed"),
                        change(K.UNLABELED, 5, "status:running")], state)
    assert decision.actions == ()
    assert any(n.rule is Rule.R9 and n.reason == "competition titanic done"
               for n in decision.notes)


def test_repository_dispatch_is_sent_when_configured() -> None:
    config = parse_config("dispatch: [label, repository_dispatch]")
    state = completed_analyzer(agent(3, "executor"))
    [dispatch] = of_type(settles(DONE, state, config), Dispatch)
    assert dispatch.event_type == "reactor.handoff"
    assert dispatch.payload() == {"comp": "titanic", "stage": "executor",
                                  "from_stage": "analyzer", "from_issue": 2, "issue": 3}


def test_no_hand_off_when_an_earlier_stage_is_no_longer_completed() -> None:
    state = view(agent(1, "planner", "running"), agent(2, "analyzer", "completed"),
                 agent(3, "executor"), accepted={1: "running", 2: "running"})
    decision = settles(DONE, state)
    assert decision.actions == ()
    assert any("no hand-off to executor" in n.reason for n in decision.notes)


def test_an_invalid_completion_hands_off_nothing() -> None:
    state = completed_analyzer(agent(3, "executor"), memory={2: "starting"})
    decision = settles([change(K.LABELED, 2, "status:completed")], state)
    assert [a.rule for a in of_type(decision, AddLabel)] == [Rule.R1]  # restores starting
    assert of_type(decision, CreateIssue) == [] and 3 not in decision.accepted


def test_a_completion_already_accepted_is_not_handed_off_again() -> None:
    state = completed_analyzer(agent(3, "executor"), memory={2: "completed"})
    assert run(DONE, state).actions == ()


def test_task_is_the_title_after_the_prefix() -> None:
    assert task_of("[titanic] analyzer: Explore: the data ") == "Explore: the data"
    assert task_of("Explore the data") == "Explore the data"


def test_an_early_start_still_waiting_to_be_judged_is_taken_off_and_put_back_by_the_app() -> None:
    """The monitor's agent opened and started its issue before the executor completed; that
    start waits for its settle window (a violation is never judged at once) when the
    executor's completion hands off. The hand-off does not take the unjudged label for a
    start: it removes it and labels the issue itself, so the agent sees the App's event."""
    state = view(agent(1, "planner", "completed"), agent(2, "analyzer", "completed"),
                 agent(3, "executor", "completed"), agent(4, "monitor", "starting"),
                 accepted={1: "completed", 2: "completed", 3: "running"})
    changes = [change(K.LABELED, 4, "agent:monitor", t=0.5),
               change(K.LABELED, 4, "comp:titanic", t=0.5),
               change(K.LABELED, 4, "status:starting", t=0.6),
               change(K.LABELED, 3, "status:completed", t=1),
               change(K.UNLABELED, 3, "status:running", t=1)]
    decision = run(changes, state, now=1.2)
    writes = [(type(a).__name__, a.issue, a.label) for a in decision.actions
              if isinstance(a, AddLabel | RemoveLabel)]
    assert writes == [("RemoveLabel", 4, "status:starting"), ("AddLabel", 4, "status:starting")]
    assert decision.accepted[4] is Status.STARTING
    assert decision.settle_until is not None  # the early start itself is judged later


def test_a_completion_learned_without_its_move_hands_off_to_a_stage_not_begun() -> None:
    """The planner's deliveries were held up past the settle window (a secondary rate limit
    deferred them): the reactor, remembering nothing of the issue, first judges its old
    ``labeled status:starting`` while GitHub already shows ``completed``. GitHub's state is
    taken as it is, and the completion still hands off."""
    state = view(agent(1, "planner", "completed"))
    decision = run([change(K.LABELED, 1, "status:starting", t=1)], state, now=60)
    assert [type(a).__name__ for a in decision.actions] == ["CreateIssue", "LinkBlockedBy",
                                                            "Comment"]
    assert decision.accepted[1] is Status.COMPLETED


@pytest.mark.parametrize("status", ["starting", "completed", None])
def test_a_learned_completion_never_restarts_a_stage_that_has_begun(status: str | None) -> None:
    """With a wiped memory, a late delivery on a completed issue must not re-run the next
    stage; an open next issue without a status is started."""
    state = view(agent(1, "planner", "completed"), agent(2, "analyzer", status))
    decision = run([change(K.LABELED, 1, "status:starting", t=1)], state, now=60)
    started = [a for a in decision.actions if isinstance(a, AddLabel)]
    assert started == ([] if status else [AddLabel(2, "status:starting", Rule.R9,
                                                   "hand-off from #1 (planner) to analyzer")])


def test_the_started_stage_is_linked_blocked_by_the_completed_one_unless_chain_is_off() -> None:
    """GitHub's own dependencies show the chain: the created (or started) next issue is
    "blocked by" the completed one; an issue left as it is, or ``chain: []``, gets no link."""
    done = [change(K.LABELED, 1, "status:completed", t=1),
            change(K.UNLABELED, 1, "status:running", t=1.1)]
    created = run(done, view(agent(1, "planner", "completed"), accepted={1: "running"}))
    [link] = [a for a in created.actions if isinstance(a, LinkBlockedBy)]
    assert (link.issue, link.blocking, link.blocking_id) == (0, 1, 1001)
    assert link.key == next(a.key for a in created.actions if isinstance(a, CreateIssue))
    assert link in created.sagas[0].steps  # journaled with the hand-off
    started = run(done, view(agent(1, "planner", "completed"), agent(2, "analyzer"),
                             accepted={1: "running"}))
    [link] = [a for a in started.actions if isinstance(a, LinkBlockedBy)]
    assert (link.issue, link.key, link.blocking) == (2, "", 1)
    busy = run(done, view(agent(1, "planner", "completed"), agent(2, "analyzer", "running"),
                          accepted={1: "running", 2: "running"}))
    assert not [a for a in busy.actions if isinstance(a, LinkBlockedBy)]
    off = run(done, view(agent(1, "planner", "completed"), accepted={1: "running"}),
              config=parse_config("chain: []"))
    assert not [a for a in off.actions if isinstance(a, LinkBlockedBy)]
    assert [c.unless_linked for c in off.actions if isinstance(c, Comment)] == [False]


def test_the_hand_off_comment_is_only_a_fallback_for_a_refused_link() -> None:
    """With the link, GitHub shows the chain on both issues: the comment after it is posted
    only if the link is refused, so a hand-off costs a create (or its labels) and a link."""
    done = [change(K.LABELED, 1, "status:completed", t=1),
            change(K.UNLABELED, 1, "status:running", t=1.1)]
    for state in (view(agent(1, "planner", "completed"), accepted={1: "running"}),
                  view(agent(1, "planner", "completed"), agent(2, "analyzer"),
                       accepted={1: "running"})):
        steps = run(done, state).sagas[0].steps
        [link] = [a for a in steps if isinstance(a, LinkBlockedBy)]
        [comment] = [a for a in steps if isinstance(a, Comment)]
        assert comment.unless_linked and steps.index(link) == steps.index(comment) - 1
