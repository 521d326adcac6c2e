"""What the dashboard makes of one repository's newest audit records: its decisions. Pure.

The records come as :mod:`reactor.shell.records` writes them, newest first. An action's record
reads ``[comp:<name> ]<ActionType>: <reason>``; each delivery of a burst has a record of its
own (``accepted``, ``applied``, ``noted``, ``parked``) whose detail repeats, joined by ``; ``,
the reasons of what was done about it; the reactor's own writes come back as ``skipped``
echoes (R10). :func:`rows` makes "Recent decisions" of them, one row per decision:

- a decision's action records (one turn, one rule) are one row, worded by its comment;
- a delivery's own record is left out where its actions or notes already say it;
- rows in a row that say the same (one per delivery of a two-request move, a revert war)
  are folded into one, with a count;
- each row has a :class:`Kind`, which the page colours: undone changes and escalations
  stand out, routine acceptances recede, and :func:`chosen` keeps the pressing ones on the
  page when routine ones would push them off.

The last hour's figures are :mod:`reactor.ops.dashboard.pulse`'s; closures, reactor labels and stuck
competitions :mod:`reactor.ops.dashboard.standing`'s.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reactor.store.audit import AuditRecord  # the records' shape only: no I/O here

_ACTIONS = ("AddLabel", "RemoveLabel", "Comment", "CreateIssue", "CloseIssue", "ReopenIssue",
            "Dispatch", "Escalate", "LinkBlockedBy", "AddSubIssue")
# A label is at most 50 characters (GitHub's limit), so a competition's name is too.
_ACTION = re.compile(rf"(?:comp:(?P<comp>.{{1,50}}?) )?(?P<action>{'|'.join(_ACTIONS)}): "
                     r"(?P<reason>.*)", re.DOTALL)
_PLAIN = re.compile(r"(?:comp:(?P<comp>\S*) )?(?P<reason>.*)", re.DOTALL)
# The words of reactor/core/comments.py's reasons (and of a note on an issue left to a human).
_ESCALATED = re.compile(r"^needs a human|\bR\d+ (?:escalated:|conflict escalated|needs a human:)"
                        r"|\bR9 hand-off (?:failed|to #\d+ blocked)")
_CLOSED = re.compile(r"\bR\d+ close:|\bR5 duplicate of #\d+")
_SHOWN = frozenset({"applied", "rejected", "replayed", "failed"})
_SKIPPED = "skipped"
APPLIED = "applied"


class Kind(IntEnum):
    """What a decision did, from the most to the least pressing (the page's colours)."""

    ESCALATED = 0  # handed to a human (reactor:needs-human), or a hand-off that cannot go on
    UNDONE = 1  # a change undone: a revert, a closure, a timeout, a refused cycle, a repair
    PROBLEM = 2  # a payload or config the reactor could not use
    HANDOFF = 3  # the next stage started, or a competition done
    ROUTINE = 4  # a move accepted

    @property
    def css(self) -> str:
        return f"k-{self.name.lower()}"


@dataclass(frozen=True, slots=True)
class Parsed:
    """A record's detail: its competition, its action type (None: not an action's record)
    and the reason."""

    comp: str
    action: str | None
    reason: str


def parse(detail: str) -> Parsed:
    found = _ACTION.fullmatch(detail)
    if found is not None:
        return Parsed(found["comp"] or "", found["action"], found["reason"])
    plain = _PLAIN.fullmatch(detail)
    assert plain is not None  # it matches any text
    return Parsed(plain["comp"] or "", None, plain["reason"])


def moment(at: str) -> datetime | None:
    """A record's ``at`` as an aware time; None when it is not one."""
    try:
        found = datetime.fromisoformat(at)
    except ValueError:
        return None
    return found if found.tzinfo is not None else None


@dataclass(frozen=True, slots=True)
class Row:
    """One row of "Recent decisions": ``count`` records folded, from ``first`` to ``at``."""

    at: str
    issue: str
    comp: str
    rule: str
    actor: str
    outcome: str
    what: str
    actions: tuple[str, ...]
    kind: Kind
    tag: str
    count: int = 1
    first: str = ""
    guids: frozenset[str] = field(default=frozenset())

    def same(self, other: Row) -> bool:
        """Whether ``other`` says the same (another delivery of it, a repeat)."""
        return ((self.issue, self.comp, self.rule, self.actor, self.outcome, self.what,
                 self.actions) == (other.issue, other.comp, other.rule, other.actor,
                                   other.outcome, other.what, other.actions))


def classify(rule: str, outcome: str, actions: Iterable[str], reason: str) -> tuple[Kind, str]:
    """A decision's kind and the word the page tags it with."""
    did = set(actions)
    if "Escalate" in did or _ESCALATED.search(reason):
        return Kind.ESCALATED, "escalated"
    if outcome in ("rejected", "failed"):
        return Kind.PROBLEM, outcome
    if outcome == APPLIED and rule:
        if "CloseIssue" in did or _CLOSED.search(reason):
            return Kind.UNDONE, "closed"
        if rule in ("R7", "R8"):
            return Kind.UNDONE, "cycle" if rule == "R7" else "timeout"
        if "repair" in reason:
            return Kind.UNDONE, "repaired"
        if rule != "R9" or "undo:" in reason:
            return Kind.UNDONE, "revert" if "revert" in reason else "undone"
        return Kind.HANDOFF, "hand-off"
    if rule == "R9" and reason.startswith("competition "):
        return Kind.HANDOFF, "done"
    return Kind.ROUTINE, ""


def _worth(record: AuditRecord) -> bool:
    """A record that says something: a rule, an action, a refusal (not an echo, R10)."""
    return record.outcome != _SKIPPED and bool(record.rule or record.outcome in _SHOWN)


def _said_elsewhere(record: AuditRecord, reason: str, acted: set[str],
                    reasons: Mapping[str, set[str]]) -> bool:
    """A delivery's own record that only repeats what its actions or notes say: acted on
    (its actions' records name it), or a join of reasons that records of that second give
    (``reasons``: per second, the reasons given)."""
    if record.outcome == APPLIED and record.delivery in acted:
        return True
    parts = reason.split("; ")
    given = reasons.get(record.at[:19], set())
    return len(parts) > 1 and all(p in given or (p.endswith("…") and any(
        r.startswith(p[:-1]) for r in given)) for p in parts)


def _action_row(records: Sequence[AuditRecord]) -> Row:
    """One decision's action records (one turn, one rule) as a row."""
    parsed = [parse(r.detail) for r in records]
    comment = next((i for i, p in enumerate(parsed) if p.action == "Comment"), None)
    lead = records[comment if comment is not None else 0]
    issue = lead.issue or next((r.issue for r in records if r.issue), "")
    if comment is not None:
        what = parsed[comment].reason
    else:
        what = "; ".join(dict.fromkeys(p.reason for p in parsed))
    actions = tuple(dict.fromkeys(p.action or "" for p in parsed))
    kind, tag = classify(lead.rule, lead.outcome, actions, what)
    repeats = max(sum(1 for q in parsed if q == p) for p in parsed)
    return Row(lead.at, issue, parsed[0].comp, lead.rule, lead.actor, lead.outcome, what,
               actions, kind, tag, repeats, lead.at,
               frozenset().union(*(r.guids() for r in records)))


def rows(records: Sequence[AuditRecord]) -> list[Row]:
    """The decisions ``records`` (one repository's, newest first) tell of, newest first."""
    shown = [(r, parse(r.detail)) for r in records if _worth(r)]
    acted: set[str] = set()
    reasons: dict[str, set[str]] = {}
    for record, p in shown:
        if p.action is not None and record.outcome == APPLIED:
            acted |= record.guids()
        reasons.setdefault(record.at[:19], set()).add(p.reason)
    groups: dict[tuple[str, ...], list[AuditRecord]] = {}
    for record, p in shown:
        if p.action is not None and record.outcome == APPLIED:
            key: tuple[str, ...] = ("act", record.at[:19], record.rule, record.delivery)
        elif _said_elsewhere(record, p.reason, acted, reasons):
            continue
        else:
            key = ("one", record.at[:19], record.issue, record.rule, record.actor,
                   record.outcome, p.reason)
        groups.setdefault(key, []).append(record)
    return fold([_action_row(g) if key[0] == "act" else _single_row(g)
                 for key, g in groups.items()])


def _single_row(records: Sequence[AuditRecord]) -> Row:
    first = records[0]
    p = parse(first.detail)
    kind, tag = classify(first.rule, first.outcome, (), p.reason)
    return Row(first.at, first.issue, p.comp, first.rule, first.actor, first.outcome, p.reason,
               (), kind, tag, len(records), records[-1].at,
               frozenset().union(*(r.guids() for r in records)))


def fold(found: Iterable[Row]) -> list[Row]:
    """Rows in a row that say the same folded into one, with their count and time span."""
    out: list[Row] = []
    for row in found:
        if out and out[-1].same(row):
            last = out[-1]
            out[-1] = replace(last, count=last.count + row.count, first=row.first,
                              guids=last.guids | row.guids)
        else:
            out.append(row)
    return out


def chosen(found: Sequence[Row], *, newest: int, pressing: int) -> tuple[list[Row], int]:
    """The ``newest`` rows, and up to ``pressing`` older undone or escalated ones (they must
    not scroll out behind routine acceptances); with how many rows are left out."""
    kept = list(found[:newest])
    older = [r for r in found[newest:] if r.kind <= Kind.UNDONE][:pressing]
    return kept + older, len(found) - len(kept) - len(older)
