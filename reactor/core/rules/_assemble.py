"""Findings into actions: label deltas, closes and comments, with the revert-war cap.

Per issue, the label operations of every revert are merged (each name removed or added at
most once), then one comment per rule follows. An issue already reverted
``config.revert_limit`` times in the window, or already labelled ``reactor:needs-human``, is
not reverted again: the first time it gets :class:`~reactor.core.actions.Escalate` and one
comment mentioning the maintainers; afterwards only a note.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from reactor.core import comments
from reactor.core.actions import (
    Action,
    AddLabel,
    CloseIssue,
    CloseReason,
    Escalate,
    Note,
    RemoveLabel,
    Rule,
)
from reactor.core.labels import LabelKind, ReactorLabel, parse_label
from reactor.core.rules._base import Closure, LabelKey, Revert, Situation, label_key

T = TypeVar("T")


@dataclass
class Assembled:
    actions: list[Action] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    reverted: set[int] = field(default_factory=set)


def _unique(items: Sequence[T]) -> list[T]:
    return list(dict.fromkeys(items))


def revert_actions(reverts: Sequence[Revert], sit: Situation, *,
                   fresh: frozenset[int] = frozenset(),
                   forged: frozenset[int] = frozenset()) -> Assembled:
    """Actions for every revert, grouped by issue in order of number.

    ``fresh``: issues a maintainer just handed back, whose revert count starts again;
    ``forged``: issues whose ``reactor:needs-human`` label was added by someone else in this
    burst (it is being reverted, so it does not stop the reactor)."""
    out = Assembled()
    for number in sorted({r.violation.issue for r in reverts}):
        mine = [r for r in reverts if r.violation.issue == number]
        if capped(number, sit, fresh=number in fresh, forged=number in forged):
            _escalate(out, mine, sit, forged=number in forged)
        else:
            _revert(out, mine, sit)
    return out


def _flagged(number: int, sit: Situation, *, forged: bool) -> bool:
    issue = sit.view.issue(number)
    return not forged and issue is not None and issue.tags.has(LabelKind.REACTOR, "needs-human")


def capped(number: int, sit: Situation, *, fresh: bool, forged: bool) -> bool:
    count = 0 if fresh else sit.view.reverts.get(number, 0)
    return _flagged(number, sit, forged=forged) or count >= sit.config.revert_limit


def _intents(reverts: list[Revert], sit: Situation) -> tuple[list[str], list[str]]:
    """The label names to remove and to add, merged over the issue's reverts (a later
    revert's wish for a name wins) and limited to what changes the issue as read."""
    wanted: dict[LabelKey, tuple[str, bool]] = {}
    for revert in reverts:
        for name in revert.remove:
            wanted[label_key(parse_label(name))] = (name, False)
        for name in revert.add:
            wanted[label_key(parse_label(name))] = (name, True)
    issue = sit.view.issue(reverts[0].violation.issue)
    shown: dict[LabelKey, list[str]] = {}
    for item in issue.tags.items if issue is not None else ():
        shown.setdefault(label_key(item), []).append(item.name)
    removes = [n for k, (_, add) in wanted.items() if not add for n in shown.get(k, ())]
    adds = [name for k, (name, add) in wanted.items() if add and k not in shown]
    return removes, adds


def _revert(out: Assembled, reverts: list[Revert], sit: Situation) -> None:
    """Label deltas — what is put back first, so a revert cut off half-way (a worker killed,
    a write refused) leaves the agent's label beside the restored one, which is undone
    again, never a bare issue that reads as the agent's own valid move — then one comment
    per violation whose undoing changed something."""
    number = reverts[0].violation.issue
    removes, adds = _intents(reverts, sit)
    for name in adds:
        out.actions.append(AddLabel(number, name, _rule_of(reverts, name, "add"),
                                    f"revert: restore {name}"))
    for name in removes:
        out.actions.append(RemoveLabel(number, name, _rule_of(reverts, name, "remove"),
                                       f"revert: {name} was not allowed"))
    done = {label_key(parse_label(n)) for n in (*removes, *adds)}
    for rule, key in _unique([(r.violation.rule, r.violation.key) for r in reverts]):
        same = [r for r in reverts if (r.violation.rule, r.violation.key) == (rule, key)]
        added = _unique([n for r in same for n in r.add if label_key(parse_label(n)) in done])
        removed = _unique([n for r in same for n in r.remove
                           if label_key(parse_label(n)) in done])
        if not added and not removed:
            continue  # another revert of the same burst already leaves the label as it was
        v = same[0].violation
        out.actions.append(comments.revert(
            issue=number, rule=Rule(rule), actor=v.actor, what=v.what, instead=v.instead,
            key=v.key, added=added, removed=removed))
    if removes or adds:
        out.reverted.add(number)


def _rule_of(reverts: list[Revert], name: str, op: str) -> Rule:
    """The rule of the (last) revert that asked for ``name`` to be added or removed."""
    key = label_key(parse_label(name))
    found = [r for r in reverts
             if key in {label_key(parse_label(n)) for n in (r.remove if op == "remove" else r.add)}]
    return found[-1].violation.rule


def _escalate(out: Assembled, reverts: list[Revert], sit: Situation, *, forged: bool) -> None:
    v = reverts[0].violation
    if _flagged(v.issue, sit, forged=forged):
        out.notes.append(Note(v.rule, v.issue, f"needs a human; not reverted: {v.what}"))
        return
    maintainers = tuple(sorted(sit.config.maintainers))
    count = sit.view.reverts.get(v.issue, 0)
    out.actions.append(Escalate(v.issue, maintainers, v.rule,
                                f"revert-war cap ({count} reverts): {v.what}"))
    out.actions.append(comments.escalation(
        issue=v.issue, rule=v.rule, actor=v.actor, what=v.what, reverts=count,
        maintainers=maintainers, key=v.key))


def labels_after(actions: Sequence[Action], sit: Situation) -> dict[int, frozenset[str]]:
    """Each reverted issue's labels once ``actions`` are applied (for the hand-off)."""
    after: dict[int, set[str]] = {}
    for action in actions:
        if isinstance(action, AddLabel | RemoveLabel):
            issue = sit.view.issue(action.issue)
            names = after.setdefault(action.issue, set(issue.labels if issue else ()))
            (names.add if isinstance(action, AddLabel) else names.discard)(action.label)
    return {number: frozenset(names) for number, names in after.items()}


def cancel_pairs(actions: Sequence[Action]) -> tuple[Action, ...]:
    """Drop a label the decision adds and then removes again (a revert restores a label the
    hand-off then removes): both go, and GitHub sees only the net change. A label removed and
    then added again is written both times: when a revert takes back an agent's early
    ``status:starting`` and the hand-off then starts the stage, the agent must see the App's
    own ``labeled`` event, which is its signal to start."""
    out = list(actions)
    for i, first in enumerate(actions):
        if not isinstance(first, AddLabel) or first not in out:
            continue
        later = next((a for a in actions[i + 1:] if isinstance(a, RemoveLabel) and a in out
                      and (a.issue, a.label) == (first.issue, first.label)), None)
        if later is not None:
            out.remove(first)
            out.remove(later)
    return tuple(out)


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
