"""Audit records for what a turn decided and did; the turn writes them when it closes.

Every delivery of a burst gets one record of its own saying what became of it — ``applied``
(the reactor acted on its issue), ``noted`` (with the notes on its issue), ``accepted`` (no
rule broken) or ``parked`` (judged again when the settle window ends) — so
``reactor audit --delivery GUID`` finds any of them. Each action gets a record too, naming in
``deliveries`` the deliveries of its issue it answers, and so does each note on an issue no
change of the burst concerns. A hand-off a stopped worker began and another finished names the
deliveries its completion accounted for, which are judged by it.
"""

from __future__ import annotations

from reactor.core.actions import Action, Decision, Dispatch, Note, Saga
from reactor.core.routing import Scope
from reactor.core.view import Change
from reactor.store.audit import AuditRecord, Outcome, now_iso

SUMMARY_REASONS = 3  # reasons quoted in a delivery's own record


def change_record(scope: Scope, changes: list[Change], *, outcome: Outcome, rule: str,
                  issue: int | None, detail: str) -> AuditRecord:
    """A record about ``issue`` naming the deliveries of ``changes`` that concern it (all of
    them when none does)."""
    concerned = [c for c in changes if c.issue == issue] or changes
    last = concerned[-1]
    comp = f"comp:{scope.comp} " if scope.comp else ""
    return AuditRecord(
        at=now_iso(), delivery=last.delivery_id, event="issues", action=last.kind.value,
        outcome=outcome.value, installation=str(scope.installation_id),
        repo=scope.repo.full_name, issue=str(issue or ""), label=last.label or "",
        actor=last.actor.login, rule=rule, detail=f"{comp}{detail}".strip(),
        deliveries=",".join(c.delivery_id for c in concerned[:-1]),
    )


def _issue_of(action: Action) -> int | None:
    return None if isinstance(action, Dispatch) else getattr(action, "issue", None)


def _describe(action: Action) -> str:
    return f"{type(action).__name__}: {action.reason}"


def decision_records(scope: Scope, decision: Decision, changes: list[Change]
                     ) -> list[AuditRecord]:
    """One record per action, one per note on an issue no change of the burst concerns (a
    note on a changed issue is in that change's own record), then one per delivery."""
    records = [change_record(scope, changes, outcome=Outcome.APPLIED, rule=action.rule.value,
                             issue=_issue_of(action), detail=_describe(action))
               for action in decision.actions]
    changed = {change.issue for change in changes}
    records += [change_record(scope, changes, outcome=Outcome.NOTED, rule=note.rule.value,
                              issue=note.issue, detail=note.reason)
                for note in decision.notes if note.issue not in changed]
    for change in changes:
        outcome, rule, detail = _fate(change, decision)
        records.append(change_record(scope, [change], outcome=outcome, rule=rule,
                                     issue=change.issue, detail=detail))
    return records


def _fate(change: Change, decision: Decision) -> tuple[Outcome, str, str]:
    """What became of one delivery, truthfully: outcome, rule and a short detail."""
    if change.issue in decision.settling:
        until = decision.settle_until.isoformat() if decision.settle_until else "later"
        return Outcome.PARKED, "", f"judged again when the settle window ends ({until})"
    actions = [a for a in decision.actions if _issue_of(a) == change.issue]
    notes: list[Note] = [n for n in decision.notes if n.issue == change.issue]
    if actions:
        reasons = "; ".join(dict.fromkeys(a.reason for a in actions[:SUMMARY_REASONS]))
        return Outcome.APPLIED, actions[0].rule.value, reasons
    if notes:
        return Outcome.NOTED, notes[0].rule.value, "; ".join(
            n.reason for n in notes[:SUMMARY_REASONS])
    return Outcome.ACCEPTED, "", "no rule broken"


def problem_record(scope: Scope, problem: str, changes: list[Change]) -> AuditRecord:
    return change_record(scope, changes, outcome=Outcome.REJECTED, rule="config", issue=None,
                         detail=problem)


def unprompted_records(scope: Scope, decision: Decision, *, event: str) -> list[AuditRecord]:
    """Records of what the reactor did unprompted by a delivery — a timeout check
    (``timer``) or a reconcile run (``reconcile``) — one per action and note."""
    comp = f"comp:{scope.comp} " if scope.comp else ""
    entries = [(Outcome.APPLIED, a.rule.value, _issue_of(a), _describe(a))
               for a in decision.actions]
    entries += [(Outcome.NOTED, n.rule.value, n.issue, n.reason) for n in decision.notes]
    return [AuditRecord(
        at=now_iso(), delivery=event, event=event, outcome=outcome.value,
        installation=str(scope.installation_id), repo=scope.repo.full_name,
        issue=str(issue or ""), rule=rule, detail=f"{comp}{detail}".strip())
        for outcome, rule, issue, detail in entries]


def resumed_record(scope: Scope, saga: Saga, done: int) -> AuditRecord:
    """A hand-off a stopped worker began, carried out by this one: its own decision was
    never recorded, so this record names the deliveries its completion accounted for."""
    comp = f"comp:{scope.comp} " if scope.comp else ""
    first, *rest = saga.settled or ("resume",)
    return AuditRecord(
        at=now_iso(), delivery=first, event="issues", action="resume",
        outcome=Outcome.APPLIED.value, installation=str(scope.installation_id),
        repo=scope.repo.full_name, issue=str(saga.source), rule="R9",
        detail=f"{comp}hand-off from #{saga.source} resumed at step {done + 1} of "
               f"{len(saga.steps)}", deliveries=",".join(rest))

