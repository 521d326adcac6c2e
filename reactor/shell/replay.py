"""Replaying a webhook delivery through the handlers again, for debugging (SPEC §4).

- :func:`dry_run` reads GitHub as the live path would and returns the decision the rules take
  on that delivery's change — each action with its rule and reason, the actor, and the state
  it relied on (the issue as read, the status the reactor had accepted) — and writes nothing
  to GitHub or to the reactor's memory (the GitHub client still caches ETags and tokens).
- :func:`live` runs the stored delivery through the handlers again, as if it had just
  arrived: its change is judged again in its competition (a delivery is otherwise judged once),
  comments are claimed by the same markers, so a live replay never posts a comment twice, and
  the audit log records the replay.
- :func:`store` keeps a payload saved from GitHub's "Recent deliveries" page as a delivery
  of its own, so both work for it too.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from reactor.actions import Decision
from reactor.context import Context
from reactor.errors import PayloadError
from reactor.model import Event, change_from_event, parse_event
from reactor.rules import evaluate
from reactor.shell import coordinate, repoconfig
from reactor.store import deliveries, keys, locks
from reactor.store.audit import AuditRecord, Outcome, now_iso
from reactor.view import Change, IssueSnapshot


@dataclass(frozen=True)
class Report:
    """What a dry run found: the event, and for a rules change the decision and its basis."""

    event: Event
    change: Change | None = None
    scope: str = ""
    issue: IssueSnapshot | None = None
    accepted: str | None = None
    decision: Decision = field(default_factory=Decision)

    def as_json(self) -> dict[str, Any]:
        return {
            "delivery": self.event.delivery_id, "event": self.event.name,
            "action": self.event.action, "actor": _login(self.event),
            "scope": self.scope, "issue": self.event.issue,
            "read": sorted(self.issue.labels) if self.issue else None,
            "accepted": self.accepted,
            "actions": [{"kind": type(a).__name__, "rule": a.rule.value, "reason": a.reason,
                         "issue": getattr(a, "issue", None)} for a in self.decision.actions],
            "notes": [{"rule": n.rule.value, "issue": n.issue, "reason": n.reason}
                      for n in self.decision.notes],
            "settle_until": (self.decision.settle_until.isoformat()
                             if self.decision.settle_until else None),
        }


def _login(event: Event) -> str:
    return event.sender.login if event.sender else ""


async def load_event(ctx: Context, guid: str) -> Event:
    """The stored delivery ``guid`` parsed (DeliveryNotFound, PayloadError as one line)."""
    delivery = await deliveries.load(ctx.redis, guid)
    try:
        payload = orjson.loads(delivery.body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"the stored payload is not JSON: {exc}", delivery_id=guid) from None
    return parse_event(delivery.event, guid, payload, received_at=delivery.received_at)


async def store(ctx: Context, event: str, body: bytes) -> str:
    """Keep a saved payload as a delivery of its own; returns its new GUID."""
    try:
        parse_event(event, "replay", orjson.loads(body))
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"the file is not JSON: {exc}", delivery_id="") from None
    guid = f"replay-{uuid.uuid4()}"
    record = deliveries.Delivery(guid=guid, event=event, body=body, received_at=time.time())
    await ctx.redis.set(keys.delivery(guid), record.header() + body, ex=keys.DELIVERY_TTL_S)
    return guid


async def dry_run(ctx: Context, event: Event) -> Report:
    """The decision the rules take on the delivery's change, on GitHub as it is now."""
    change = change_from_event(event, now=datetime.now(UTC))
    scope = await coordinate.scope_of(ctx.redis, event)
    if change is None or scope is None:
        return Report(event)
    gh = ctx.github.for_installation(scope.installation_id)
    config, _ = await repoconfig.load(ctx.redis, gh, scope.repo)
    view = await coordinate.read_view(ctx, gh, scope, [change], config)
    decision = evaluate([change], view, config, now=datetime.now(UTC))
    accepted = view.accepted.get(change.issue)
    return Report(event, change, scope.key, view.issue(change.issue),
                  accepted.value if accepted else None, decision)


async def live(ctx: Context, event: Event) -> str:
    """Run the delivery through the handlers again; returns what became of it."""
    from reactor.jobs import handle_delivery

    scope = await coordinate.scope_of(ctx.redis, event)
    if scope is not None:
        await locks.unjudge(ctx.redis, scope.key, event.delivery_id)
    outcome = await handle_delivery(ctx, event.delivery_id)
    await ctx.audit_log.record(AuditRecord(
        at=now_iso(), delivery=event.delivery_id, event=event.name, action=event.action or "",
        outcome=Outcome.REPLAYED.value, repo=event.repo.full_name if event.repo else "",
        issue=str(event.issue or ""), actor=_login(event),
        detail=f"replayed by an operator: {outcome.value}"))
    return outcome.value
