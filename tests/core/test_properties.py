"""Property tests of the rules against GitHub's real misbehaviour, on the pure core.

A fast agent drives one issue through the lifecycle; each move is made the way agents make
it (one ``PUT`` of the whole label set, or add-then-remove, or remove-then-add, ~20 ms
apart). Its webhooks arrive late (up to 0.9 s, inside the settle window) and in any order,
some twice, and workers take them in bursts of any size, up to 0.3 s after one arrives; a
change already judged may come round again (a retried job). The reactor's loop is simulated
as the shell runs it: read GitHub *now* (possibly ahead of the webhooks), evaluate, apply,
remember, re-evaluate parked bursts when their settle window ends.

- A valid history is never reverted, and the reactor ends up accepting its final status;
  with one of its webhooks lost for good, it is still never reverted.
- A valid history followed by one violation (R1 by the agent, or any status change by an
  actor not allowed to make it, R4) ends with exactly that violation undone: the status
  labels as they were before it, no other label touched, and nothing reverted earlier.
  Here GitHub sends the webhooks in order (workers still take them in any bursts), and the
  agent visits each status once, moving by one ``PUT`` or add-then-remove. Reordered across
  requests, webhooks can arrive after a later state was judged and leave no trace of the
  earlier moves; with repeated statuses, or remove-then-add moves that show no status for a
  moment like a stop at ``idle``, they can fit their payloads in an order in which the
  violation is valid. There the rules give the agent the benefit of the doubt — the
  valid-history property above holds under any order.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactor.core.actions import AddLabel, Decision, RemoveLabel
from reactor.core.config import parse_config
from reactor.core.labels import Status
from reactor.core.transitions import TRANSITIONS
from reactor.core.view import Change, CompetitionView
from tests.core.world import K, agent, apply, change, run, view

CONFIG = parse_config("stages: [planner]\nagents: {planner: [planner-bot]}\nsettle: 1s")
AGENT, INTRUDER = "planner-bot", "mallory"
BASE = frozenset({"agent:planner", "comp:titanic"})
STEP_S, SETTLE_S, MAX_DELAY_S, WORKER_DELAY_S = 0.02, 1.0, 0.9, 0.3  # see the docstring
EXAMPLES = int(os.environ.get("REACTOR_PROPERTY_EXAMPLES", "300"))


@dataclass(frozen=True)
class Op:
    """One label change as GitHub records it: when, by whom, and its webhook's arrival."""

    at: float
    added: bool
    label: str
    by: str
    delivery: str
    arrives: float
    shown: frozenset[str] = frozenset()  # the status labels its webhook's payload showed


def _ops(a: Status, b: Status, t: float, style: str, by: str, n: int) -> list[tuple[float, bool,
                                                                                     str, str]]:
    """The label changes that move ``a → b`` in the agent's ``style``."""
    remove = [] if a is Status.IDLE else [(False, a.label)]
    add = [] if b is Status.IDLE else [(True, b.label)]
    if style == "put":
        steps = [(t, *x) for x in remove + add]
    elif style == "add-first":
        steps = [(t + i * STEP_S, *x) for i, x in enumerate(add + remove)]
    else:
        steps = [(t + i * STEP_S, *x) for i, x in enumerate(remove + add)]
    return [(at, added, label, f"{by}-{n}-{i}") for i, (at, added, label) in enumerate(steps)]


STYLES = ("put", "add-first", "remove-first")


