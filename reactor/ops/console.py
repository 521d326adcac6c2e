"""The readable live log of ``reactor dev``: one line per decision, from the audit stream.

A decision is written to the audit log as one record per action (remove a label, put one
back, comment) plus one per delivery it answers; a person wants one line: "house #7 R2
reverted: …". :class:`Console` folds the action records of one decision (same delivery,
issue and rule, in a row) into that line, choosing the most telling reason — the revert
comment's, which names the rule, the actor and what was wrong — and leaves out what only
restates an agent's own move (accepted transitions, parked and echoed deliveries). Pure: it
takes records and returns lines.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import get_args

from reactor.core.actions import Action
from reactor.core.terminal import printable
from reactor.store.audit import AuditRecord, Outcome

# An action's record reads "<comp:C >Kind: reason" (reactor/shell/records.py); Kind is its class.
ACTION = re.compile(rf"^(?:comp:(?P<comp>\S+) )?(?P<kind>"
                    rf"{'|'.join(kind.__name__ for kind in get_args(Action))}): (?P<reason>.*)$",
                    re.DOTALL)
COMP = re.compile(r"^comp:(?P<comp>\S+) (?P<rest>.*)$", re.DOTALL)
REASON_CAP = 160  # characters of a reason shown on the console
FOLD = timedelta(seconds=0.5)  # how long a decision's records are gathered
SAID = 512  # decisions (and notes) remembered as said, so none is said twice
SHOWN_NOTES = frozenset({"R7", "R9"})  # R1's "accepted …" notes restate the agent's move


@dataclass
class _Group:
    key: tuple[str, str, str]
    at: str
    comp: str
    issue: str
    rule: str
    reasons: list[tuple[str, str]] = field(default_factory=list)  # (kind, reason)

    def line(self) -> str:
        chosen = _telling(self.rule, self.reasons)
        return _line(self.at, self.comp, self.issue, chosen)


def _telling(rule: str, reasons: list[tuple[str, str]]) -> str:
    """The reason that says most: a revert's comment, else the first action's, prefixed."""
    comment = next((r for kind, r in reasons if kind == "Comment"), None)
    if comment and "revert" in comment:
        return comment
    first = next((r for kind, r in reasons if kind != "Comment"), comment or "")
    return first if first.startswith(rule) else f"{rule} {first}"


def _line(at: str, comp: str, issue: str, text: str) -> str:
    try:
        clock = datetime.fromisoformat(at).astimezone().strftime("%H:%M:%S")
    except ValueError:
        clock = at[:8]
    number = f"#{issue}" if issue else ""
    if len(text) > REASON_CAP:
        text = text[: REASON_CAP - 1] + "…"
    return printable(f"{clock}  {comp:<8} {'reactor':<14} {number:<4} {text}")


class Console:
    """Feed it audit records in order; it returns the lines to print (see the module doc).

    Workers write concurrently, so one decision's records may be interleaved with others':
    they are gathered by (delivery, issue, rule) and a decision's line is given once its
    first record is :data:`FOLD` older than the newest record (or than the clock, through
    :meth:`due`), or on :meth:`flush`.
    """

    def __init__(self) -> None:
        self._open: dict[tuple[str, str, str], _Group] = {}
        self._said: deque[tuple[str, str, str]] = deque(maxlen=SAID)  # keys given a line
        self._noted: deque[tuple[str, str]] = deque(maxlen=SAID)  # (issue, note) said

    def feed(self, record: AuditRecord) -> list[str]:
        action = ACTION.match(record.detail) if record.outcome == Outcome.APPLIED else None
        if action is None:
            shown = self._single(record)
            return self._due(record.at) + ([shown] if shown else [])
        key = (record.delivery, record.issue, record.rule)
        if key not in self._said:
            group = self._open.setdefault(key, _Group(
                key, record.at, action["comp"] or "", record.issue, record.rule))
            group.reasons.append((action["kind"], action["reason"].strip()))
        return self._due(record.at)

    def flush(self) -> list[str]:
        """Every decision still being gathered, as lines."""
        return self._emit(list(self._open.values()))

    def due(self, now: datetime) -> list[str]:
        """The decisions gathered for :data:`FOLD` by ``now`` (call while records pause)."""
        return self._emit([g for g in self._open.values()
                           if (_moment(g.at) or now) <= now - FOLD])

    def _due(self, at: str) -> list[str]:
        newest = _moment(at)
        return [] if newest is None else self.due(newest)

    def _emit(self, groups: list[_Group]) -> list[str]:
        lines = []
        for group in groups:
            del self._open[group.key]
            self._said.append(group.key)
            kinds = {kind for kind, _ in group.reasons}
            if not (group.rule == "R9" and kinds == {"Comment"}):
                lines.append(group.line())  # (a hand-off's comment: its own line says it)
        return lines

    def _single(self, record: AuditRecord) -> str | None:
        """A line for a record outside any decision's actions, or None to leave it out."""
        found = COMP.match(record.detail)
        comp, detail = (found["comp"], found["rest"]) if found else ("", record.detail)
        if record.outcome == Outcome.NOTED and record.rule in SHOWN_NOTES:
            note = detail.split("; ")[0]  # a delivery's record repeats its decision's notes
            if (record.issue, note) in self._noted:
                return None
            self._noted.append((record.issue, note))
            return _line(record.at, comp, record.issue, f"{record.rule} {note}")
        if record.outcome in (Outcome.FAILED, Outcome.REJECTED):
            what = f"{record.event}.{record.action}" if record.action else record.event
            return _line(record.at, comp, record.issue,
                         f"{record.outcome} {what}: {detail or 'see reactor audit'}")
        return None


def _moment(at: str) -> datetime | None:
    try:
        return datetime.fromisoformat(at)
    except ValueError:
        return None
