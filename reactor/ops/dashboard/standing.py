"""Where one repository's issues and competitions stand, beyond the status the reactor
remembers: which issues are closed (and how), which carry ``reactor:needs-human``,
``reactor:blocked`` or ``reactor:paused``, and which competitions are stuck, and why. Pure.

An issue's memory holds the status the reactor accepted, not whether GitHub shows it closed
or what ``reactor:`` labels it has: those come from the newest audit records read
(:func:`closures`, :func:`reactor_labels`; what happened before them is not known here).
A competition is stuck (:func:`stuck`) when

- an issue of it is labelled ``reactor:needs-human`` (the reactor stopped acting on it) or
  ``reactor:blocked`` (it closes a dependency cycle, R7) or ``reactor:paused`` (R11);
- an issue is ``running`` or ``starting`` past its stage's timeout (R8 should have moved it),
  or waits in ``timeout`` or ``error`` for its agent or a maintainer to restart it;
- a stage completed :data:`HANDOFF_GRACE` ago or more and the next stage never started;
- nothing changed for :data:`QUIET` (no status entered, no record) while it is not done
  (its last stage has not completed) and no stage is at work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING

from reactor.core.comments import span
from reactor.core.config import RepoConfig
from reactor.core.labels import ReactorLabel
from reactor.ops.dashboard.recent import APPLIED, moment, parse

if TYPE_CHECKING:
    from reactor.store.audit import AuditRecord
    from reactor.store.memory import Recalled

NEEDS_HUMAN = ReactorLabel.NEEDS_HUMAN.value
BLOCKED = ReactorLabel.BLOCKED.value
PAUSED = ReactorLabel.PAUSED.value
QUIET = timedelta(minutes=30)
HANDOFF_GRACE = timedelta(minutes=1)
_AT_WORK = ("starting", "running")
_BEGUN = frozenset({"starting", "running", "completed", "error", "timeout"})
COMPLETED, NOT_PLANNED, DUPLICATE = "completed", "not_planned", "duplicate"  # state_reason


def _close_how(record: AuditRecord, reason: str, reasons: Mapping[str, str]) -> str:
    """How the reactor's ``CloseIssue`` closed (by its rule) or a ``closed`` delivery did
    (its payload's ``state_reason``, in ``reasons``); "" when not known."""
    if record.event == "issues" and record.action == "closed":
        return reasons.get(record.delivery, "")
    if record.rule == "R5":
        return DUPLICATE
    if record.rule == "R9" and "new issue" not in reason:
        return COMPLETED  # the undo of a re-run's reopen
    return NOT_PLANNED


def closures(records: Iterable[AuditRecord], reasons: Mapping[str, str]) -> dict[int, str]:
    """Per issue the newest records show closed, how ("" when no record tells): a
    ``closed``/``reopened`` delivery, or the reactor's ``CloseIssue``/``ReopenIssue``."""
    closed: dict[int, str] = {}
    settled: set[int] = set()  # open again, or closed with a known how
    for record in records:
        if not record.issue.isdigit() or record.outcome == "rejected":
            continue
        number, p = int(record.issue), parse(record.detail)
        if number in settled:
            continue
        if (record.event == "issues" and record.action == "reopened") or (
                p.action == "ReopenIssue" and record.outcome == APPLIED):
            settled.add(number)
        elif (record.event == "issues" and record.action == "closed") or (
                p.action == "CloseIssue" and record.outcome == APPLIED):
            closed[number] = closed.get(number) or _close_how(record, p.reason, reasons)
            if closed[number]:
                settled.add(number)
    return closed


def reactor_labels(records: Iterable[AuditRecord]) -> dict[int, frozenset[str]]:
    """Per issue, the ``reactor:needs-human``, ``reactor:blocked`` and ``reactor:paused``
    labels it carries as
    the newest records tell: a ``labeled``/``unlabeled`` delivery of it (the reactor's own
    writes are echoed so), or an ``Escalate`` action."""
    seen: dict[tuple[int, str], bool] = {}
    for record in records:
        if not record.issue.isdigit() or record.outcome == "rejected":
            continue
        number = int(record.issue)
        if record.event == "issues" and record.label in (NEEDS_HUMAN, BLOCKED, PAUSED) and \
                record.action in ("labeled", "unlabeled"):
            seen.setdefault((number, record.label), record.action == "labeled")
        elif record.outcome == APPLIED and parse(record.detail).action == "Escalate":
            seen.setdefault((number, NEEDS_HUMAN), True)
    found: dict[int, set[str]] = {}
    for (number, label), present in seen.items():
        if present:
            found.setdefault(number, set()).add(label)
    return {n: frozenset(labels) for n, labels in found.items()}


def close_deliveries(records: Iterable[AuditRecord]) -> list[str]:
    """The ``closed`` deliveries whose payload says how the issue was closed."""
    return list(dict.fromkeys(r.delivery for r in records if r.event == "issues"
                              and r.action == "closed" and r.issue.isdigit() and r.delivery))


def last_seen(records: Iterable[AuditRecord]) -> dict[str, datetime]:
    """Per competition, the time of its newest record."""
    seen: dict[str, datetime] = {}
    for record in records:
        comp, when = parse(record.detail).comp, moment(record.at)
        if comp and when is not None and (comp not in seen or when > seen[comp]):
            seen[comp] = when
    return seen


@dataclass(frozen=True)
class Known:
    """What the records read say of a repository's issues and competitions: the issues
    closed (how), their ``reactor:`` labels, and each competition's newest record time."""

    closed: Mapping[int, str]
    flags: Mapping[int, frozenset[str]]
    seen: Mapping[str, datetime]


def known(records: Sequence[AuditRecord], reasons: Mapping[str, str]) -> Known:
    """:class:`Known` from ``records`` (newest first); ``reasons``: the ``state_reason`` of
    the ``closed`` deliveries that could be read."""
    return Known(closures(records, reasons), reactor_labels(records), last_seen(records))


# -- stuck competitions -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a competition is stuck; ``rank`` 0 is the most pressing (a human is needed)."""

    rank: int
    issue: int | None
    text: str


@dataclass(frozen=True, slots=True)
class Stuck:
    comp: str
    reasons: tuple[Reason, ...]

    @property
    def rank(self) -> int:
        return min(r.rank for r in self.reasons)


def ago(span: timedelta) -> str:
    """A duration as an operator reads it: ``45s``, ``12m``, ``5h 3m``, ``3d 4h``."""
    seconds = max(0, int(span.total_seconds()))
    if seconds < 90:
        return f"{seconds}s"
    if seconds < 90 * 60:
        return f"{seconds // 60}m"
    hours, minutes = divmod(seconds // 60, 60)
    if hours < 48:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


@dataclass(frozen=True)
class _Competition:
    """One competition's issues as :func:`stuck` reads them."""

    issues: Mapping[int, Recalled]
    closed: Mapping[int, str]
    now: datetime

    def counts(self, number: int) -> bool:
        """Still part of the work: open, or closed as completed (R2 counts it completed)."""
        how = self.closed.get(number)
        return how is None or how == COMPLETED or (
            how == "" and self.issues[number].status == COMPLETED)

    def since(self, number: int) -> datetime | None:
        entered = self.issues[number].since
        return moment(entered) if entered else None

    def completed(self, number: int) -> bool:
        return self.counts(number) and (self.issues[number].status == COMPLETED
                                        or self.closed.get(number) == COMPLETED)


def _issue_reasons(c: _Competition, number: int, flags: frozenset[str],
                   config: RepoConfig) -> list[Reason]:
    recalled = c.issues[number]
    name = f"#{number} ({recalled.stage})"
    found = []
    if NEEDS_HUMAN in flags:
        found.append(Reason(0, number, f"{name} is labelled {NEEDS_HUMAN}: the reactor stopped "
                                       "acting on it until a maintainer removes the label"))
    if BLOCKED in flags:
        found.append(Reason(1, number, f"{name} is labelled {BLOCKED}: it closes a dependency "
                                       "cycle; remove one of its dependencies"))
    if PAUSED in flags:
        found.append(Reason(0, number, f"{name} is labelled {PAUSED}: an agent went over its "
                                       "budget (R11); a maintainer removes the label to resume"))
    since, status = c.since(number), recalled.status or ""
    if status in _AT_WORK and since is not None:
        limit = config.timeout_for(recalled.stage or "") if status == "running" \
            else config.start_timeout
        if c.now - since > limit:
            found.append(Reason(1, number, f"{name} {status} for {ago(c.now - since)}, past "
                                           f"its {span(limit)} timeout"))
    elif status in ("timeout", "error"):
        spent = f" for {ago(c.now - since)}" if since is not None else ""
        found.append(Reason(2, number, f"{name} in {status}{spent}: its agent or a maintainer "
                                       "restarts it with status:starting"))
    return found


def _handoff_gap(c: _Competition, stages: Mapping[str, Sequence[int]],
                 order: Sequence[str]) -> Reason | None:
    """The first stage that completed :data:`HANDOFF_GRACE` ago or more while the next
    stage never started."""
    for stage, following in pairwise(order):
        done = [n for n in stages.get(stage, ()) if c.completed(n)]
        if not done:
            return None
        nexts = [n for n in stages.get(following, ()) if c.counts(n)]
        if any(c.issues[n].status in _BEGUN or c.completed(n) for n in nexts):
            continue
        newest = max(done, key=lambda n: c.since(n) or c.now)
        since = c.since(newest)
        if since is not None and c.now - since < HANDOFF_GRACE:
            return None
        when = f" {ago(c.now - since)} ago" if since is not None else ""
        waiting = (f"{following} issue #{min(nexts)} is still idle" if nexts
                   else f"no {following} issue started")
        return Reason(2, newest, f"#{newest} ({stage}) completed{when}, but {waiting}")
    return None


def _quiet(c: _Competition, numbers: Sequence[int], order: Sequence[str],
           seen: datetime | None) -> Reason | None:
    """Nothing changed for :data:`QUIET` while the competition is not done and no stage is
    at work."""
    last_stage = [n for n in numbers if c.issues[n].stage == order[-1]] if order else []
    if any(c.completed(n) for n in last_stage) or any(
            c.counts(n) and c.issues[n].status in _AT_WORK for n in numbers):
        return None
    moments = [t for t in (*(c.since(n) for n in numbers), seen) if t is not None]
    if not moments or c.now - max(moments) < QUIET:
        return None
    pending = next((s for s in order if not any(
        c.issues[n].stage == s and c.completed(n) for n in numbers)), None)
    why = f"; stage {pending} has not completed" if pending else ""
    return Reason(3, None, f"no change for {ago(c.now - max(moments))}{why}")


def stuck(issues: Mapping[int, Recalled], groups: Mapping[str, Mapping[str, Sequence[int]]], *,
          config: RepoConfig, known: Known, now: datetime) -> list[Stuck]:
    """The stuck competitions of ``groups`` (competition → stage → issues), the most
    pressing first, each with its reasons (see the module docstring)."""
    found = []
    closed, flags, seen = known.closed, known.flags, known.seen
    c = _Competition(issues, closed, now)
    for comp, stages in groups.items():
        numbers = sorted(n for ns in stages.values() for n in ns)
        reasons = [r for n in numbers if n not in closed
                   for r in _issue_reasons(c, n, flags.get(n, frozenset()), config)]
        gap = _handoff_gap(c, stages, config.stages)
        reasons += [gap] if gap is not None else []
        quiet = None if reasons else _quiet(c, numbers, config.stages, seen.get(comp))
        reasons += [quiet] if quiet is not None else []
        if reasons:
            found.append(Stuck(comp, tuple(sorted(reasons, key=lambda r: r.rank))))
    return sorted(found, key=lambda s: (s.rank, s.comp))