@st.composite
def histories(draw: st.DrawFn, *, violation: str | None, styles: tuple[str, ...] = STYLES,
              revisits: bool = True) -> tuple[list[Op], set[Status], Status]:
    """Ops of a valid walk from idle (then one violation); returns (ops, the statuses the
    reactor may restore, the final status of the valid walk).

    Undoing a violation restores the status the agent stood in before it. When that is
    ``idle`` reached by just removing the label of ``X``, the ops cannot tell that removal
    from the first half of the violating change, so restoring ``X`` is right too; and when
    the violating change removes first from where ``idle`` may follow, its first request
    is a valid move to ``idle`` on its own."""
    status, t, ops = Status.IDLE, 0.0, []
    previous = Status.IDLE
    moves, seen = draw(st.integers(0, 7)), {Status.IDLE}
    for n in range(moves):
        options = sorted(s for s in TRANSITIONS[status] if revisits or s not in seen)
        if not options:
            moves = n
            break
        nxt = draw(st.sampled_from(options))
        seen.add(nxt)
        style = draw(st.sampled_from(styles))
        for at, added, label, delivery in _ops(status, nxt, t, style, AGENT, n):
            ops.append(Op(at, added, label, AGENT, delivery, at + draw(
                st.floats(0, MAX_DELAY_S))))
        previous, status, t = status, nxt, t + 3 * STEP_S
    kept = {status}
    if status is Status.IDLE and previous is not Status.IDLE:
        kept.add(previous)
    if violation == "R1":
        visited = seen if not revisits else {Status.IDLE, status}
        choices = [s for s in Status if s not in TRANSITIONS[status] and s not in visited]
        if choices:
            bad = draw(st.sampled_from(choices))
            style = draw(st.sampled_from(["put", "add-first", "remove-first"]))
            if style == "remove-first" and Status.IDLE in TRANSITIONS[status]:
                kept.add(Status.IDLE)  # its first request is a valid move to idle
                if bad in TRANSITIONS[Status.IDLE]:
                    style = "put"  # else it is two valid moves, through idle
            for at, added, label, delivery in _ops(status, bad, t, style, AGENT, moves):
                ops.append(Op(at, added, label, AGENT, delivery, at + draw(
                    st.floats(0, MAX_DELAY_S))))
    elif violation == "R4":
        target = draw(st.sampled_from([s for s in Status if s is not Status.IDLE]))
        added = target is not status
        if added or status is not Status.IDLE:
            at = t
            ops.append(Op(at, added, target.label, INTRUDER, "intruder-0",
                          at + draw(st.floats(0, MAX_DELAY_S))))
    if not revisits:  # GitHub sent them in order; only the workers race
        latest = 0.0
        for i, op in enumerate(ops):
            latest = max(latest, op.arrives)
            ops[i] = dataclasses.replace(op, arrives=latest)
    return _with_payloads(ops), kept, status


def _with_payloads(ops: list[Op]) -> list[Op]:
    """Each webhook's payload shows the status labels after its request (GitHub renders a
    ``PUT`` of several changes as its end state: all of them show the same labels)."""
    shown: set[str] = set()
    out = []
    for at in sorted({o.at for o in ops}):
        request = [o for o in ops if o.at == at]
        for op in request:
            (shown.add if op.added else shown.discard)(op.label)
        out += [dataclasses.replace(o, shown=frozenset(shown)) for o in request]
    return out


@dataclass
class GitHub:
    """The issue's labels over time: the agents' ops and the reactor's writes, in order."""

    ops: list[Op]
    writes: list[tuple[float, bool, str]] = field(default_factory=list)

    def labels(self, at: float) -> frozenset[str]:
        timeline = [(o.at, o.added, o.label) for o in self.ops if o.at <= at]
        timeline += [w for w in self.writes if w[0] <= at]
        labels = set(BASE)
        for _, added, label in sorted(timeline, key=lambda w: w[0]):
            (labels.add if added else labels.discard)(label)
        return frozenset(labels)


