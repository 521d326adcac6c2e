"""The audit log: one capped Redis stream of every decision the reactor takes.

Records hold names, numbers and reasons only — never tokens, keys or payload bodies — so the
log can be shown to anyone who may see the repository.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import redis
import redis.asyncio

from reactor.model import Event
from reactor.store import keys


class Outcome(StrEnum):
    """What happened to an event."""

    OBSERVED = "observed"  # routed to a handler that had nothing to change
    ACCEPTED = "accepted"  # evaluated against the rules: nothing broken, nothing to do
    APPLIED = "applied"  # the reactor acted (a revert, a close, a hand-off, ...)
    NOTED = "noted"  # a rule's audit-only remark
    IGNORED = "ignored"  # no handler for this event or action
    SKIPPED = "skipped"  # the reactor's own write echoed back (R10)
    REJECTED = "rejected"  # the payload could not be parsed
    FAILED = "failed"  # a handler raised; the job is retried or lands in the failed registry


@dataclass(frozen=True, slots=True)
class AuditRecord:
    at: str
    delivery: str
    event: str
    outcome: str
    action: str = ""
    installation: str = ""
    repo: str = ""
    issue: str = ""
    label: str = ""
    actor: str = ""
    rule: str = ""
    detail: str = ""
    id: str = field(default="", compare=False)

    @classmethod
    def from_stream(cls, entry_id: bytes, fields: Mapping[bytes, bytes]) -> AuditRecord:
        known = set(cls.__dataclass_fields__)
        values = {k.decode(): v.decode() for k, v in fields.items() if k.decode() in known}
        return cls(**{**values, "id": entry_id.decode()})

    def to_fields(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v and k != "id"}


def now_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).isoformat(timespec="milliseconds")


class AuditLog:
    """Appends records from the async worker."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._redis = client

    async def record(self, record: AuditRecord) -> None:
        await self._redis.xadd(
            keys.AUDIT, record.to_fields(), maxlen=keys.AUDIT_MAXLEN, approximate=True  # type: ignore[arg-type]
        )


def read(
    client: redis.Redis, *, repo: str | None = None, issue: int | None = None,
    comp: str | None = None, limit: int = 50, scan: int = 10_000,
) -> Iterator[AuditRecord]:
    """The newest records first, filtered; reads at most ``scan`` entries back."""
    found = 0
    entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrevrange(  # type: ignore[assignment]
        keys.AUDIT, count=scan
    )
    for entry_id, fields in entries:
        record = AuditRecord.from_stream(entry_id, fields)
        if repo and record.repo != repo:
            continue
        if issue is not None and record.issue != str(issue):
            continue
        if comp and f"comp:{comp}" not in record.detail:
            continue
        yield record
        found += 1
        if found >= limit:
            return


def for_event(
    event: Event, outcome: Outcome, *, now: datetime | None = None, rule: str = "", detail: str = ""
) -> AuditRecord:
    """An audit record about ``event``, carrying its delivery, repository, issue and actor."""
    return AuditRecord(
        at=now_iso(now),
        delivery=event.delivery_id,
        event=event.name,
        action=event.action or "",
        outcome=outcome.value,
        installation=str(event.installation_id or ""),
        repo=event.repo.full_name if event.repo else "",
        issue=str(event.issue or ""),
        label=event.label or "",
        actor=event.sender.login if event.sender else "",
        rule=rule,
        detail=detail,
    )
