"""R12 ping-pong: rallies followed change by change, and a loop handed to a human."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from reactor.core.actions import AddLabel, Comment, Escalate, RemoveLabel, Rule
from reactor.core.config import parse_config
from reactor.core.rally import Rally, dumps, loads
from reactor.core.rules import evaluate
from reactor.core.rules.pingpong import follow, loops
from tests.core.world import K, agent, at, change, view

CONFIG = parse_config("maintainers: [alice]\npingpong_limit: 4\npingpong_window: 10m")
A, B, C = "bot-a[bot]", "bot-b[bot]", "bot-c[bot]"


def rally_of(players: list[str], *, label: str = "x", gap: float = 10,
             start_added: bool = True) -> list:
    """Changes of ``label`` on issue 1, each by the next of ``players``, alternating add and
    remove, ``gap`` seconds apart."""
    out, added = [], start_added
    for i, who in enumerate(players):
        out.append(change(K.LABELED if added else K.UNLABELED, 1, label, by=who, t=i * gap))
        added = not added
    return out


def test_alternating_undos_between_two_actors_are_counted():
    after = follow({}, rally_of([A, B, A, B]))
    assert after["x"].actor == B.casefold() and after["x"].other == A.casefold()
    assert len(after["x"].undos) == 3 and after["x"].added is False


def test_a_third_actor_or_an_actor_taking_back_its_own_change_starts_afresh():
    assert len(follow({}, rally_of([A, B, A, C]))["x"].undos) == 1
    mind = [change(K.LABELED, 1, "x", by=A, t=0), change(K.UNLABELED, 1, "x", by=A, t=1)]
    assert follow({}, mind)["x"] == Rally(A.casefold(), False)


def test_a_change_that_does_not_take_back_the_last_one_starts_afresh():
    """The label moved in between unseen (the App's own write): two adds in a row."""
    changes = [*rally_of([A, B, A]), change(K.LABELED, 1, "x", by=B, t=50)]
    assert follow({}, changes)["x"] == Rally(B.casefold(), True)


def test_rallies_are_per_label_and_folded_like_github_names():
    changes = [change(K.LABELED, 1, "Needs-Review", by=A, t=0),
               change(K.UNLABELED, 1, "needs-review", by=B, t=1),
               change(K.LABELED, 1, "other", by=A, t=2)]
    after = follow({}, changes)
    assert set(after) == {"needs-review", "other"} and len(after["needs-review"].undos) == 1


def test_rallies_survive_their_text_and_bad_text_reads_as_none():
    after = follow({}, rally_of([A, B, A]))
    assert loads(dumps(after)) == after
    assert loads("not json") == {} and loads('{"x": 3}') == {} and loads(None) == {}


def test_a_loop_is_more_than_the_limit_of_undos_within_the_window():
    four = rally_of([A, B, A, B, A])  # four undos: allowed
    five = rally_of([A, B, A, B, A, B])  # five: a loop
    for changes, expected in ((four, 0), (five, 1)):
        after = follow({}, changes)
        found = loops(1, {}, after, changes, limit=4, window=timedelta(minutes=10),
                      exempt=frozenset())
        assert len(found) == expected
    (loop,) = loops(1, {}, follow({}, five), five, limit=4, window=timedelta(minutes=10),
                    exempt=frozenset())
    assert (loop.first, loop.second, loop.undos, loop.key) == (
        A.casefold(), B.casefold(), 5, five[-1].delivery_id)


def test_undos_spread_wider_than_the_window_are_no_loop():
    slow = rally_of([A, B, A, B, A, B], gap=160)  # five undos over 13 minutes
    found = loops(1, {}, follow({}, slow), slow, limit=4, window=timedelta(minutes=10),
                  exempt=frozenset())
    assert found == []


def test_a_maintainer_in_the_rally_is_never_a_loop():
    changes = rally_of([A, "alice", A, "alice", A, "alice"])
    found = loops(1, {}, follow({}, changes), changes, limit=4,
                  window=timedelta(minutes=10), exempt=frozenset({"alice"}))
    assert found == []


def test_the_rally_carries_over_between_bursts():
    first, second = rally_of([A, B, A, B, A, B])[:4], rally_of([A, B, A, B, A, B])[4:]
    before = follow({}, first)
    found = loops(1, before, follow(before, second), second, limit=4,
                  window=timedelta(minutes=10), exempt=frozenset())
    assert len(found) == 1 and found[0].undos == 5


def _world(*extra: str):
    return view(agent(1, "planner", "running", *extra), accepted={1: "running"})


def test_evaluate_hands_a_loop_to_a_human_once_naming_both_actors():
    changes = rally_of([A, B, A, B, A, B])
    before = follow({}, changes[:-1])
    world = dataclasses.replace(_world(), rallies={1: before})
    decision = evaluate(changes[-1:], world, CONFIG, now=at(60))
    escalations = [a for a in decision.actions if isinstance(a, Escalate)]
    (comment,) = [a for a in decision.actions if isinstance(a, Comment)]
    assert [(e.issue, e.rule) for e in escalations] == [(1, Rule.R12)]
    assert f"@{A.casefold()} and @{B.casefold()}" in comment.body
    assert "`x`" in comment.body and "5 times within 10m" in comment.body
    assert "@alice" in comment.body and comment.marker.startswith("<!-- reactor:needs-human:1:")
    flagged = dataclasses.replace(_world("reactor:needs-human"), rallies={1: before})
    again = evaluate(changes[-1:], flagged, CONFIG, now=at(60))
    assert not [a for a in again.actions if isinstance(a, Escalate | Comment)]


def test_a_loop_stops_the_reverts_on_its_issue():
    """The loop's last undo is also an invalid status move: the issue goes to a human
    instead of being reverted (no further reverts there)."""
    changes = rally_of([A, B, A, B, A, B], label="status:running", start_added=False)
    before = follow({}, changes[:-1])
    world = dataclasses.replace(view(agent(1, "planner", "running"), accepted={1: "idle"}),
                                rallies={1: before})
    decision = evaluate(changes[-1:], world, CONFIG, now=at(60))
    assert not [a for a in decision.actions if isinstance(a, AddLabel | RemoveLabel)]
    assert [a.rule for a in decision.actions if isinstance(a, Escalate)] == [Rule.R12]
    assert not decision.reverted


def test_below_the_limit_evaluate_asks_for_nothing():
    changes = rally_of([A, B, A, B, A])
    world = dataclasses.replace(_world(), rallies={1: follow({}, changes[:-1])})
    assert evaluate(changes[-1:], world, CONFIG, now=at(60)).actions == ()


@st.composite
def paced_team(draw: st.DrawFn) -> list:
    """A valid paced history: each issue is driven by its own agent only (R4), and other
    labels are changed by whoever, but nobody takes back another's change more than the
    limit in a row within the window (at most one undo every 160 seconds)."""
    changes, t = [], 0.0
    owners = {1: A, 2: B, 3: C}
    shown: dict[tuple[int, str], bool] = {}
    for _ in range(draw(st.integers(1, 40))):
        number = draw(st.sampled_from([1, 2, 3]))
        label = draw(st.sampled_from(["x", "needs-review", "status:running"]))
        who = owners[number] if label.startswith("status:") else draw(st.sampled_from([A, B]))
        t += draw(st.floats(160, 600)) if label != "status:running" else 1
        added = not shown.get((number, label), False)
        shown[(number, label)] = added
        changes.append(change(K.LABELED if added else K.UNLABELED, number, label, by=who,
                              t=t))
    return changes


@settings(max_examples=200, deadline=None)
@given(paced_team())
def test_property_ping_pong_never_fires_on_a_paced_history(changes):
    rallies: dict = {}
    for one in changes:  # each change in a burst of its own, the worst case for counting
        before = rallies.get(one.issue, {})
        after = follow(before, [one])
        assert loops(one.issue, before, after, [one], limit=CONFIG.pingpong_limit,
                     window=CONFIG.pingpong_window, exempt=CONFIG.maintainers) == []
        rallies[one.issue] = after


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 30), st.integers(1, 8))
def test_property_bursts_split_anywhere_count_the_same(split, limit):
    """However a rally's deliveries are split into bursts, the rally comes out the same."""
    changes = rally_of([A, B] * 10, gap=1)
    split = min(split, len(changes))
    whole = follow({}, changes)
    assert follow(follow({}, changes[:split]), changes[split:]) == whole
    loops_whole = loops(1, {}, whole, changes, limit=limit, window=timedelta(minutes=10),
                        exempt=frozenset())
    assert (len(loops_whole) == 1) == (len(whole["x"].undos) > limit)
