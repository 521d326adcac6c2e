"""The audit log: one capped Redis stream of every decision the reactor takes.

Records hold names, numbers and reasons only — never tokens, keys or payload bodies — so the
log can be shown to anyone who may see the repository. The stream is capped by count
(``MAXLEN ~``), by age (:data:`MAX_AGE`, trimmed every hour: :func:`trim`) and every field by
size (:data:`FIELD_CAPS`), so no tenant's text can make it grow without bound, and no record
— of an uninstalled tenant either — outlives :data:`MAX_AGE` by more than an hour or so.

Readers select records newest first (:func:`select`) or tail the stream live
(:func:`follow`); a :class:`Query` says which records match. A time bound is applied through
the stream ids, whose first part is Redis's millisecond clock at ``XADD``, so only the
entries in range are read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import redis
import redis.asyncio

from reactor.core.events import Event
from reactor.store import keys

# Characters kept per field when a record is written; the rest is replaced by ELLIPSIS.
DETAIL_CAP = 1000
DELIVERIES_CAP = 4000  # about a hundred GUIDs: a burst's deliveries, whole GUIDs only
FIELD_CAP = 200
FIELD_CAPS = {"detail": DETAIL_CAP, "deliveries": DELIVERIES_CAP}
ELLIPSIS = "…"

PAGE = 1000  # entries per XREVRANGE or XREAD call
MAX_AGE = timedelta(days=30)  # records older than this are trimmed (as long as issue memory)
_ASCII_SPACE = " \t\n\v\f\r"  # what Lua's %s strips, so both sides read a list alike
_MAX_SEQ = 2**64 - 1


class Outcome(StrEnum):
    """What happened to an event."""

    OBSERVED = "observed"  # routed to a handler that had nothing to change
    ACCEPTED = "accepted"  # evaluated against the rules: nothing broken, nothing to do
    APPLIED = "applied"  # the reactor acted (a revert, a close, a hand-off, ...)
    NOTED = "noted"  # a rule's audit-only remark
    IGNORED = "ignored"  # no handler for this event or action
    SKIPPED = "skipped"  # the reactor's own write echoed back (R10)
    PARKED = "parked"  # not decidable yet: judged again when the settle window ends
    REPLAYED = "replayed"  # an operator ran the delivery through the handlers again
    REJECTED = "rejected"  # the payload could not be parsed
    FAILED = "failed"  # a handler raised; the job is retried or lands in the failed registry


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One decision; ``deliveries`` lists, comma-separated, further GUIDs it accounts for."""

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
    deliveries: str = ""
    id: str = field(default="", compare=False)

    @classmethod
    def from_stream(cls, entry_id: bytes, fields: Mapping[bytes, bytes]) -> AuditRecord:
        known = set(cls.__dataclass_fields__)
        values = {k.decode(): v.decode(errors="replace") for k, v in fields.items()
                  if k.decode() in known}
        return cls(**{**values, "id": entry_id.decode()})

    def to_fields(self) -> dict[str, str]:
        """The stream entry's fields: the non-empty ones, each cut to its cap."""
        return {k: cap(k, v) for k, v in asdict(self).items() if v and k != "id"}

    def guids(self) -> frozenset[str]:
        """Every delivery this record accounts for: ``delivery`` and each of ``deliveries``."""
        listed = (guid.strip(_ASCII_SPACE) for guid in self.deliveries.split(","))
        return frozenset(g for g in (self.delivery, *listed) if g and g != ELLIPSIS)


def cap(name: str, value: str) -> str:
    """``value`` cut to the field's cap, ending in ``…`` when cut (whole GUIDs in a list)."""
    limit = FIELD_CAPS.get(name, FIELD_CAP)
    if len(value) <= limit:
        return value
    if name == "deliveries":
        return _cap_list(value, limit)
    return value[: limit - len(ELLIPSIS)] + ELLIPSIS


def _cap_list(value: str, limit: int) -> str:
    """A comma-separated list cut to whole items, ``…`` as its last item."""
    kept: list[str] = []
    room = limit - len(ELLIPSIS)
    for item in value.split(","):
        room -= len(item) + 1
        if room < 0:
            break
        kept.append(item)
    return ",".join([*kept, ELLIPSIS])


