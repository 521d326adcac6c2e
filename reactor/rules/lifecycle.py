"""Judging one issue's status change: R1 lifecycle, with R3 scope, R4 authority and R2 order.

The transition judged runs from the last status the reactor accepted to the status read now
(SPEC §3). A read is *ambiguous* when it shows two known ``status:`` labels, or none right
after a non-idle status: an agent may be halfway through a two-request change. Within
``config.settle`` of the issue's latest change the verdict is :class:`Settle` — apply the
rest, read again later — so a two-request change is judged once, as a whole. Past the
window, two labels break R1 ("at most one") and no label reads as ``idle``.

Checks run in the order who (R3 scope, R4 authority), what (R1), when (R2); the first
violation reverts the status labels to the accepted status, touching no other label. A
maintainer's change is accepted whatever it is. ``status:idle`` is put back only when the
burst removed it: no label already means idle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from reactor.actions import Rule
from reactor.labels import LabelKind, Status, parse_label
from reactor.lifecycle import allowed_from, is_allowed
from reactor.rules._base import LABEL_CHANGES, Revert, Situation, Violation
from reactor.rules.authority import authority_violation
from reactor.rules.isolation import scope_violation
from reactor.rules.order import order_violation
from reactor.view import Change, ChangeKind, IssueSnapshot


@dataclass(frozen=True, slots=True)
class Accept:
    """The status read is now the accepted one (``override``: only a maintainer made it so)."""

    status: Status
    culprit: Change
    override: bool = False


@dataclass(frozen=True, slots=True)
class Settle:
    """Ambiguous read: judge again at or after ``until``."""

    until: datetime


@dataclass(frozen=True, slots=True)
class Leave:
    """Nothing to write; the reason is audited."""

    reason: str


Verdict = Accept | Settle | Leave | Revert


def status_changes(issue: IssueSnapshot, sit: Situation) -> tuple[Change, ...]:
    """Others' changes that can move the status: ``status:`` label changes, and ``opened``
    (labels given at creation)."""
    def moves(c: Change) -> bool:
        if c.kind is ChangeKind.OPENED:
            return True
        return (c.kind in LABEL_CHANGES and c.label is not None
                and parse_label(c.label).kind is LabelKind.STATUS)
    return tuple(c for c in sit.of(issue.number) if moves(c))


def read_status(issue: IssueSnapshot, before: Status) -> tuple[Status | None, bool]:
    """(status read, ambiguous?); status None = two labels or an unknown ``status:`` value."""
    known = issue.tags.statuses
    if len(known) > 1:
        return None, True
    if issue.tags.unknown_statuses:
        return None, False
    if not known:
        return Status.IDLE, before is not Status.IDLE
    return next(iter(known)), False


def judge(issue: IssueSnapshot, sit: Situation, decided: Mapping[int, Status]) -> Verdict | None:
    """The verdict on ``issue``'s status, or None when the burst did not touch it."""
    changes = status_changes(issue, sit)
    stage = sit.stage_of(issue)
    if not changes or stage is None:
        return None
    before = sit.view.accepted_status(issue.number)
    status, ambiguous = read_status(issue, before)
    until = changes[-1].at + sit.config.settle
    if ambiguous and sit.now < until:
        return Settle(until)
    if any(sit.is_maintainer(c) for c in changes):
        culprit = next(c for c in changes if sit.is_maintainer(c))
        if status is None:
            return Leave(f"maintainer @{culprit.actor.login} left an ambiguous status")
        return Accept(status, culprit, override=True)
    culprit = _culprit(changes, status)
    if status is before:
        return Accept(before, culprit)
    violation = _violation(issue, stage, status, before, culprit, changes, sit, decided)
    if violation is None:
        assert status is not None  # a None status always breaks R1
        return Accept(status, culprit)
    if violation.rule in (Rule.R1, Rule.R2) and status is not None:
        # Who acted is fine; what moved may be several allowed steps, or still in flight.
        steps = walk(before, changes)
        end = steps[-1][1] if steps else before
        if status is end and all(
            _violation(issue, stage, b, a, c, (c,), sit, decided) is None for a, b, c in steps
        ):
            return Accept(end, culprit)
        if status is not end and sit.now < until:
            return Settle(until)  # the read is ahead of the webhooks this burst holds
    return revert_status(issue, before, violation, sit)


