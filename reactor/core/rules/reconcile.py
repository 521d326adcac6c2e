"""Reconciling a competition with no change to judge: what the rules require of its state.

``reactor reconcile`` and the periodic sweep read every open agent issue afresh and ask
:func:`reconcile` what to repair, with the same decisions as the webhook path, so a wiped
Redis, missed deliveries or a long outage end in the correct state:

- memory: every agent issue's status, competition and stage is remembered as GitHub shows
  it (once repaired) where the reactor remembers nothing (GitHub is the source of truth),
  and a status that moved validly while its webhooks were lost (remembered ``running``,
  read ``completed``) is caught up with;
- missed hand-offs (R9): a completed stage whose next stage has no issue, or only issues
  never started (``idle``), is handed off — the completion's webhook was lost;
- duplicates (R5): a group of open agent issues with one competition, stage and title keeps
  only its original;
- cycles (R7): a cycle that formed anyway (racing edits) is broken at its longest-waiting
  issue;
- the rules that are properties of the state — one ``agent:`` and one ``comp:`` label (R3),
  issues opened outside an actor's scope (R3) or for an earlier stage (R6), one status
  (R1), stage order (R2) — are repaired from the state alone, whatever its history
  (:mod:`reactor.core.rules.repairs`): a standing violation is never taken as accepted.

Moves the lifecycle forbids between the remembered status and the one read (remembered
``idle``, read ``completed``) are not guessed at here: no state shows them, GitHub keeps their
deliveries for three days, and the catch-up job redelivers them to the webhook path. An issue
changed within the settle window is the webhook path's: it is neither repaired nor
remembered. Comment markers are keyed by the issue and the state found (or the moment its
status was entered), so a sweep run again repeats nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType

from reactor.core.actions import Action, Decision, Identity, Note, Rule, Saga
from reactor.core.config import RepoConfig
from reactor.core.labels import Status
from reactor.core.rules import cycles
from reactor.core.rules._assemble import cancel_pairs, closure_actions, labels_after
from reactor.core.rules._base import Situation
from reactor.core.rules.duplicates import duplicate_closures
from reactor.core.rules.engine import seed_accepted
from reactor.core.rules.handoff import hand_off
from reactor.core.rules.order import GUARDED, blocker
from reactor.core.rules.repairs import Repairs, repair
from reactor.core.transitions import is_allowed
from reactor.core.view import Actor, Change, ChangeKind, CompetitionView, IssueSnapshot

RECONCILE_ACTOR = Actor(login="reactor reconcile", id=0, type="Bot")


def reconcile(view: CompetitionView, config: RepoConfig, *, now: datetime,
              entered: Mapping[int, datetime]) -> Decision:
    """What the competition's state calls for (``entered``: when each issue entered the
    status the reactor remembers). Pure: no I/O, no clock."""
    sit = Situation.build((), view, config, now=now)
    closures = duplicate_closures(sit, (), every=True)
    actions: list[Action] = list(closure_actions(closures))
    learned = {**{n: s for n, s in seed_accepted(view).items() if n not in view.accepted},
               **_caught_up(sit)}
    trusted = {**view.accepted, **learned}
    fixed = repair(sit, trusted, closing=frozenset(c.violation.issue for c in closures))
    closing = frozenset({c.violation.issue for c in closures} | fixed.closing)
    accepted: dict[int, Status] = {
        n: s for n, s in learned.items() if n not in fixed.unsettled} | fixed.accepted
    statuses = {**trusted, **fixed.accepted}  # an issue changed moments ago: as read
    sit = _as_repaired(sit, fixed)
    actions += fixed.actions
    shown = labels_after(fixed.actions, sit)
    sagas: list[Saga] = []
    notes = [Note(Rule.R1, n, "changed moments ago: left for the webhook path")
             for n in sorted(fixed.unsettled)]
    for issue in _stalled(sit, statuses, closing):
        key = f"reconcile:{issue.number}:{_stamp(entered.get(issue.number), issue)}"
        change = Change(ChangeKind.EDITED, issue.number, RECONCILE_ACTOR, key, now)
        result = hand_off(issue, change, sit, statuses, closing, shown)
        if result.actions:
            actions += result.actions
            sagas.append(Saga(issue.number, key, tuple(result.actions)))
        accepted.update(result.accepted)
        notes += result.notes
        if result.actions:
            notes.append(Note(Rule.R9, issue.number, "missed hand-off repaired"))
    swept = cycles.sweep(cycles.Deps.build(view.issues, config, native=view.native,
                                           accepted=statuses, stage_of=sit.stage_of,
                                           comp_of=sit.comp_of, neighbours=view.neighbours),
                         entered=entered)
    return Decision(
        actions=cancel_pairs((*actions, *swept.actions)), accepted=MappingProxyType(
            {**accepted, **swept.accepted}),
        notes=(*notes, *swept.notes), sagas=tuple(sagas),
        identities=MappingProxyType(_identities(sit, fixed)),
        settling=frozenset(fixed.unsettled))


def _as_repaired(sit: Situation, fixed: Repairs) -> Situation:
    """The situation with each repaired issue's identity as the repair leaves it, so the
    hand-offs and the cycle check that follow see it in its one competition and stage."""
    if not fixed.identities:
        return sit
    view = replace(sit.view, competitions=MappingProxyType(
        {**sit.view.competitions, **{n: i.comp for n, i in fixed.identities.items()}}),
        stages=MappingProxyType(
        {**sit.view.stages, **{n: i.stage for n, i in fixed.identities.items()}}))
    return Situation.build((), view, sit.config, now=sit.now)


def _caught_up(sit: Situation) -> dict[int, Status]:
    """Issues read in a status the lifecycle (and the stage order) allows from the one
    remembered: the move was valid, only its webhooks were lost."""
    found: dict[int, Status] = {}
    for issue in sorted(sit.view.issues, key=lambda i: i.number):
        before, now = sit.view.accepted.get(issue.number), issue.status
        comp, stage = sit.comp_of(issue), sit.stage_of(issue)
        if before is None or now is None or now is before or comp is None or stage is None:
            continue
        if is_allowed(before, now) and (now not in GUARDED
                                        or blocker(comp, stage, sit, found) is None):
            found[issue.number] = now
    return found


def _stalled(sit: Situation, statuses: Mapping[int, Status],
             closing: frozenset[int]) -> list[IssueSnapshot]:
    """Completed issues whose next stage has no issue, or only issues never started."""
    found = []
    for issue in sorted(sit.view.issues, key=lambda i: i.number):
        if issue.number in closing or issue.dismissed:
            continue
        comp, stage = sit.comp_of(issue), sit.stage_of(issue)
        index = sit.config.stage_index(stage)
        done = statuses.get(issue.number) is Status.COMPLETED or issue.closed_as_completed
        if comp is None or index is None or not done or index + 1 >= len(sit.config.stages):
            continue
        following = [i for i in sit.in_stage(comp, sit.config.stages[index + 1])
                     if not i.dismissed and i.number not in closing]
        if all(statuses.get(i.number, i.status) is Status.IDLE and i.is_open
               for i in following):
            found.append(issue)
    return _latest_per_stage(sit, found)


def _latest_per_stage(sit: Situation, issues: list[IssueSnapshot]) -> list[IssueSnapshot]:
    """One completion per (competition, stage) hands off: the newest issue."""
    latest: dict[tuple[str | None, str | None], IssueSnapshot] = {}
    for issue in issues:
        latest[(sit.comp_of(issue), sit.stage_of(issue))] = issue
    return list(latest.values())


def _stamp(entered: datetime | None, issue: IssueSnapshot) -> str:
    return (entered or issue.created_at).isoformat()


def _identities(sit: Situation, fixed: Repairs) -> dict[int, Identity]:
    """Each agent issue's competition and stage to remember: as repaired, else as the rules
    read them — except an issue changed moments ago that the reactor knows nothing of."""
    found = {i.number: Identity(comp, stage) for i in sit.view.issues
             if (comp := sit.comp_of(i)) is not None and (stage := sit.stage_of(i)) is not None
             and (i.number not in fixed.unsettled or i.number in sit.view.stages)}
    return found | fixed.identities
