"""Repairs of an agent issue's status, from its state alone (R1 one status, R2 order).

- **one status (R1)**: an issue with two ``status:`` labels (or one naming no state) keeps
  the status the reactor accepted; with no memory, the later of two statuses one lifecycle
  move apart (an agent's two-request change cut in half) when R2 allows it, else the
  earlier; of two that lead to each other, the one that stops the stage; the one known
  status beside unknown ones; any other mix goes to a human.
- **order (R2)**: an issue in ``starting`` or ``running`` the reactor did not accept there,
  while an earlier stage has no completed issue, goes back to the status the reactor
  accepted, else ``idle`` — from where the hand-off starts it once the earlier stages are
  done. A status the reactor accepted stands: R2 guards *entering* a stage, judged when it
  happened (an earlier stage re-run since leaves it be; a maintainer's override too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reactor.core import comments
from reactor.core.actions import Identity, Rule
from reactor.core.labels import LabelKind, Status
from reactor.core.rules._base import Situation
from reactor.core.rules._repair import Repairs, listed, relabel, state_key, unclear, undone
from reactor.core.rules.order import GUARDED, Blocker, blocker
from reactor.core.transitions import is_allowed
from reactor.core.view import IssueSnapshot
from reactor.core.words import code


@dataclass(frozen=True, slots=True)
class _Target:
    status: Status
    why: str
    rule: Rule = Rule.R1
    blocked: Blocker | None = None


def repair_status(issue: IssueSnapshot, identity: Identity, sit: Situation,
                  decided: dict[int, Status], out: Repairs) -> None:
    """The issue's one status, in order (``decided``: what the reactor trusts for the
    issues judged so far, earlier stages first; updated with this one)."""
    memory = sit.view.accepted.get(issue.number)

    def blocked(status: Status) -> Blocker | None:
        if status not in GUARDED or status is memory:
            return None
        return blocker(identity.comp, identity.stage, sit, decided)

    target = _one_status(issue, memory, blocked)
    if target is None:
        unclear(issue, sit, out, Rule.R1, listed(issue, LabelKind.STATUS), "`status:` labels")
        return
    if (stop := blocked(target.status)) is not None:
        target = _Target(memory or Status.IDLE, "", Rule.R2, stop)
    decided[issue.number] = target.status
    if memory is not target.status or issue.status is not target.status:
        out.accepted[issue.number] = target.status
    if issue.status is not target.status:
        _restore(issue, identity, target, out)


def _one_status(issue: IssueSnapshot, memory: Status | None,
                blocked: Callable[[Status], Blocker | None]) -> _Target | None:
    """The one status an issue with several ``status:`` labels keeps; None when nothing
    tells (then a human decides)."""
    if issue.status is not None:
        return _Target(issue.status, "")
    if memory is not None:
        return _Target(memory, f"`{memory}` (the status the reactor had accepted)")
    known = sorted(issue.tags.statuses, key=list(Status).index)
    if len(known) <= 1:
        keep = known[0] if known else Status.IDLE
        return _Target(keep, f"`{keep}` (the one known status)")
    if len(known) != 2:
        return None
    first, second = known
    if is_allowed(first, second) and is_allowed(second, first):
        # Each leads to the other (``error`` ⇄ ``starting``): keep the one that stops the
        # stage and says why (from there the agent or the hand-off starts it again).
        keep = min(known, key=lambda s: (s in GUARDED, s is Status.IDLE))
        return _Target(keep, f"`{keep}` (of two statuses that lead to each other, the one "
                             f"that stops the stage)")
    for earlier, later in ((first, second), (second, first)):
        if is_allowed(earlier, later):
            keep = later if blocked(later) is None else earlier
            return _Target(keep, f"`{keep}` (the {'later' if keep is later else 'earlier'} "
                                 f"of two statuses one move apart: a change cut in half)")
    return None


def _restore(issue: IssueSnapshot, identity: Identity, target: _Target, out: Repairs) -> None:
    status = target.status
    shown = issue.tags.of(LabelKind.STATUS)
    remove = [i.name for i in shown if i.status is not status]
    add = [] if status is Status.IDLE or any(i.status is status for i in shown) \
        else [status.label]
    relabel(out, issue, target.rule, add=add, remove=remove)
    if target.rule is Rule.R2 and target.blocked is not None:
        b = target.blocked
        found = (f"#{issue.number} ({code(identity.stage)}) in {listed(issue, LabelKind.STATUS)}"
                 f", but {b.describe(identity.comp)}")
        wait = (f"Wait for #{b.issue.number} to reach `status:completed`" if b.issue
                else f"Open and complete the {b.stage} issue of {code(identity.comp)} first")
        instead = f"{wait}; the hand-off then starts this stage."
        text = (f"A stage starts only once every earlier stage has completed, so the reactor "
                f"{undone(add, remove)}, leaving it `status:{status}`.")
    else:
        found = f"#{issue.number} with {listed(issue, LabelKind.STATUS)}"
        instead = ("Change status in one request, or add the new `status:` label and remove "
                   "the old one straight after.")
        text = (f"An issue has exactly one known status, so the reactor kept {target.why}: "
                f"it {undone(add, remove)}.")
    out.actions.append(comments.repaired(issue=issue.number, rule=target.rule, found=found,
                                         done=text, instead=instead, key=state_key(issue)))