def now_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class Query:
    """Which records to show; every given filter must match (``None``: any)."""

    repo: str | None = None
    issue: int | None = None
    comp: str | None = None
    delivery: str | None = None
    rule: str | None = None
    since: datetime | None = None  # aware; compared with the stream id's time

    @property
    def min_id(self) -> str:
        """The lowest stream id in range: ``-`` or the ``since`` millisecond."""
        return "-" if self.since is None else f"{_millis(self.since)}-0"

    def matches(self, record: AuditRecord) -> bool:
        return (
            (not self.repo or record.repo == self.repo)
            and (self.issue is None or record.issue == str(self.issue))
            and (not self.comp or _names_comp(record.detail, self.comp))
            and (not self.delivery or self.delivery in record.guids())
            and (not self.rule or _ascii_lower(record.rule) == _ascii_lower(self.rule))
            and (self.since is None or _id_millis(record.id) >= _millis(self.since))
        )

    def prefilter(self) -> tuple[str, str, str, str, str]:
        """The arguments of the server-side prefilter: repo, issue, delivery, rule, comp."""
        return (
            self.repo or "", "" if self.issue is None else str(self.issue), self.delivery or "",
            _ascii_lower(self.rule or ""), f"comp:{self.comp}" if self.comp else "",
        )


def _ascii_lower(text: str) -> str:
    """Lower-case A–Z only, as Lua's ``string.lower`` does: rule ids are ASCII."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _millis(moment: datetime) -> int:
    return max(0, int(moment.timestamp() * 1000))


def _id_millis(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0]) if entry_id else 0


def _names_comp(detail: str, comp: str) -> bool:
    """Whether ``detail`` names ``comp:<comp>`` as a whole word (``comp:ti`` ≠ ``comp:titanic``)."""
    return re.search(rf"(?<!\S)comp:{re.escape(comp)}(?!\S)", detail) is not None


def _before(entry_id: str) -> str:
    """The stream id just below ``entry_id`` (for paging without Redis 6.2's ``(`` bounds)."""
    millis, seq = (int(part) for part in entry_id.split("-", 1))
    return f"{millis}-{seq - 1}" if seq else f"{millis - 1}-{_MAX_SEQ}"


def newest_id(client: redis.Redis) -> str:
    """The id of the newest record, or ``0-0`` for an empty log: where a tail starts."""
    entries: list[tuple[bytes, object]] = client.xrevrange(keys.AUDIT, count=1)  # type: ignore[assignment]
    return entries[0][0].decode() if entries else "0-0"


# Pages through the stream inside Redis and returns only the entries that may match, so a
# lookup over the whole capped stream moves kilobytes, not the stream, to the client. It is a
# prefilter (plain substring for ``comp``): :meth:`Query.matches` has the last word.
# ARGV: max id, min id, count, repo, issue, delivery, rule (ASCII lower case), "comp:<name>".
_SCAN_LUA = """
local entries = redis.call('XREVRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', ARGV[3])
local repo, issue, delivery, rule, comp = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local function lists(csv)
  for item in string.gmatch(csv or '', '[^,]+') do
    if string.match(item, '^%s*(.-)%s*$') == delivery then return true end
  end
  return false
end
local found = {}
for _, entry in ipairs(entries) do
  local f = {}
  for i = 1, #entry[2], 2 do f[entry[2][i]] = entry[2][i + 1] end
  if (repo == '' or f.repo == repo) and (issue == '' or f.issue == issue)
     and (rule == '' or string.lower(f.rule or '') == rule)
     and (comp == '' or string.find(f.detail or '', comp, 1, true))
     and (delivery == '' or f.delivery == delivery or lists(f.deliveries)) then
    found[#found + 1] = entry
  end
end
local last = ''
if #entries > 0 then last = entries[#entries][1] end
return {#entries, last, found}
"""


def _entries_back(
    client: redis.Redis, query: Query, *, upto: str, scan: int | None
) -> Iterator[AuditRecord]:
    """Prefiltered records from ``upto`` down to the query's bound, newest first, in pages.

    ``scan`` bounds the entries Redis looks at (``None``: all in range); each call looks at
    one page, so Redis is never held for long.
    """
    script = client.register_script(_SCAN_LUA)
    looked = 0
    while scan is None or looked < scan:
        count = PAGE if scan is None else min(PAGE, scan - looked)
        scanned, last, found = script(
            keys=[keys.AUDIT], args=[upto, query.min_id, count, *query.prefilter()]
        )
        for entry_id, flat in found:
            yield AuditRecord.from_stream(entry_id, dict(zip(flat[::2], flat[1::2], strict=True)))
        looked += int(scanned)
        if int(scanned) < count:
            return
        upto = _before(last.decode())


def select(
    client: redis.Redis, query: Query, *, limit: int | None = 50, scan: int | None = None,
    upto: str = "+",
) -> Iterator[AuditRecord]:
    """The records matching ``query``, newest first: at most ``limit``, none above ``upto``.

    ``scan`` bounds how many entries are read back (``None``: the whole stream in range,
    which ``MAXLEN`` keeps finite).
    """
    found = 0
    if limit is not None and limit <= 0:
        return
    for record in _entries_back(client, query, upto=upto, scan=scan):
        if query.matches(record):
            yield record
            found += 1
            if limit is not None and found >= limit:
                return


def read(
    client: redis.Redis, *, repo: str | None = None, issue: int | None = None,
    comp: str | None = None, delivery: str | None = None, rule: str | None = None,
    since: datetime | None = None, limit: int | None = 50, scan: int | None = None,
) -> Iterator[AuditRecord]:
    """The newest records first, filtered (:func:`select` with a :class:`Query`)."""
    query = Query(repo=repo, issue=issue, comp=comp, delivery=delivery, rule=rule, since=since)
    return select(client, query, limit=limit, scan=scan)


def follow(
    client: redis.Redis, query: Query, *, after: str, block_ms: int = 5000
) -> Iterator[AuditRecord]:
    """Records matching ``query`` as they are written after ``after``, oldest first; endless.

    Each ``XREAD`` blocks at most ``block_ms``, so a Redis that went away is noticed (as a
    connection error) rather than waited on forever.
    """
    last = after
    while True:
        records, last = read_after(client, last, block_ms=block_ms)
        yield from (record for record in records if query.matches(record))


def read_after(
    client: redis.Redis, after: str, *, block_ms: int
) -> tuple[list[AuditRecord], str]:
    """The records written after ``after`` (waiting at most ``block_ms`` for one), oldest
    first, and the id to read after next time."""
    reply: list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] = client.xread(  # type: ignore[assignment]
        {keys.AUDIT: after}, count=PAGE, block=block_ms
    )
    entries = [entry for _stream, found in reply or () for entry in found]
    last = entries[-1][0].decode() if entries else after
    return [AuditRecord.from_stream(entry_id, fields) for entry_id, fields in entries], last


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


