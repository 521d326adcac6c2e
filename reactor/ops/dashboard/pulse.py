"""The last hour of one repository, from its newest audit records: the two pictures an
operator looks at first. Pure.

- :func:`per_minute`: decisions per minute, by :class:`reactor.ops.dashboard.recent.Kind` — one per
  delivery judged (at its first judgement, of the most pressing kind any of its records has), and
  one per action of a timer or reconcile run;
- :func:`handoffs` and :func:`latencies`: each R9 hand-off (its one ``Comment: R9 hand-off
  from #N`` record) and its latency, measured from the arrival at the web process of the
  delivery that said the stage completed (``labeled status:completed`` on issue N, the
  newest such record at or before the hand-off's) to the hand-off's record, which the turn
  writes once its actions are applied: the settle window, the queue and the writes count.

Only the records read count (``reactor.ops.dashboard.boards`` reads the newest ones within the hour,
up to a bound, and the page says so when the bound cut the hour short).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from reactor.ops.dashboard.recent import APPLIED, Kind, classify, moment, parse

if TYPE_CHECKING:
    from reactor.store.audit import AuditRecord  # the records' shape only: no I/O here

HOUR = timedelta(hours=1)
MINUTES = 60  # bars in the per-minute chart: the last hour
TURN_SLACK = timedelta(seconds=2)  # a turn writes its records within this of each other
# the hand-off's comment, or the same comment kept for a refused native link (its record
# stands for the hand-off either way: reactor/core/rules/handoff.py)
_HANDOFF = re.compile(r"R9 hand-off from #(?P<source>\d+)(?:, if GitHub refuses the link)?")
_JUDGED = frozenset({"accepted", "noted", "applied", "rejected", "failed", "replayed"})


def per_minute(records: Iterable[AuditRecord], *, now: datetime) -> list[dict[Kind, int]]:
    """Decisions in each of the last :data:`MINUTES` minutes (oldest first), by kind: one
    per delivery judged (accepted, noted, applied, …) at its first judgement, of the most
    pressing kind any of its records has; one per action of a timer or reconcile run."""
    start = now - HOUR
    units: dict[tuple[str, ...], tuple[datetime, Kind]] = {}
    for record in records:
        when = moment(record.at)
        if record.outcome not in _JUDGED or when is None or not start < when <= now:
            continue
        p = parse(record.detail)
        kind, _tag = classify(record.rule, record.outcome, (p.action or "",), p.reason)
        keys: list[tuple[str, ...]]
        if record.delivery and record.delivery != record.event:
            keys = [("d", g) for g in record.guids()]
        else:
            keys = [("u", record.event, record.issue, record.rule, record.at[:19])]
        for key in keys:
            was = units.get(key)
            units[key] = (min(when, was[0]), min(kind, was[1])) if was else (when, kind)
    minutes: list[dict[Kind, int]] = [{} for _ in range(MINUTES)]
    for when, kind in units.values():
        slot = min(MINUTES - 1, int((when - start).total_seconds() // 60))
        minutes[slot][kind] = minutes[slot].get(kind, 0) + 1
    return minutes


@dataclass(frozen=True, slots=True)
class HandOff:
    """An R9 hand-off from issue ``source``, recorded at ``at``; ``completion`` is the
    delivery of the ``status:completed`` it answered ("" when no record read names it) and
    ``answered`` the deliveries its record names; ``completed_at`` that completion's first
    record's time."""

    at: datetime
    source: int
    comp: str
    completion: str
    answered: frozenset[str]
    completed_at: datetime | None


def _completion(candidates: Sequence[AuditRecord], answered: frozenset[str],
                when: datetime) -> tuple[str, datetime | None]:
    """The delivery of the completion a hand-off answered, and its first record's time: one
    the hand-off's record names, else the newest recorded by the hand-off's turn or before."""
    named = [r for r in candidates if r.delivery in answered] or [
        r for r in candidates if (t := moment(r.at)) is not None and t <= when + TURN_SLACK]
    if not named:
        return "", None
    guid = named[0].delivery
    times = [t for r in candidates if r.delivery == guid and (t := moment(r.at)) is not None]
    return guid, min(times, default=None)


def handoffs(records: Sequence[AuditRecord], *, now: datetime) -> list[HandOff]:
    """The hand-offs recorded in the last hour (their one comment each), newest first."""
    start = now - HOUR
    completions: dict[int, list[AuditRecord]] = {}
    for record in records:
        if record.event == "issues" and record.action == "labeled" and \
                record.label == "status:completed" and record.issue.isdigit():
            completions.setdefault(int(record.issue), []).append(record)
    found: dict[tuple[int, frozenset[str]], HandOff] = {}
    for record in records:
        when = moment(record.at)
        p = parse(record.detail)
        matched = _HANDOFF.fullmatch(p.reason) if p.action == "Comment" else None
        if (matched is None or record.outcome != APPLIED or record.rule != "R9"
                or when is None or not start < when <= now):
            continue
        source, answered = int(matched["source"]), record.guids()
        completion, completed_at = _completion(completions.get(source, []), answered, when)
        found.setdefault((source, answered), HandOff(when, source, p.comp, completion,
                                                     answered, completed_at))
    return list(found.values())


def handoff_deliveries(found: Iterable[HandOff]) -> list[str]:
    """The deliveries whose arrival a latency may be measured from."""
    return list(dict.fromkeys(g for h in found
                              for g in ([h.completion] if h.completion else sorted(h.answered))))


@dataclass(frozen=True, slots=True)
class Latency:
    """A hand-off and the seconds from its completion's arrival to it."""

    handoff: HandOff
    seconds: float


def latencies(found: Iterable[HandOff], arrivals: Mapping[str, float]) -> list[Latency]:
    """Each hand-off's latency: from the arrival at the web process of the completion's
    delivery (else that completion's first record; with no completion read, the earliest
    arrival of the deliveries its record answers) to the hand-off's record. Hand-offs with
    none of these known are left out."""
    out = []
    for h in found:
        if h.completion in arrivals:
            start = arrivals[h.completion]
        elif h.completed_at is not None:
            start = h.completed_at.timestamp()
        elif not h.completion and any(g in arrivals for g in h.answered):
            start = min(arrivals[g] for g in h.answered if g in arrivals)
        else:
            continue
        out.append(Latency(h, max(0.0, h.at.timestamp() - start)))
    return out
