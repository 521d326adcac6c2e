"""Findings into actions: label deltas, closes and comments, with the revert-war cap.

Per issue, the label operations of every revert are merged (each name removed or added at
most once), then one comment per rule follows. An issue already reverted
``config.revert_limit`` times in the window, or already labelled ``reactor:needs-human``, is
not reverted again: the first time it gets :class:`~reactor.actions.Escalate` and one
comment mentioning the maintainers; afterwards only a note.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from reactor import comments
from reactor.actions import (
    Action,
    AddLabel,
    CloseIssue,
    CloseReason,
    Escalate,
    Note,
    RemoveLabel,
    Rule,
)
from reactor.labels import LabelKind, ReactorLabel
from reactor.rules._base import Closure, Revert, Situation


@dataclass
class Assembled:
    actions: list[Action] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    reverted: set[int] = field(default_factory=set)


def _unique(names: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(names))


def revert_actions(reverts: Sequence[Revert], sit: Situation) -> Assembled:
    """Actions for every revert, grouped by issue in order of number."""
    out = Assembled()
    for number in sorted({r.violation.issue for r in reverts}):
        mine = [r for r in reverts if r.violation.issue == number]
        if _capped(number, sit):
            _escalate(out, mine, sit)
        else:
            _revert(out, mine)
    return out


def _capped(number: int, sit: Situation) -> bool:
    issue = sit.view.issue(number)
    flagged = issue is not None and issue.tags.has(LabelKind.REACTOR, "needs-human")
    return flagged or sit.view.reverts.get(number, 0) >= sit.config.revert_limit


def _revert(out: Assembled, reverts: list[Revert]) -> None:
    number = reverts[0].violation.issue
    removes = _unique([name for r in reverts for name in r.remove])
    adds = [name for name in _unique([n for r in reverts for n in r.add]) if name not in removes]
    for name in removes:
        out.actions.append(RemoveLabel(number, name, _rule_of(reverts, name, "remove"),
                                       f"revert: {name} was not allowed"))
    for name in adds:
        out.actions.append(AddLabel(number, name, _rule_of(reverts, name, "add"),
                                    f"revert: restore {name}"))
    for rule in _unique([r.violation.rule for r in reverts]):
        same = [r for r in reverts if r.violation.rule == rule]
        v = same[0].violation
        out.actions.append(comments.revert(
            issue=number, rule=Rule(rule), actor=v.actor, what=v.what, instead=v.instead,
            key=v.key, added=_unique([n for r in same for n in r.add]),
            removed=_unique([n for r in same for n in r.remove])))
    out.reverted.add(number)


def _rule_of(reverts: list[Revert], name: str, op: str) -> Rule:
    found = (r for r in reverts if name in (r.remove if op == "remove" else r.add))
    return next(found).violation.rule


def _escalate(out: Assembled, reverts: list[Revert], sit: Situation) -> None:
    v = reverts[0].violation
    issue = sit.view.issue(v.issue)
    if issue is not None and issue.tags.has(LabelKind.REACTOR, "needs-human"):
        out.notes.append(Note(v.rule, v.issue, f"needs a human; not reverted: {v.what}"))
        return
    maintainers = tuple(sorted(sit.config.maintainers))
    count = sit.view.reverts.get(v.issue, 0)
    out.actions.append(Escalate(v.issue, maintainers, v.rule,
                                f"revert-war cap ({count} reverts): {v.what}"))
    out.actions.append(comments.escalation(
        issue=v.issue, rule=v.rule, actor=v.actor, what=v.what, reverts=count,
        maintainers=maintainers, key=v.key))


def closure_actions(closures: Sequence[Closure]) -> list[Action]:
    """Close, label and comment for each closure."""
    actions: list[Action] = []
    for closure in closures:
        v = closure.violation
        original = closure.original
        if closure.state_reason is CloseReason.DUPLICATE and original is not None:
            actions.append(AddLabel(v.issue, ReactorLabel.DUPLICATE.value, v.rule, v.what))
            actions.append(CloseIssue(v.issue, closure.state_reason, v.rule, v.what,
                                      duplicate_of=original.number,
                                      duplicate_issue_id=original.id))
            actions.append(comments.duplicate(issue=v.issue, original=original.number,
                                              actor=v.actor, key=v.key))
        else:
            actions.append(CloseIssue(v.issue, closure.state_reason, v.rule, v.what))
            actions.append(comments.closed(issue=v.issue, rule=v.rule, actor=v.actor,
                                           what=v.what, instead=v.instead, key=v.key))
    return actions