@dataclass
class Reactor:
    """The shell's loop around :func:`reactor.core.rules.evaluate`, on simulated GitHub."""

    github: GitHub
    # The issue was opened and judged before the history starts: the reactor remembers it.
    state: CompetitionView = field(default_factory=lambda: view(
        agent(1, "planner"), accepted={1: "idle"}, competitions={1: "titanic"},
        stages={1: "planner"}))
    pending: list[Change] = field(default_factory=list)
    judged: list[Change] = field(default_factory=list)
    parked_until: float | None = None
    reverts: list[Decision] = field(default_factory=list)

    dedupe: bool = False  # the shell's record of judged deliveries (reactor.store.memory)

    def receive(self, op: Op) -> None:
        if self.dedupe and any(c.delivery_id == op.delivery for c in self.judged):
            return
        self.pending.append(dataclasses.replace(
            change(K.LABELED if op.added else K.UNLABELED, 1, op.label, by=op.by,
                   t=op.arrives, delivery=op.delivery), shown=op.shown))

    def evaluate(self, now: float, retry: Change | None = None) -> None:
        burst = [*self.pending, *([retry] if retry is not None else [])]
        if not burst:
            return
        issue = dataclasses.replace(self.state.issues[0], labels=self.github.labels(now))
        self.state = dataclasses.replace(self.state, issues=(issue,))
        decision = run(burst, self.state, CONFIG, now=now)
        for action in decision.actions:
            if isinstance(action, AddLabel | RemoveLabel):
                self.github.writes.append((now, isinstance(action, AddLabel), action.label))
        if any(isinstance(a, AddLabel | RemoveLabel) for a in decision.actions):
            self.reverts.append(decision)
        self.state, _ = apply(decision, self.state)
        if decision.settle_until is not None:
            self.parked_until = (decision.settle_until - change(K.OPENED, 1).at).total_seconds()
        else:
            self.judged += self.pending
            self.pending, self.parked_until = [], None


def simulate(ops: list[Op], data: st.DataObject, *, dedupe: bool = False,
             lost: frozenset[str] = frozenset()) -> Reactor:
    """Run agent ops, webhook arrivals and the reactor's evaluations in time order. Without
    ``dedupe``, a delivery already judged may come round again (the shell's record of
    judged deliveries lost); with it, only as a retried job before it was judged. The
    deliveries ``lost`` never arrive (GitHub made the change; its webhook got a 503)."""
    reactor = Reactor(GitHub(ops), dedupe=dedupe)
    for op in sorted((o for o in ops if o.delivery not in lost), key=lambda o: o.arrives):
        if reactor.parked_until is not None and reactor.parked_until <= op.arrives:
            reactor.evaluate(reactor.parked_until)
        reactor.receive(op)
        if data.draw(st.booleans(), label="evaluate now"):
            later = op.arrives + data.draw(st.floats(0, WORKER_DELAY_S), label="worker delay")
            done = [] if dedupe else reactor.judged
            retry = data.draw(st.sampled_from([None, *done]), label="retried")
            reactor.evaluate(later, retry)
        if data.draw(st.integers(0, 9), label="duplicate") == 0:
            reactor.receive(op)
    end = max((o.arrives for o in ops), default=0) + SETTLE_S + 0.1
    while reactor.pending:
        reactor.evaluate(max(end, reactor.parked_until or end))
        end += SETTLE_S
    return reactor


def status_labels(labels: frozenset[str]) -> set[str]:
    return {name for name in labels if name.startswith("status:")}


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(violation=None), st.data())
def test_a_valid_history_is_never_reverted_however_its_webhooks_arrive(
        history: tuple[list[Op], set[Status], Status], data: st.DataObject) -> None:
    ops, _, final = history
    reactor = simulate(ops, data)
    assert reactor.reverts == [], [d.actions for d in reactor.reverts]
    assert reactor.state.accepted.get(1, Status.IDLE) is final


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(violation=None, revisits=False), st.data())
def test_a_valid_history_missing_one_webhook_is_never_reverted(
        history: tuple[list[Op], set[Status], Status], data: st.DataObject) -> None:
    """One delivery never arrives (refused while Redis restarted, say, and not yet caught
    up): past the settle window the rest of the burst and GitHub's state still tell a valid
    walk, and nothing is undone. (What the reactor accepts may lag: a change whose webhook
    never came is caught up by redelivery or reconcile.)"""
    ops, _, _ = history
    lost = data.draw(st.sampled_from([o.delivery for o in ops])) if ops else None
    reactor = simulate(ops, data, dedupe=True, lost=frozenset({lost} - {None}))
    assert reactor.reverts == [], (lost, [d.actions for d in reactor.reverts])


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["R1", "R4"]).flatmap(
    lambda rule: histories(violation=rule, styles=("put", "add-first"), revisits=False)),
    st.data())
