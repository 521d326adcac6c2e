"""R5 duplicates: at most one open agent issue per (competition, stage, normalised title).

Normalisation (:func:`normalise_title`): Unicode NFKC; drop a leading ``[<comp>] <stage>:``
prefix (the reactor's own title format, so a hand-made "Train model" matches the reactor's
"[titanic] executor: Train model"); fold case; keep only runs of letters and digits, joined
by single spaces — so punctuation, underscores and spacing never tell two titles apart.

The original of a group is the issue the reactor created, if any (a hand-off target must
survive a human racing it), else the lowest number; every newer member is closed as a
duplicate of it. Only groups the burst touched are judged, and a member opened by a
maintainer, or touched by one in this burst, is left open (maintainers override).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable

from reactor.core.actions import CloseReason, Rule
from reactor.core.rules._base import Closure, Situation, Violation
from reactor.core.view import ChangeKind, IssueSnapshot

_PREFIX = re.compile(r"^\s*\[[^\]]*\]\s*[^\s:]+\s*:")
_WORD = re.compile(r"[^\W_]+")
TRIGGERS = frozenset({ChangeKind.OPENED, ChangeKind.EDITED, ChangeKind.REOPENED,
                      ChangeKind.LABELED, ChangeKind.UNLABELED, ChangeKind.TRANSFERRED})
GroupKey = tuple[str, str, str]


def normalise_title(title: str) -> str:
    """The title as R5 compares it (see the module docstring)."""
    text = _PREFIX.sub("", unicodedata.normalize("NFKC", title), count=1)
    return " ".join(_WORD.findall(text.casefold()))


def group_key(issue: IssueSnapshot, sit: Situation) -> GroupKey | None:
    comp, stage = sit.comp_of(issue), sit.stage_of(issue)
    if comp is None or stage is None:
        return None
    return comp, stage, normalise_title(issue.title)


def duplicate_closures(sit: Situation, closing: Iterable[int], *,
                       every: bool = False) -> tuple[Closure, ...]:
    """Closures for the newer members of every duplicate group the burst touched (with
    ``every``, of every group: ``reactor reconcile``)."""
    skip = frozenset(closing)
    touched = {c.issue for c in sit.changes if c.kind in TRIGGERS}
    groups: dict[GroupKey, list[IssueSnapshot]] = defaultdict(list)
    for issue in sit.view.issues:
        key = group_key(issue, sit)
        if key is not None and issue.is_open and issue.number not in skip:
            groups[key].append(issue)
    found: list[Closure] = []
    for members in groups.values():
        if len(members) > 1 and (every or touched & {m.number for m in members}):
            found.extend(_close_newer(members, sit))
    return tuple(sorted(found, key=lambda c: c.violation.issue))


def _close_newer(members: list[IssueSnapshot], sit: Situation) -> list[Closure]:
    original = min(members, key=lambda m: (not sit.view.created_by_reactor(m.number), m.number))
    return [_closure(m, original, sit) for m in members
            if m is not original and not _kept_by_maintainer(m, sit)]


def _kept_by_maintainer(issue: IssueSnapshot, sit: Situation) -> bool:
    by_maintainer = any(sit.is_maintainer(c) for c in sit.of(issue.number))
    return by_maintainer or sit.config.is_maintainer(issue.author)


def _closure(issue: IssueSnapshot, original: IssueSnapshot, sit: Situation) -> Closure:
    change = next(iter(sit.of(issue.number)), None)
    actor = change.actor.login if change else issue.author
    key = change.delivery_id if change else f"duplicate-of-{original.number}"
    violation = Violation(
        Rule.R5, issue.number, actor,
        f"#{issue.number} duplicates #{original.number}",
        f"Continue on #{original.number}.", key)
    return Closure(violation, CloseReason.DUPLICATE, original=original)
