"""Properties of reconcile over generated states.

- A valid state — every stage in ``starting`` or ``running`` after earlier stages that
  completed, one status, one ``agent:`` and one ``comp:`` label, each issue opened by its
  own stage's agent, every completion handed off — is never touched, whether the reactor
  remembers it or Redis was wiped.
- Whatever the state, reconcile once, apply, reconcile again: the second run decides
  nothing (a repair is never undone or repeated by the next sweep).
"""

from __future__ import annotations

import os
from types import MappingProxyType

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactor.core.actions import Comment
from reactor.core.config import parse_config
from reactor.core.labels import Status
from reactor.core.rules.reconcile import reconcile
from reactor.core.view import CompetitionView, IssueSnapshot
from tests.core.world import COMP, agent, apply, at, view

EXAMPLES = int(os.environ.get("REACTOR_PROPERTY_EXAMPLES", "300"))
STAGES = ("planner", "analyzer", "executor", "monitor", "retrospective")
CONFIG = parse_config(
    "agents:\n" + "".join(f"  {s}: [{s}-bot]\n" for s in STAGES) + "maintainers: [boss]\n")
STOPPED = (Status.IDLE, Status.ERROR, Status.TIMEOUT)
NOT_DONE = (Status.IDLE, Status.STARTING, Status.RUNNING, Status.ERROR, Status.TIMEOUT)
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def snapshot(number: int, stage: str, status: Status, *, closed: bool = False,
             comp: str = COMP, extra: tuple[str, ...] = (), author: str | None = None
             ) -> IssueSnapshot:
    label = None if status is Status.IDLE else str(status)
    state = {"state": "closed", "reason": "completed"} if closed else {}
    return agent(number, stage, label, *extra, comp=comp, title=f"[{comp}] {stage}: task {number}",
                 author=author or f"{stage}-bot", **state)  # type: ignore[arg-type]


@st.composite
def valid_states(draw: st.DrawFn) -> CompetitionView:
    """A competition whose first ``done`` stages completed and whose next stage has begun."""
    remembered = draw(st.booleans())
    done = draw(st.integers(0, len(STAGES)))
    issues: list[IssueSnapshot] = []
    for k, stage in enumerate(STAGES):
        if k < done:  # completed: one issue completed (or closed so), others anything
            closed = draw(st.booleans())
            first = [snapshot(len(issues) + 1, stage, Status.COMPLETED, closed=closed)]
            others = draw(st.lists(st.sampled_from(list(Status)), max_size=1))
        elif k == done:  # the stage at work: begun if an earlier stage handed it off
            choices = NOT_DONE if k == 0 else NOT_DONE[1:]
            first = [snapshot(len(issues) + 1, stage, draw(st.sampled_from(choices)))]
            if k == 0 and draw(st.booleans()):
                first = []
            others = draw(st.lists(st.sampled_from(NOT_DONE), max_size=1))
        else:  # not reached yet; with memory, a stage started before an earlier one re-ran
            pool = list(Status) if remembered else list(STOPPED)
            first = []
            others = draw(st.lists(st.sampled_from(pool), max_size=2))
            if remembered and Status.COMPLETED in others and k + 1 < len(STAGES):
                others = [s for s in others if s is not Status.COMPLETED]
        issues += first
        for status in others:
            issues.append(snapshot(len(issues) + 1, stage, status))
    return _with_memory(view(*issues), remembered)


def _with_memory(state: CompetitionView, remembered: bool) -> CompetitionView:
    if not remembered:
        return state
    return CompetitionView(
        repo=state.repo, comp=state.comp, issues=state.issues,
        accepted=MappingProxyType({i.number: i.status or Status.IDLE for i in state.issues}),
        competitions=MappingProxyType({i.number: COMP for i in state.issues}),
        stages=MappingProxyType({i.number: i.stage or "" for i in state.issues}),
        app_login=state.app_login)


@SETTINGS
@given(valid_states())
def test_reconcile_never_touches_a_valid_state(state: CompetitionView) -> None:
    decision = reconcile(state, CONFIG, now=at(600), entered={})
    assert decision.actions == (), [i.labels for i in state.issues]


LABELS = st.sampled_from([
    "status:idle", "status:starting", "status:running", "status:completed", "status:error",
    "status:timeout", "status:done", "agent:planner", "comp:house", "reactor:needs-human"])


@st.composite
def any_states(draw: st.DrawFn) -> CompetitionView:
    issues = []
    for number in range(1, draw(st.integers(1, 6)) + 1):
        stage = draw(st.sampled_from(STAGES))
        extra = tuple(draw(st.lists(LABELS, max_size=3, unique=True)))
        closed = draw(st.integers(0, 4)) == 0
        author = draw(st.sampled_from([*(f"{s}-bot" for s in STAGES), "boss", "someone"]))
        issues.append(snapshot(number, stage, Status.IDLE, closed=closed, extra=extra,
                               author=author))
    state = view(*issues)
    memory = draw(st.sets(st.sampled_from([i.number for i in issues])))
    if not memory:
        return state
    accepted = {n: draw(st.sampled_from(list(Status))) for n in memory}
    return CompetitionView(
        repo=state.repo, comp=state.comp, issues=state.issues,
        accepted=MappingProxyType(accepted),
        competitions=MappingProxyType(dict.fromkeys(memory, COMP)),
        stages=MappingProxyType({n: STAGES[0] if state.issues[n - 1].stage is None
                                 else state.issues[n - 1].stage or "" for n in memory}),
        app_login=state.app_login)


@SETTINGS
@given(any_states())
def test_a_second_reconcile_finds_nothing_left_to_repair(state: CompetitionView) -> None:
    first = reconcile(state, CONFIG, now=at(600), entered={})
    after, _ = apply(first, state)
    second = reconcile(after, CONFIG, now=at(660), entered={})
    posted = {a.marker for a in first.actions if isinstance(a, Comment)}  # never twice
    left = [a for a in second.actions if not (isinstance(a, Comment) and a.marker in posted)]
    assert left == [], (first.actions, [sorted(i.labels) for i in after.issues])
