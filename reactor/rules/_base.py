"""What every rule family shares: the situation judged and the findings rules return.

A rule reads a :class:`Situation` (the others' changes of the burst, the fresh view, the
config, ``now``) and returns findings — :class:`Revert` (undo a label change) or
:class:`Closure` (close an issue) — each carrying the :class:`Violation` that explains it.
Turning findings into actions and comments happens once, in :mod:`reactor.rules._assemble`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from reactor.actions import CloseReason, Rule
from reactor.config import RepoConfig
from reactor.labels import LabelKind, ParsedLabel, Status, parse_label
from reactor.view import Change, ChangeKind, CompetitionView, IssueSnapshot

LABEL_CHANGES = (ChangeKind.LABELED, ChangeKind.UNLABELED)
LabelKey = tuple[LabelKind, str]


def label_key(label: ParsedLabel) -> LabelKey:
    """Labels equal on GitHub (same name up to case and spacing) share a key."""
    return label.kind, label.value or label.name.strip().casefold()


@dataclass(frozen=True, slots=True)
class Violation:
    """Why a rule acts: who did what, and what they should do instead.

    ``key`` is the delivery id of the offending change; it makes the comment marker stable
    across retries and replays.
    """

    rule: Rule
    issue: int
    actor: str
    what: str
    instead: str
    key: str


@dataclass(frozen=True, slots=True)
class Revert:
    """Undo a label change: remove the exact names in ``remove``, put back those in ``add``."""

    violation: Violation
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Closure:
    """Close an issue (R3 scope, R5 duplicate, R6 reverse); ``original`` for duplicates."""

    violation: Violation
    state_reason: CloseReason
    original: IssueSnapshot | None = None


@dataclass(frozen=True, slots=True)
class LabelNet:
    """The net effect of a burst on some labels of one issue, judged against the fresh read.

    A label's first change in the burst says whether it was there before (``unlabeled`` first
    = it was); the fresh read says whether it is there now. ``added`` maps keys to the exact
    name on the issue now, ``removed`` to the exact name the change removed.
    """

    added: dict[LabelKey, str] = field(default_factory=dict)
    removed: dict[LabelKey, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Situation:
    """One evaluation's input, with the reactor's own echoes (R10) already set aside."""

    view: CompetitionView
    config: RepoConfig
    now: datetime
    app_login: str
    changes: tuple[Change, ...]  # others' changes, ordered by time
    own: tuple[Change, ...]
    # Memo of identities: rules ask for every issue's stage and comp many times per burst.
    _identities: dict[tuple[int, LabelKind], str | None] = field(
        default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, changes: Sequence[Change], view: CompetitionView, config: RepoConfig, *,
              now: datetime, app_login: str) -> Situation:
        ordered = tuple(sorted(changes, key=lambda c: c.at))
        mine = app_login.casefold()
        own = tuple(c for c in ordered if c.actor.login.casefold() == mine)
        others = tuple(c for c in ordered if c.actor.login.casefold() != mine)
        return cls(view, config, now, app_login, others, own)

    @cached_property
    def _by_issue(self) -> dict[int, tuple[Change, ...]]:
        grouped: dict[int, list[Change]] = {}
        for change in self.changes:
            grouped.setdefault(change.issue, []).append(change)
        return {number: tuple(found) for number, found in grouped.items()}

    def of(self, issue: int) -> tuple[Change, ...]:
        """Others' changes to ``issue``, oldest first."""
        return self._by_issue.get(issue, ())

    def touched(self) -> tuple[int, ...]:
        """Issues named by others' changes and present in the view, in order of number."""
        numbers = {c.issue for c in self.changes}
        return tuple(sorted(n for n in numbers if self.view.issue(n) is not None))

    def is_maintainer(self, change: Change) -> bool:
        return self.config.is_maintainer(change.actor.login)

    def net(self, issue: IssueSnapshot, kinds: Iterable[LabelKind],
            who: Callable[[Change], bool]) -> LabelNet:
        """Net label changes on ``issue`` of the given kinds, by the actors ``who`` accepts."""
        wanted = frozenset(kinds)
        first: dict[LabelKey, Change] = {}
        for change in self.of(issue.number):
            if change.kind in LABEL_CHANGES and change.label and who(change):
                parsed = parse_label(change.label)
                if parsed.kind in wanted:
                    first.setdefault(label_key(parsed), change)
        now = {label_key(item): item.name for item in issue.tags.items}
        net = LabelNet()
        for key, change in first.items():
            was_there = change.kind is ChangeKind.UNLABELED
            if not was_there and key in now:
                net.added[key] = now[key]
            elif was_there and key not in now and change.label:
                net.removed[key] = change.label
        return net

    def identity_before(self, issue: IssueSnapshot, kind: LabelKind) -> frozenset[str]:
        """Values of ``kind`` (``agent``/``comp``) the issue carried before the burst, as far
        as the burst tells: the fresh ones minus those others added, plus those removed.
        Maintainers' changes count as already accepted. A competition the reactor remembers
        for the issue is its competition, whatever the burst shows."""
        remembered = self.view.competitions.get(issue.number) if kind is LabelKind.COMP else None
        if remembered is not None and not any(self.is_maintainer(c) for c in self.of(issue.number)):
            return frozenset({remembered})
        net = self.net(issue, (kind,), lambda c: not self.is_maintainer(c))
        added = {value for (k, value) in net.added if k is kind}
        removed = {value for (k, value) in net.removed if k is kind}
        return frozenset((issue.tags.values(kind) - added) | removed)

    def identity(self, issue: IssueSnapshot, kind: LabelKind) -> str | None:
        """The issue's stage or competition once R3 has undone any change to it: the one it
        had before the burst, else (a new issue being labelled) the first one added."""
        memo = (issue.number, kind)
        if memo not in self._identities:
            self._identities[memo] = self._identity(issue, kind)
        return self._identities[memo]

    def _identity(self, issue: IssueSnapshot, kind: LabelKind) -> str | None:
        before = self.identity_before(issue, kind)
        if len(before) == 1:
            return next(iter(before))
        if before:
            return None
        net = self.net(issue, (kind,), lambda c: not self.is_maintainer(c))
        return next((value for (k, value) in net.added if k is kind), None)

    def stage_of(self, issue: IssueSnapshot) -> str | None:
        return self.identity(issue, LabelKind.AGENT)

    def comp_of(self, issue: IssueSnapshot) -> str | None:
        return self.identity(issue, LabelKind.COMP)

    def in_stage(self, comp: str, stage: str) -> tuple[IssueSnapshot, ...]:
        """Issues of ``comp`` owned by ``stage`` (by identity), open and closed, oldest first."""
        return tuple(i for i in sorted(self.view.issues, key=lambda i: i.number)
                     if self.comp_of(i) == comp and self.stage_of(i) == stage)

    def effective_status(self, issue: IssueSnapshot,
                         decided: Mapping[int, Status]) -> Status | None:
        """The status the order rule trusts: decided now, else remembered, else read."""
        found = decided.get(issue.number) or self.view.accepted.get(issue.number)
        return found or issue.status

    def completed(self, issue: IssueSnapshot, decided: Mapping[int, Status]) -> bool:
        """R2: in ``completed``, or closed as completed."""
        done = self.effective_status(issue, decided) is Status.COMPLETED
        return done or issue.closed_as_completed
