"""evaluate(): one burst of changes on one competition, judged on its fresh state.

Order of work, and why:

1. Set aside the reactor's own echoes (R10): they never trigger a rule.
2. Closures first — R3 (opened outside the actor's scope), R6 (reverse stage), then R5
   (duplicates) — because a closed issue needs no other correction. Issues already closed
   as not planned or duplicate are out of play for every later step.
3. R3 label reverts (identity and scope) on the remaining touched issues.
4. Status verdicts in stage order, so R2 on a later stage sees what was just decided for
   an earlier one.
5. Hand-offs (R9) for each issue accepted into ``completed`` in this burst.

The result is idempotent by construction: every finding is computed from the fresh state
against the accepted memory, so evaluating the state a decision leaves behind (with its
``accepted``) asks for nothing more, and replaying the same changes repeats the same comment
markers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from reactor.actions import Action, Decision, Note, Rule
from reactor.config import RepoConfig
from reactor.labels import LabelKind, Status, parse_label
from reactor.rules import _assemble
from reactor.rules._base import Closure, Revert, Situation
from reactor.rules.duplicates import duplicate_closures
from reactor.rules.handoff import hand_off
from reactor.rules.isolation import creation_closures, label_reverts
from reactor.rules.lifecycle import Accept, Leave, Settle, judge
from reactor.rules.reverse import reverse_closure
from reactor.view import Change, CompetitionView, IssueSnapshot


@dataclass
class _Statuses:
    decided: dict[int, Status] = field(default_factory=dict)
    reverts: list[Revert] = field(default_factory=list)
    completed: list[Accept] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    settle: list[datetime] = field(default_factory=list)


def evaluate(changes: Sequence[Change], view: CompetitionView, config: RepoConfig, *,
             now: datetime, app_login: str) -> Decision:
    """Decide what the burst ``changes`` on ``view`` call for. Pure: no I/O, no clock."""
    sit = Situation.build(changes, view, config, now=now, app_login=app_login)
    notes = _echo_notes(sit) + _label_notes(sit)
    closures = _closures(sit)
    closing = frozenset(c.violation.issue for c in closures)
    open_touched = [n for n in sit.touched()
                    if n not in closing and not _issue(sit, n).dismissed]
    reverts = [r for n in open_touched for r in label_reverts(_issue(sit, n), sit)]
    statuses = _judge_statuses(sit, open_touched)
    handoff_actions: list[Action] = []
    accepted = dict(statuses.decided)
    for accept in statuses.completed:
        result = hand_off(_issue(sit, accept.culprit.issue), accept.culprit, sit,
                          statuses.decided, closing)
        handoff_actions += result.actions
        accepted.update(result.accepted)
        notes += result.notes
    undone = _assemble.revert_actions([*reverts, *statuses.reverts], sit)
    return Decision(
        actions=(*_assemble.closure_actions(closures), *undone.actions, *handoff_actions),
        accepted=MappingProxyType(accepted),
        reverted=frozenset(undone.reverted),
        settle_until=max(statuses.settle, default=None),
        notes=(*notes, *statuses.notes, *undone.notes),
    )


def seed_accepted(view: CompetitionView) -> dict[int, Status]:
    """Memory rebuilt from GitHub (``reactor reconcile`` after a Redis wipe): each agent
    issue's status as read now, where the read is unambiguous."""
    return {i.number: s for i in view.issues if i.stage is not None and (s := i.status)}


def _issue(sit: Situation, number: int) -> IssueSnapshot:
    found = sit.view.issue(number)
    assert found is not None  # only issues present in the view are ever judged
    return found


def _echo_notes(sit: Situation) -> list[Note]:
    return [Note(Rule.R10, c.issue, f"own change ({c.kind} {c.label or ''}) ignored".strip())
            for c in sit.own]


def _label_notes(sit: Situation) -> list[Note]:
    """Flag label names the reactor refuses to read (over 50 characters, empty values)."""
    bad = [c for c in sit.changes
           if c.label is not None and parse_label(c.label).kind is LabelKind.INVALID]
    return [Note(Rule.R3, c.issue, f"ignored an unreadable label name ({len(c.label or '')} "
                                   f"characters) from @{c.actor.login}") for c in bad]


def _closures(sit: Situation) -> list[Closure]:
    found: list[Closure] = []
    for number in sit.touched():
        issue = _issue(sit, number)
        closure = creation_closures(issue, sit) or reverse_closure(issue, sit)
        if closure is not None:
            found.append(closure)
    closing = [c.violation.issue for c in found]
    return found + list(duplicate_closures(sit, closing))


def _stage_order(sit: Situation, number: int) -> tuple[int, int]:
    index = sit.config.stage_index(_issue(sit, number).stage)
    return (len(sit.config.stages) if index is None else index), number


def _judge_statuses(sit: Situation, numbers: list[int]) -> _Statuses:
    out = _Statuses()
    for number in sorted(numbers, key=lambda n: _stage_order(sit, n)):
        issue = _issue(sit, number)
        before = sit.view.accepted_status(number)
        verdict = judge(issue, sit, out.decided)
        if isinstance(verdict, Settle):
            out.settle.append(verdict.until)
        elif isinstance(verdict, Leave):
            out.notes.append(Note(Rule.R1, number, verdict.reason))
        elif isinstance(verdict, Revert):
            out.reverts.append(verdict)
            out.decided[number] = before
        elif isinstance(verdict, Accept):
            out.decided[number] = verdict.status
            _accepted(out, verdict, before, number)
    return out


def _accepted(out: _Statuses, verdict: Accept, before: Status, number: int) -> None:
    if verdict.status is before:
        return
    who = f"@{verdict.culprit.actor.login}" + (" (maintainer override)" if verdict.override else "")
    out.notes.append(Note(Rule.R1, number, f"accepted {before} → {verdict.status} by {who}"))
    if verdict.status is Status.COMPLETED:
        out.completed.append(verdict)
