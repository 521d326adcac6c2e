"""Replaying a webhook delivery through the handlers again, for debugging (SPEC §4).

- :func:`dry_run` reads GitHub as the live path would and returns the decision the rules take
  on that delivery's change — each action with its rule and reason, the actor, and the state
  it relied on (the issue as read, the status the reactor had accepted). It is given a
  context whose Redis clients only read (:mod:`reactor.store.readonly`), so it writes nothing
  to GitHub or to Redis: not the reactor's memory, nor the GitHub client's token and ETag
  caches.
- :func:`live` runs the stored delivery through the handlers again, as if it had just
  arrived: its change is judged again in its competition (a delivery is otherwise judged once),
  comments are claimed by the same markers, so a live replay never posts a comment twice, and
  the audit log records the replay.
- :func:`saved_event` reads a payload saved from GitHub's "Recent deliveries" page and
  :func:`verify` checks the ids it names against GitHub, since nothing signs a file: Redis
  keys use its ``repository.id`` while GitHub reads use its owner/name and installation, so a
  file mixing two tenants' ids would write one tenant's memory from the other's issues.
  :func:`store` then keeps it as a delivery of its own, for a live replay (a dry run runs on
  the parsed event and stores nothing).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from reactor.core.actions import Decision
from reactor.core.errors import GitHubError, PayloadError, is_transient
from reactor.core.events import Event, change_from_event, parse_event
from reactor.core.rules import evaluate
from reactor.core.view import Change, IssueSnapshot
from reactor.github import repo_installation
from reactor.shell import decide, repoconfig, turn
from reactor.shell.alone import handle_delivery
from reactor.shell.context import Context
from reactor.store import deliveries, keys, turns
from reactor.store.audit import AuditRecord, Outcome, now_iso

T = TypeVar("T")


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


def saved_event(event: str, body: bytes) -> Event:
    """A saved payload parsed as a delivery of its own (PayloadError as one line)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"the file is not JSON: {exc}", delivery_id="") from None
    return parse_event(event, f"replay-{uuid.uuid4()}", payload, received_at=time.time())


async def verify(ctx: Context, event: Event) -> None:
    """Refuse a saved payload unless GitHub confirms its ids (PayloadError as one line).

    The App's own view decides which installation covers the named repository
    (``GET /repos/{owner}/{repo}/installation``), and that installation's view which id the
    repository has (``GET /repos/{owner}/{repo}``): both must be the file's. Only a
    repository's delivery can be checked so; an ``installation`` delivery's repository list
    cannot, and is refused.
    https://docs.github.com/en/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app
    https://docs.github.com/en/rest/repos/repos#get-a-repository
    """
    repo, installation = event.repo, event.installation_id
    if repo is None or installation is None:
        raise _refused("it names no repository and installation, so its ids cannot be "
                       "checked against GitHub")
    covering = await _unless_refused(repo_installation(ctx.github.app, repo.owner, repo.name),
                                     f"the App is not installed on {repo.full_name}")
    if covering.id != installation:
        raise _refused(f"{repo.full_name} is in installation {covering.id}, not the file's "
                       f"{installation}")
    gh = ctx.github.for_installation(installation)
    found = await _unless_refused(
        gh.getitem("/repos/{owner}/{repo}", {"owner": repo.owner, "repo": repo.name}),
        f"installation {installation} cannot read {repo.full_name}")
    real = found.get("id") if isinstance(found, dict) else None
    if real != repo.id:
        raise _refused(f"{repo.full_name} has id {real}, not the file's {repo.id}")


async def _unless_refused(call: Awaitable[T], why: str) -> T:
    """GitHub's answer, or the refusal ``why`` when GitHub says no (403, 404)."""
    try:
        return await call
    except GitHubError as exc:
        if is_transient(exc) or exc.status not in (403, 404):
            raise
        raise _refused(why) from None


def _refused(why: str) -> PayloadError:
    return PayloadError(f"the file is not replayed: {why}", delivery_id="")


async def store(ctx: Context, event: Event, body: bytes) -> str:
    """Keep a verified saved payload as a delivery of its own; returns its GUID."""
    guid = event.delivery_id
    record = deliveries.Delivery(guid=guid, event=event.name, body=body,
                                 received_at=event.received_at)
    await ctx.redis.set(keys.delivery(guid), record.header() + body, ex=keys.DELIVERY_TTL_S)
    return guid


async def dry_run(ctx: Context, event: Event) -> Report:
    """The decision the rules take on the delivery's change, on GitHub as it is now."""
    change = change_from_event(event, now=datetime.now(UTC))
    scope = await turn.scope_of(ctx, event)
    if change is None or scope is None:
        return Report(event)
    gh = ctx.github.for_installation(scope.installation_id)
    config, _ = await repoconfig.load(ctx.redis, gh, scope.repo)
    view = await decide.read_view(ctx, gh, scope, [change], config)
    decision = evaluate([change], view, config, now=datetime.now(UTC))
    accepted = view.accepted.get(change.issue)
    return Report(event, change, scope.key, view.issue(change.issue),
                  accepted.value if accepted else None, decision)


async def live(ctx: Context, event: Event) -> str:
    """Run the delivery through the handlers again; returns what became of it."""
    scope = await turn.scope_of(ctx, event)
    if scope is not None:
        await turns.unjudge(ctx.redis, scope.key, event.delivery_id)
    outcome = await handle_delivery(ctx, event.delivery_id)
    await ctx.audit_log.record(AuditRecord(
        at=now_iso(), delivery=event.delivery_id, event=event.name, action=event.action or "",
        outcome=Outcome.REPLAYED.value, repo=event.repo.full_name if event.repo else "",
        issue=str(event.issue or ""), actor=_login(event),
        detail=f"replayed by an operator: {outcome.value}"))
    return outcome.value