def walk(before: Status, changes: tuple[Change, ...]) -> tuple[tuple[Status, Status, Change], ...]:
    """The moves the burst's webhooks describe, in order: (from, to, the change that made it).

    An agent quicker than the reactor's round trip moves ``starting → running → completed``
    before the first webhook is handled; the net move (``idle → completed``) breaks R1, yet each
    step is allowed. Adding a status label is a move to it; removing the current one is a move
    to ``idle`` unless a later change in the burst adds another (remove-then-add).
    """
    moves = [c for c in changes if c.kind in LABEL_CHANGES and c.label is not None
             and parse_label(c.label).status is not None]
    steps: list[tuple[Status, Status, Change]] = []
    current = before
    for index, change in enumerate(moves):
        target = parse_label(change.label or "").status
        assert target is not None
        if change.kind is ChangeKind.LABELED and target is not current:
            steps.append((current, target, change))
            current = target
        elif change.kind is ChangeKind.UNLABELED and target is current and not any(
            later.kind is ChangeKind.LABELED for later in moves[index + 1:]
        ):
            steps.append((current, Status.IDLE, change))
            current = Status.IDLE
    return tuple(steps)


def _culprit(changes: tuple[Change, ...], status: Status | None) -> Change:
    """The change that set the status read now (its last ``labeled``), else the latest."""
    setting = [c for c in changes if c.kind is ChangeKind.LABELED and c.label is not None
               and parse_label(c.label).status is status]
    return (setting or list(changes))[-1]


def _violation(issue: IssueSnapshot, stage: str, status: Status | None, before: Status,
               culprit: Change, changes: tuple[Change, ...], sit: Situation,
               decided: Mapping[int, Status]) -> Violation | None:
    found = scope_violation(issue, changes, sit) or authority_violation(issue, stage, changes, sit)
    if found is not None:
        return found
    if status is None or not is_allowed(before, status):
        return _lifecycle_violation(issue, status, before, culprit)
    return order_violation(issue, stage, sit.comp_of(issue), status, culprit, sit, decided)


def _lifecycle_violation(issue: IssueSnapshot, status: Status | None, before: Status,
                         culprit: Change) -> Violation:
    nexts = ", ".join(f"`status:{s}`" for s in allowed_from(before))
    if status is None:
        labels = ", ".join(f"`{item.name}`" for item in issue.tags.of(LabelKind.STATUS))
        what = f"left #{issue.number} with {labels}; an issue has exactly one known status"
    else:
        what = f"moved #{issue.number} from `{before}` to `{status}`, which the lifecycle forbids"
    instead = f"From `{before}` the next status is one of {nexts}, set in a single change."
    return Violation(Rule.R1, issue.number, culprit.actor.login, what, instead,
                     culprit.delivery_id)


def revert_status(issue: IssueSnapshot, before: Status, violation: Violation,
                  sit: Situation) -> Revert:
    """Status labels back to ``before``: drop every other ``status:`` label, restore the one
    removed. ``status:idle`` is restored only if the burst removed it."""
    items = issue.tags.of(LabelKind.STATUS)
    remove = tuple(item.name for item in items if item.status is not before)
    if any(item.status is before for item in items):
        return Revert(violation, remove=remove)
    net = sit.net(issue, (LabelKind.STATUS,), lambda c: True)
    removed = tuple(name for (_, value), name in net.removed.items() if value == before)
    if removed or before is Status.IDLE:
        return Revert(violation, add=removed[:1], remove=remove)
    return Revert(violation, add=(before.label,), remove=remove)