def test_one_violation_is_undone_exactly_and_nothing_else_is_touched(
        history: tuple[list[Op], set[Status], Status], data: st.DataObject) -> None:
    ops, kept, _ = history
    reactor = simulate(ops, data, dedupe=True)
    labels = reactor.github.labels(max((o.arrives for o in ops), default=0) + 10)
    restored = reactor.state.accepted.get(1, Status.IDLE)
    assert restored in kept, (sorted(labels), [d.actions for d in reactor.reverts])
    assert labels == BASE | ({restored.label} if restored is not Status.IDLE else set()), (
        sorted(labels), [d.actions for d in reactor.reverts])


def _replay(ops: list[tuple[float, bool, str, float]], evaluate_at: dict[int, float]
            ) -> Reactor:
    """Run the given ops (when made, added?, label, when its webhook arrives) with the
    reactor evaluating right after the webhooks numbered in ``evaluate_at`` arrive (at the
    time given), then until nothing is pending."""
    made = _with_payloads([Op(at, added, label, "planner-bot", f"d{n}", arrives)
                           for n, (at, added, label, arrives) in enumerate(ops)])
    reactor = Reactor(GitHub(made))
    for op in sorted(made, key=lambda o: o.arrives):
        if reactor.parked_until is not None and reactor.parked_until <= op.arrives:
            reactor.evaluate(reactor.parked_until)
        reactor.receive(op)
        number = int(op.delivery[1:])
        if number in evaluate_at:
            reactor.evaluate(evaluate_at[number])
    end = max(o.arrives for o in made) + SETTLE_S + 0.1
    while reactor.pending:
        reactor.evaluate(max(end, reactor.parked_until or end))
        end += SETTLE_S
    return reactor


def test_a_blip_whose_webhooks_come_after_later_moves_were_judged_is_not_reverted() -> None:
    """Found by Hypothesis: completed → idle → starting → error → idle, where the start and
    the first half of the move to error arrive after ``error`` was judged. The late pair
    (``starting`` added, then taken off) reads as a move out of ``idle`` after ``error``
    was left; it is a blip — nothing to undo — whose order against the judged moves cannot
    be told."""
    s, r, c, e = (f"status:{x}" for x in ("starting", "running", "completed", "error"))
    ops = [(0.0, True, s, 0.0), (0.06, False, s, 0.06), (0.06, True, r, 0.06),
           (0.12, False, r, 0.12), (0.12, True, c, 0.12), (0.18, False, c, 0.18),
           (0.24, True, s, 0.49), (0.30, False, s, 0.55), (0.32, True, e, 0.32),
           (0.36, False, e, 0.36)]
    reactor = _replay(ops, {0: 0.0, 8: 0.32})
    assert reactor.reverts == []
    assert reactor.state.accepted[1] is Status.IDLE


def test_a_move_back_whose_webhooks_came_late_is_not_reverted() -> None:
    """Found by Hypothesis: starting → timeout → idle → starting → timeout → idle → error,
    where the first move to ``idle`` and the second to ``timeout`` arrive late: judged from
    the ``timeout`` remembered, their pair reads as ``timeout`` left and entered again from
    ``idle`` — a blip the other way round."""
    s, t, e = "status:starting", "status:timeout", "status:error"
    ops = [(0.0, True, s, 0.0), (0.06, False, s, 0.06), (0.06, True, t, 0.06),
           (0.12, False, t, 0.37), (0.18, True, s, 0.27375), (0.24, False, s, 0.24),
           (0.26, True, t, 0.51), (0.30, False, t, 0.30), (0.36, True, e, 0.36)]
    reactor = _replay(ops, {4: 0.27375})
    assert reactor.reverts == []
    assert reactor.state.accepted[1] is Status.ERROR