def rejected_payload(guid: str, event: str, payload: object, why: str) -> AuditRecord:
    """A rejection of a delivery whose payload could not be read whole: it names the
    action and installation when they at least can be read."""
    data = payload if isinstance(payload, dict) else {}
    action = data.get("action")
    installation = data.get("installation")
    ident = installation.get("id") if isinstance(installation, dict) else None
    return AuditRecord(
        at=now_iso(), delivery=guid, event=event,
        action=action if isinstance(action, str) else "",
        outcome=Outcome.REJECTED.value,
        installation=str(ident) if isinstance(ident, int) and not isinstance(ident, bool) else "",
        detail=why,
    )


async def newest(client: redis.asyncio.Redis, *, at_least: int, since: datetime, at_most: int,
                 page: int = PAGE) -> list[AuditRecord]:
    """The newest records, newest first: ``at_least`` whatever their age, then on back to
    ``since``, ``at_most`` in all (``XREVRANGE`` in pages of ``page``: each page's reply is
    parsed on the event loop in one go)."""
    since_id = f"{max(0, int(since.timestamp() * 1000))}-0"
    found: list[AuditRecord] = []
    upto = "+"
    while len(found) < at_most:
        any_age = len(found) < at_least
        low = "-" if any_age else since_id
        count = min(page, (at_least if any_age else at_most) - len(found))
        entries: list[tuple[bytes, dict[bytes, bytes]]] = await client.xrevrange(  # type: ignore[assignment]
            keys.AUDIT, upto, low, count=count)
        found += [AuditRecord.from_stream(entry_id, fields) for entry_id, fields in entries]
        if len(entries) < count:
            break
        upto = _before(entries[-1][0].decode())
    return found


async def trim(client: redis.asyncio.Redis, *, now: datetime) -> int:
    """Drop the records older than :data:`MAX_AGE`; how many went. Exact (``XTRIM MINID``,
    not ``~``, which drops whole stream nodes only: on a quiet deployment a node may span
    months)."""
    return int(await client.xtrim(keys.AUDIT, minid=f"{_millis(now - MAX_AGE)}-0",
                                  approximate=False))
