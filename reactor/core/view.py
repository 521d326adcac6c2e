"""What the rules decide on: the changes of a burst and a fresh read of one competition.

The shell serialises work per competition, drains the pending webhooks into a tuple of
:class:`Change` (what happened, to which issue, by whom), reads every issue of the competition
afresh into :class:`IssueSnapshot` values, adds the reactor's memory from Redis, and hands the
lot to :func:`reactor.core.rules.evaluate` as a :class:`CompetitionView`. The payload's own copy of
an issue may be stale; only the snapshot is trusted for state (SPEC §6, order-independence).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from types import MappingProxyType

from reactor.core.labels import LabelKind, LabelSet, Status
from reactor.core.markers import creation_key
from reactor.core.rally import Rallies


@dataclass(frozen=True, slots=True)
class Actor:
    """A GitHub account: a user, an organisation, or a bot (``type == "Bot"``)."""

    login: str
    id: int
    type: str


@dataclass(frozen=True, slots=True)
class Repo:
    owner: str
    name: str
    id: int

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class ChangeKind(StrEnum):
    """The ``issues`` webhook actions the rules look at."""

    OPENED = "opened"
    EDITED = "edited"
    LABELED = "labeled"
    UNLABELED = "unlabeled"
    CLOSED = "closed"
    REOPENED = "reopened"
    TRANSFERRED = "transferred"
    DELETED = "deleted"
    # ``issue_dependencies``: the issue (blocked) now waits, or no longer waits, for ``other``.
    BLOCKED_BY_ADDED = "blocked_by_added"
    BLOCKED_BY_REMOVED = "blocked_by_removed"
    # ``sub_issues``: the issue is now, or no longer, a sub-issue of ``other``.
    SUB_ISSUE_ADDED = "sub_issue_added"
    SUB_ISSUE_REMOVED = "sub_issue_removed"


@dataclass(frozen=True, slots=True)
class Change:
    """One webhook's account of a change: which issue (and label), who, when, which delivery.

    ``at`` is when the web process received the webhook: it starts the settle window and
    orders the changes of a burst where nothing better does. ``shown`` is the ``status:``
    labels the webhook's payload showed on the issue (after the change, as GitHub rendered
    it), which tells the order of a burst's changes where the arrival order lies.
    ``opened_with`` is the identity (``agent:``/``comp:``) labels an issue was opened with.
    """

    kind: ChangeKind
    issue: int
    actor: Actor
    delivery_id: str
    at: datetime
    label: str | None = None  # for labeled / unlabeled
    shown: frozenset[str] | None = None
    other: int | None = None  # blocked_by_*: the blocking issue; sub_issue_*: the parent
    opened_with: frozenset[str] | None = None  # for opened: its agent:/comp: labels then


@dataclass(frozen=True, slots=True)
class Overrun:
    """An actor over its R11 budget in this installation: ``count`` of ``kind`` (moves,
    issues, comments) within the window, against ``budget`` (``30 moves per minute``);
    ``issue`` and ``delivery``: where the burst saw the actor last."""

    actor: str
    kind: str
    count: int
    budget: str
    issue: int
    delivery: str


class IssueState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class IssueSnapshot:
    """A fresh read of one issue; label meanings are parsed once and cached.

    https://docs.github.com/en/rest/issues/issues#get-an-issue
    """

    number: int
    id: int
    title: str
    body: str
    state: IssueState
    state_reason: str | None
    labels: frozenset[str]
    author: str
    created_at: datetime
    # GitHub's last change to the issue (to the second); None when not known
    updated_at: datetime | None = None
    # the number of its parent issue (sub-issues); None without one, 0 when the parent is
    # in another repository
    parent: int | None = None

    @cached_property
    def tags(self) -> LabelSet:
        return LabelSet.parse(self.labels)

    @cached_property
    def ruled_labels(self) -> frozenset[str]:
        """The labels a rule reads: every label but those of no kind the reactor knows
        (``bug``, ``help wanted``), which no decision depends on."""
        return frozenset(item.name for item in self.tags.items if item.kind is not LabelKind.OTHER)

    @property
    def stages(self) -> frozenset[str]:
        return self.tags.values(LabelKind.AGENT)

    @property
    def stage(self) -> str | None:
        """The owning stage; None unless exactly one ``agent:`` label (not an agent issue)."""
        return next(iter(self.stages)) if len(self.stages) == 1 else None

    @property
    def comps(self) -> frozenset[str]:
        return self.tags.values(LabelKind.COMP)

    @property
    def comp(self) -> str | None:
        return next(iter(self.comps)) if len(self.comps) == 1 else None

    @property
    def status(self) -> Status | None:
        """The status read now: no label = idle; None when ambiguous or unknown.

        Ambiguous = two or more known ``status:`` labels; unknown = a ``status:`` label that
        names no state. Whether "no label" is itself ambiguous depends on the last accepted
        status, which only the rules know (see :mod:`reactor.core.rules.lifecycle`).
        """
        if self.tags.unknown_statuses or len(self.tags.statuses) > 1:
            return None
        return next(iter(self.tags.statuses), Status.IDLE)

    @property
    def is_open(self) -> bool:
        return self.state is IssueState.OPEN

    @property
    def closed_as_completed(self) -> bool:
        return self.state is IssueState.CLOSED and self.state_reason == "completed"

    @property
    def dismissed(self) -> bool:
        """Closed as not planned or duplicate: out of play, no rule corrects it any more.

        These are the closes the reactor itself makes (R3, R5, R6), so a closed issue is
        never corrected again on the echo of its own closing.
        """
        return self.state is IssueState.CLOSED and self.state_reason in ("not_planned",
                                                                        "duplicate")

    @property
    def creation_key(self) -> str | None:
        """The reactor's idempotency key when the reactor created this issue."""
        return creation_key(self.body)


