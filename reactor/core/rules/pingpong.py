"""R12 ping-pong: two actors undoing each other's change on one issue, again and again.

Each change of a label is compared with the last change of the same label on the same issue,
its *rally*: a change that takes back another actor's change (removes what they added, adds
what they removed) is an undo. Undos between the same two actors in a row count; a third
actor, or an actor taking back their own change, starts the rally afresh. Each single move
may be allowed — the loop is the problem: when the two have undone each other more than
``pingpong_limit`` times within ``pingpong_window``, the issue gets ``reactor:needs-human``
and one comment naming both, and the reactor reverts nothing there any more (the revert-war
cap's label). A maintainer in the rally never makes it a loop; a maintainer handing the issue
back starts its rallies afresh.

The shell plays every label change of a round here (:func:`play`), whether or not a rule
reads the label, and remembers each issue's rallies as text (:mod:`reactor.core.rally`);
the engine turns the rallies over the limit into actions (:func:`loops`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from reactor.core.rally import MAX_LABELS, MAX_UNDOS, Rallies, Rally
from reactor.core.view import Change, ChangeKind

_LABEL_CHANGES = (ChangeKind.LABELED, ChangeKind.UNLABELED)


@dataclass(frozen=True, slots=True)
class Loop:
    """Two actors who undid each other's change of ``label`` on ``issue`` ``undos`` times
    within the window; ``key`` is the delivery of the undo that went over the limit."""

    issue: int
    label: str
    first: str
    second: str
    undos: int
    key: str


def _name(label: str) -> str:
    return label.strip().casefold()  # GitHub's label names are equal up to case


def follow(rallies: Rallies, changes: Sequence[Change]) -> dict[str, Rally]:
    """One issue's rallies once its label ``changes`` (in order) are played on them."""
    out = dict(rallies)
    for change in changes:
        if change.kind not in _LABEL_CHANGES or not change.label:
            continue
        name, actor = _name(change.label), change.actor.login.casefold()
        added = change.kind is ChangeKind.LABELED
        last = out.pop(name, None)
        out[name] = _played(last, actor, added, change.at.timestamp())
    return dict(list(out.items())[-MAX_LABELS:])


def play(rallies: Mapping[int, Rallies], changes: Sequence[Change]) -> dict[int, Rallies]:
    """The rallies of each issue whose labels ``changes`` change, once they are played."""
    numbers = sorted({c.issue for c in changes if c.kind in _LABEL_CHANGES})
    return {n: follow(rallies.get(n, {}), [c for c in changes if c.issue == n])
            for n in numbers}


def _played(last: Rally | None, actor: str, added: bool, at: float) -> Rally:
    if last is None or last.added is added or last.actor == actor:
        # the first change seen, a change the last one did not take back (the label moved
        # in between unseen: the App's own write), or an actor changing its own mind
        return Rally(actor, added)
    if last.other == actor:  # the same two, taking turns
        return Rally(actor, added, last.actor, (*last.undos, at)[-MAX_UNDOS:])
    return Rally(actor, added, last.actor, (at,))


def loops(number: int, before: Rallies, after: Rallies, changes: Sequence[Change], *,
          limit: int, window: timedelta, exempt: frozenset[str]) -> list[Loop]:
    """The rallies of issue ``number`` its ``changes`` took from ``before`` to ``after`` that
    are now over ``limit`` undos within ``window``; a rally with an ``exempt`` actor (a
    maintainer) in it is never a loop."""
    found = []
    for name, rally in after.items():
        if rally == before.get(name) or not rally.other or {rally.actor, rally.other} & exempt:
            continue
        count = rally.recent(window)
        last = [c for c in changes if c.label and _name(c.label) == name]
        if count > limit and last:
            first, second = sorted((rally.actor, rally.other))
            found.append(Loop(number, last[-1].label or name, first, second, count,
                              last[-1].delivery_id))
    return found
