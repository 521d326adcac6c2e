"""evaluate() as a whole: R10 echoes, revert-war cap, settle, markers, and no ping-pong."""

from __future__ import annotations

import random

import pytest

from reactor.core.actions import AddLabel, CloseIssue, Comment, Escalate, RemoveLabel, Rule
from reactor.core.config import DEFAULT_CONFIG, parse_config
from reactor.core.labels import Status
from reactor.core.markers import comment_markers
from reactor.core.rules import seed_accepted
from reactor.core.view import Change, CompetitionView
from tests.core.world import (
    APP,
    K,
    agent,
    apply,
    at,
    change,
    issue,
    of_type,
    run,
    view,
)

CAPPED = parse_config("maintainers: [alice, bob]\nrevert_limit: 2")


def test_an_unexpected_change_by_the_apps_own_account_is_judged_like_anyone() -> None:
    """R10 sets aside only the echoes the shell recorded as expected; they never reach the
    rules. An agent acting with the App's token is judged like any actor."""
    state = view(agent(1, "executor", "running"))
    decision = run([change(K.LABELED, 1, "status:running", by=APP)], state)
    assert [(a.issue, a.label) for a in of_type(decision, RemoveLabel)] == \
        [(1, "status:running")]


def test_other_bots_are_judged_like_anyone() -> None:
    state = view(agent(1, "executor", "running"))
    decision = run([change(K.LABELED, 1, "status:running", by="other-app[bot]")], state)
    assert of_type(decision, RemoveLabel)


def test_past_the_revert_cap_the_reactor_escalates_once_instead_of_reverting() -> None:
    state = view(agent(1, "planner", "running"), reverts={1: 2})
    decision = run([change(K.LABELED, 1, "status:running", by="mallory")], state, CAPPED)
    assert of_type(decision, RemoveLabel) == [] and decision.reverted == frozenset()
    [escalate] = of_type(decision, Escalate)
    assert (escalate.issue, escalate.mentions, escalate.rule) == (1, ("alice", "bob"), Rule.R1)
    [comment] = of_type(decision, Comment)
    assert "@alice @bob" in comment.body and "reactor:needs-human" in comment.body
    assert comment.marker.startswith("<!-- reactor:needs-human:1:")
    after, _ = apply(decision, state)
    again = run([change(K.LABELED, 1, "status:running", by="mallory")], after, CAPPED)
    assert again.actions == ()
    assert any("needs a human" in n.reason for n in again.notes)


def test_below_the_cap_it_reverts_and_reports_the_revert() -> None:
    state = view(agent(1, "planner", "running"), reverts={1: 1})
    decision = run([change(K.LABELED, 1, "status:running")], state, CAPPED)
    assert of_type(decision, RemoveLabel) and decision.reverted == {1}


def test_a_settling_issue_does_not_hold_back_the_others() -> None:
    state = view(agent(1, "planner", "starting", "status:running"), agent(2, "planner", "running"),
                 accepted={1: "starting"}, comp=None)
    changes = [change(K.LABELED, 1, "status:running", t=59.5),
               change(K.LABELED, 2, "status:running", t=1)]
    decision = run(changes, state, now=60)
    assert decision.settle_until == at(59.5) + DEFAULT_CONFIG.settle
    assert [a.issue for a in of_type(decision, RemoveLabel)] == [2]
    assert 1 not in decision.accepted


def test_a_replay_produces_the_same_decision_and_markers() -> None:
    state = view(agent(1, "planner", "running"), agent(2, "planner", "running", title="x"),
                 agent(3, "planner", title="x"))
    changes = [change(K.LABELED, 1, "status:running"), change(K.OPENED, 3)]
    first, second = run(changes, state), run(list(reversed(changes)), state)
    assert first == second
    markers = [m for c in of_type(first, Comment) for m in comment_markers(c.body)]
    assert len(markers) == len(set(markers)) == 2


def test_issues_closed_as_not_planned_or_duplicate_are_out_of_play() -> None:
    state = view(agent(1, "planner", "running", state="closed", reason="not_planned"),
                 agent(2, "planner", "running", "comp:iris", state="closed", reason="duplicate"))
    changes = [change(K.LABELED, 1, "status:running"), change(K.LABELED, 2, "comp:iris")]
    assert run(changes, state).actions == ()


def test_a_closed_as_completed_issue_is_still_judged() -> None:
    state = view(agent(1, "planner", "running", state="closed", reason="completed"))
    assert of_type(run([change(K.LABELED, 1, "status:running")], state), RemoveLabel)


