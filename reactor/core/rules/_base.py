"""What every rule family shares: the situation judged and the findings rules return.

A rule reads a :class:`Situation` (the others' changes of the burst, the fresh view, the
config, ``now``) and returns findings — :class:`Revert` (undo a label change) or
:class:`Closure` (close an issue) — each carrying the :class:`Violation` that explains it.
Turning findings into actions and comments happens once, in :mod:`reactor.core.rules._assemble`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from reactor.core.actions import CloseReason, Rule
from reactor.core.config import RepoConfig
from reactor.core.labels import LabelKind, ParsedLabel, Status, parse_label
from reactor.core.view import Change, ChangeKind, CompetitionView, IssueSnapshot

LABEL_CHANGES = (ChangeKind.LABELED, ChangeKind.UNLABELED)
GITHUB_CLOCK_STEP = timedelta(seconds=1)  # GitHub's timestamps count whole seconds
# How far later changes of an issue, or its webhooks still on their way, may stretch the
# settle window of its earliest change: a change is judged at most ``settle`` plus this after
# it arrived, whatever keeps arriving on its issue (SPEC §6, promptness).
STRETCH = timedelta(seconds=2)
LabelKey = tuple[LabelKind, str]
_UNREAD = (LabelKind.OTHER, LabelKind.PRIORITY)


def inert(change: Change) -> bool:
    """Whether no rule reads the change: a label the reactor does not read (``bug``,
    ``priority:high``) added or removed. A burst of only such changes asks for nothing, so
    it costs no read of GitHub; nor does such a change hold a settle window open."""
    if change.kind not in LABEL_CHANGES or change.label is None:
        return False
    return parse_label(change.label).kind in _UNREAD


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
    """One evaluation's input: the burst's changes (each delivery once, in the order the web
    process received them), the fresh view, the config and ``now``.

    The reactor's own writes never get here: their echoes are recognised (R10) and set aside
    before a change joins a burst.
    """

    view: CompetitionView
    config: RepoConfig
    now: datetime
    changes: tuple[Change, ...]
    # Memo of identities: rules ask for every issue's stage and comp many times per burst.
    _identities: dict[tuple[int, LabelKind], str | None] = field(
        default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, changes: Sequence[Change], view: CompetitionView, config: RepoConfig, *,
              now: datetime) -> Situation:
        """A delivery seen twice (redelivered, retried, parked and taken again) counts once."""
        unique = {c.delivery_id: c for c in reversed(changes)}
        ordered = tuple(sorted(unique.values(), key=lambda c: (c.at, c.delivery_id)))
        return cls(view, config, now, ordered)

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

    def remembered(self, issue: IssueSnapshot, kind: LabelKind) -> str | None:
        """The competition or stage the reactor remembers for the issue, if any."""
        memory = self.view.competitions if kind is LabelKind.COMP else self.view.stages
        return memory.get(issue.number)

    def rehomed(self, issue: IssueSnapshot, kind: LabelKind) -> bool:
        """A maintainer changed the issue's ``kind`` label in this burst: its identity is what
        the labels say now (a maintainer may move an issue to another competition)."""
        return any(self.is_maintainer(c) and c.kind in LABEL_CHANGES and c.label is not None
                   and parse_label(c.label).kind is kind for c in self.of(issue.number))

    def identity_before(self, issue: IssueSnapshot, kind: LabelKind) -> frozenset[str]:
        """Values of ``kind`` (``agent``/``comp``) the issue carried before the burst: the one
        the reactor remembers, else as far as the burst tells (the fresh ones minus those
        others added, plus those removed). Maintainers' changes count as already accepted."""
        remembered = self.remembered(issue, kind)
        if self.rehomed(issue, kind):
            return issue.tags.values(kind)
        if remembered is not None:
            return frozenset({remembered})
        if self.opened_with(issue, kind) is not None:
            return frozenset()  # opened in this burst: nothing showed on it before
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
        opened_with = self.opened_with(issue, kind) or frozenset()
        if len(opened_with) == 1:
            return next(iter(opened_with))
        net = self.net(issue, (kind,), lambda c: not self.is_maintainer(c))
        return next((value for (k, value) in net.added if k is kind), None)

    def opened_with(self, issue: IssueSnapshot, kind: LabelKind) -> frozenset[str] | None:
        """The values of ``kind`` the issue was opened with, when it was opened in this burst
        and the ``opened`` payload said. A label the fresh read shows beyond them was added
        since — possibly in a change another competition's burst holds."""
        opened = next((c.opened_with for c in self.of(issue.number)
                       if c.kind is ChangeKind.OPENED and c.opened_with is not None), None)
        if opened is None:
            return None
        return frozenset(parsed.value for n in opened
                         if (parsed := parse_label(n)).kind is kind and parsed.value)

    def stage_of(self, issue: IssueSnapshot) -> str | None:
        return self.identity(issue, LabelKind.AGENT)

    def comp_of(self, issue: IssueSnapshot) -> str | None:
        return self.identity(issue, LabelKind.COMP)

    def became_agent(self, issue: IssueSnapshot) -> bool:
        """The issue turned into an agent issue in this burst: opened, or given its first
        ``agent:`` label, with no stage remembered from before."""
        if any(c.kind is ChangeKind.OPENED for c in self.of(issue.number)):
            return True
        if self.remembered(issue, LabelKind.AGENT) is not None:
            return False
        return not self.identity_before(issue, LabelKind.AGENT) and self.stage_of(issue) is not None

    def status_before(self, issue: IssueSnapshot, changes: Sequence[Change], *,
                      became: bool) -> tuple[Status | None, bool]:
        """The status the burst's moves start from, and whether the reactor remembered it.

        The reactor's memory, else ``idle`` for an issue that became an agent issue in this
        burst, else what GitHub showed before the burst: the read minus the burst's
        ``changes`` (GitHub is the source of truth when the reactor remembers nothing).
        None when the burst does not add up to the read (webhooks are still on their way)."""
        remembered = self.view.accepted.get(issue.number)
        if remembered is not None:
            return remembered, True
        if became:
            return Status.IDLE, False
        net: Counter[LabelKey] = Counter()
        statuses: dict[LabelKey, Status | None] = {}
        for change in changes:  # counted, not replayed: the order received may be wrong
            parsed = parse_label(change.label or "")
            net[label_key(parsed)] += 1 if change.kind is ChangeKind.LABELED else -1
            statuses[label_key(parsed)] = parsed.status
        for item in issue.tags.of(LabelKind.STATUS):
            net[label_key(item)] -= 1
            statuses[label_key(item)] = item.status
        earlier = {statuses[k] for k, n in net.items() if n == -1}
        if any(n not in (0, -1) for n in net.values()) or len(earlier) > 1 or None in earlier:
            return None, False
        return next(iter(earlier), Status.IDLE) or Status.IDLE, False

    def settle_until(self, issue: IssueSnapshot, *, in_flight: bool) -> datetime:
        """The end of the settle window of the issue's changes in this burst (SPEC §6,
        promptness): ``config.settle`` after its latest change that a rule reads — a change
        of a label no rule reads never holds it open — so that an agent's two-request move is
        judged whole.

        With ``in_flight`` (the burst does not account for the fresh read: its webhooks are
        still on their way), the window runs from GitHub's ``updated_at`` of the read when
        that is later — it counts to the second, so it is rounded up, and never past now.

        Either way, later changes stretch the window of the burst's earliest change by at
        most :data:`STRETCH`: a change is judged at most ``settle`` + that after it arrived,
        however much else keeps arriving on its issue or competition."""
        read = [c.at for c in self.of(issue.number) if not inert(c)]
        earliest, latest = min(read, default=self.now), max(read, default=self.now)
        if in_flight and issue.updated_at is not None:
            latest = max(latest, min(issue.updated_at + GITHUB_CLOCK_STEP, self.now))
        return min(latest, earliest + STRETCH) + self.config.settle

    def in_stage(self, comp: str, stage: str) -> tuple[IssueSnapshot, ...]:
        """Issues of ``comp`` owned by ``stage`` (by identity), open and closed, oldest first."""
        return tuple(i for i in sorted(self.view.issues, key=lambda i: i.number)
                     if self.comp_of(i) == comp and self.stage_of(i) == stage)

    def effective_status(self, issue: IssueSnapshot,
                         decided: Mapping[int, Status]) -> Status | None:
        """The status the order rule trusts: decided now, else remembered, else read."""
        found = decided.get(issue.number) or self.view.accepted.get(issue.number)
        return found or issue.status

    def status_changes(self, issue: IssueSnapshot) -> tuple[Change, ...]:
        """Others' ``status:`` label changes on ``issue`` in this burst."""
        return tuple(c for c in self.of(issue.number)
                     if c.kind in LABEL_CHANGES and c.label is not None
                     and parse_label(c.label).kind is LabelKind.STATUS)

    def standing_status(self, issue: IssueSnapshot) -> Status | None:
        """The status the reactor stands by for an issue not decided in this evaluation: the
        remembered one, else (for an issue the burst changed) the one before the burst, else
        the read. A status an agent set that is still waiting to be judged is not it."""
        remembered = self.view.accepted.get(issue.number)
        if remembered is not None:
            return remembered
        changes = self.status_changes(issue)
        if changes or self.became_agent(issue):
            before, _ = self.status_before(issue, changes, became=self.became_agent(issue))
            return before or issue.status
        return issue.status

    def completed_before(self, issue: IssueSnapshot) -> bool:
        """R2 for an agent's own move: ``completed`` (or closed as completed) before this
        burst. A completion judged in the same burst as the move may have come after it (the
        webhooks' order proves nothing), so it does not count; the hand-off starts the stage."""
        if issue.closed_as_completed:
            return True
        changes = self.status_changes(issue)
        if not changes:
            return self.effective_status(issue, {}) is Status.COMPLETED
        before, _ = self.status_before(issue, changes, became=False)
        return before is Status.COMPLETED

    def completed(self, issue: IssueSnapshot, decided: Mapping[int, Status]) -> bool:
        """R2: in ``completed``, or closed as completed."""
        done = self.effective_status(issue, decided) is Status.COMPLETED
        return done or issue.closed_as_completed