def _empty() -> MappingProxyType[int, object]:
    return MappingProxyType({})


@dataclass(frozen=True)
class CompetitionView:
    """A competition (or one lone issue) read afresh, plus the reactor's memory from Redis.

    ``accepted`` holds the last status the reactor accepted per issue; for an issue it has no
    memory of, the rules take what GitHub showed before the burst (see
    :meth:`reactor.core.rules._base.Situation.status_before`). ``reverts`` counts the recent
    reverts of each issue (the revert-war cap); ``created`` lists issues the reactor created;
    ``competitions`` and ``stages`` are each issue's competition and stage as the reactor first
    saw them (or as a maintainer last set them), so a ``comp:`` or ``agent:`` swap split over
    two bursts is still undone. ``app_login`` is the App's bot account: a creation marker
    counts only in an issue that account wrote. ``native`` holds, per issue, the issues of
    this repository GitHub lists as blocking it (R7), as its webhooks reported them, for the
    competition's issues and its ``neighbours``.
    """

    repo: str
    comp: str | None
    issues: tuple[IssueSnapshot, ...]
    accepted: Mapping[int, Status] = field(default_factory=_empty)  # type: ignore[arg-type]
    reverts: Mapping[int, int] = field(default_factory=_empty)  # type: ignore[arg-type]
    created: frozenset[int] = frozenset()
    competitions: Mapping[int, str] = field(default_factory=_empty)  # type: ignore[arg-type]
    stages: Mapping[int, str] = field(default_factory=_empty)  # type: ignore[arg-type]
    app_login: str = ""
    native: Mapping[int, frozenset[int]] = field(default_factory=_empty)  # type: ignore[arg-type]
    # The agent issues of other competitions that this one's dependencies reach, read only
    # when R7 judges (a cycle may run through them); the rules act on none of them.
    neighbours: tuple[IssueSnapshot, ...] = ()
    # Each issue's rallies as remembered before the burst (R12: who changed each label last).
    rallies: Mapping[int, Rallies] = field(default_factory=_empty)  # type: ignore[arg-type]
    # The burst's actors over their R11 budget, as the shell counted them with the burst.
    overruns: tuple[Overrun, ...] = ()

    def issue(self, number: int) -> IssueSnapshot | None:
        return next((i for i in self.issues if i.number == number), None)

    def accepted_status(self, number: int) -> Status:
        return self.accepted.get(number, Status.IDLE)

    def created_by_reactor(self, number: int) -> bool:
        """Created by the reactor: recorded so, or carrying the creation marker in a body the
        App's own account wrote (anyone can paste a marker into an issue of theirs)."""
        found = self.issue(number)
        if number in self.created:
            return True
        return found is not None and found.creation_key is not None and bool(self.app_login) \
            and found.author.casefold() == self.app_login.casefold()

    def in_stage(self, comp: str, stage: str) -> tuple[IssueSnapshot, ...]:
        """Issues of ``comp`` owned by ``stage``, open and closed, oldest first."""
        found = (i for i in self.issues if i.comp == comp and i.stage == stage)
        return tuple(sorted(found, key=lambda i: i.number))