def test_absurd_label_names_are_ignored_and_flagged() -> None:
    state = view(agent(1, "planner", None, "x" * 80))
    decision = run([change(K.LABELED, 1, "x" * 80)], state)
    assert decision.actions == ()
    assert any("unreadable label name (80 characters)" in n.reason for n in decision.notes)


def test_a_close_wins_over_corrections_of_the_same_issue() -> None:
    config = parse_config("agents: {executor: [exec-bot]}")
    state = view(agent(4, "planner", "running", author="exec-bot"))
    changes = [change(K.OPENED, 4, by="exec-bot"), change(K.LABELED, 4, "status:running",
                                                          by="exec-bot")]
    decision = run(changes, state, config)
    assert [type(a) for a in decision.actions] == [CloseIssue, Comment]


def test_seed_accepted_reads_unambiguous_agent_issues() -> None:
    state = view(agent(1, "planner", "running"), agent(2, "analyzer"),
                 agent(3, "executor", "running", "status:error"), issue(4, "status:running"))
    assert seed_accepted(state) == {1: Status.RUNNING, 2: Status.IDLE}


# -- the no-ping-pong property over random bursts -----------------------------------------

STAGES = ("planner", "analyzer", "executor")
ACTORS = ("alice", "planner-bot", "exec-bot", "boss", APP)
FUZZ_CONFIG = parse_config("""
stages: [planner, analyzer, executor]
agents: {planner: [planner-bot], executor: [exec-bot]}
scopes: {exec-bot: [titanic]}
maintainers: [boss]
""")


def _random_burst(rng: random.Random) -> tuple[CompetitionView, list[Change]]:
    """A competition of 2–5 issues and a burst of 1–6 changes by agents, humans and the App."""
    labels: dict[int, set[str]] = {}
    for number, stage in enumerate(rng.sample(STAGES * 2, rng.randint(2, 5)), start=1):
        labels[number] = {f"agent:{stage}", "comp:titanic"}
        if rng.random() < 0.7:
            labels[number].add(f"status:{rng.choice(list(Status))}")
    accepted = {n: rng.choice(list(Status)) for n in labels if rng.random() < 0.7}
    changes = []
    for t in range(rng.randint(1, 6)):
        number = rng.choice(list(labels))
        if rng.random() < 0.15:
            changes.append(change(rng.choice([K.OPENED, K.EDITED, K.REOPENED]), number,
                                  by=rng.choice(ACTORS), t=t))
            continue
        name = rng.choice([f"status:{rng.choice(list(Status))}", "comp:iris", "agent:executor",
                           "agent:planner", "priority:high", "status:bogus", "Status:Running"])
        kind = K.UNLABELED if name in labels[number] and rng.random() < 0.5 else K.LABELED
        labels[number].discard(name) if kind is K.UNLABELED else labels[number].add(name)
        changes.append(change(kind, number, name, by=rng.choice(ACTORS), t=t))
    issues = [issue(n, *labels[n], title=rng.choice(["same", "other", f"t{n}"]),
                    author=rng.choice(ACTORS[:-1]),
                    **_closed(rng)) for n in labels]
    return view(*issues, accepted=accepted), changes


def _closed(rng: random.Random) -> dict[str, str]:
    if rng.random() < 0.8:
        return {}
    return {"state": "closed", "reason": rng.choice(["completed", "not_planned"])}


@pytest.mark.parametrize("seed", range(5))
def test_applying_any_decision_leaves_nothing_more_to_do(seed: int) -> None:
    """Evaluate a random burst, apply the decision, replay the burst: nothing more is asked
    for (no ping-pong), whatever the mix of rules that fired."""
    rng = random.Random(seed)
    for _ in range(300):
        state, changes = _random_burst(rng)
        first = run(changes, state, FUZZ_CONFIG, now=3600)
        after, _ = apply(first, state)
        second = run(changes, after, FUZZ_CONFIG, now=3601)
        assert second.actions == (), (state, changes, first.actions, second.actions)
        assert run(changes, state, FUZZ_CONFIG, now=3600) == first  # deterministic
        # GitHub sees net changes only, but for one: a status:starting the hand-off takes
        # off and puts back, so that the agent sees the App's own labeled event.
        writes = [(type(a), a.issue, a.label) for a in first.actions
                  if isinstance(a, AddLabel | RemoveLabel)]
        for k, (kind, number, name) in enumerate(writes):
            again = [w for w in writes[k + 1:] if w[1:] == (number, name)]
            assert not again or (kind is RemoveLabel and name == "status:starting"
                                 and [w[0] for w in again] == [AddLabel]), first.actions
