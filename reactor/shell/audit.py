"""Audit records for what the shell decided and did (one per action, note and problem)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reactor.actions import Action, Decision, Dispatch
from reactor.store.audit import AuditRecord, Outcome, now_iso
from reactor.view import Change

if TYPE_CHECKING:
    from reactor.context import Context
    from reactor.shell.coordinate import Scope


def _record(scope: Scope, changes: list[Change], *, outcome: Outcome, rule: str,
            issue: int | None, detail: str) -> AuditRecord:
    concerned = [c for c in changes if c.issue == issue] or changes
    last = concerned[-1]
    comp = f"comp:{scope.comp} " if scope.comp else ""
    return AuditRecord(
        at=now_iso(), delivery=last.delivery_id, event="issues", action=last.kind.value,
        outcome=outcome.value, installation=str(scope.installation_id),
        repo=scope.repo.full_name, issue=str(issue or ""), label=last.label or "",
        actor=last.actor.login, rule=rule, detail=f"{comp}{detail}".strip(),
    )


def _describe(action: Action) -> str:
    return f"{type(action).__name__}: {action.reason}"


async def record_decision(
    ctx: Context, scope: Scope, decision: Decision, changes: list[Change]
) -> None:
    for action in decision.actions:
        issue = None if isinstance(action, Dispatch) else getattr(action, "issue", None)
        await ctx.audit_log.record(_record(
            scope, changes, outcome=Outcome.APPLIED, rule=action.rule.value, issue=issue,
            detail=_describe(action),
        ))
    for note in decision.notes:
        await ctx.audit_log.record(_record(
            scope, changes, outcome=Outcome.NOTED, rule=note.rule.value, issue=note.issue,
            detail=note.reason,
        ))
    if decision.is_empty and not decision.notes:
        for change in changes:
            await ctx.audit_log.record(_record(
                scope, [change], outcome=Outcome.ACCEPTED, rule="", issue=change.issue,
                detail="no rule broken",
            ))


async def record_problem(ctx: Context, scope: Scope, problem: str, changes: list[Change]) -> None:
    await ctx.audit_log.record(_record(
        scope, changes, outcome=Outcome.REJECTED, rule="config", issue=None, detail=problem,
    ))
