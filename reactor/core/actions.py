"""What the rules decide, as data: the actions one applier performs, and the Decision.

Every action names the rule that asked for it and a one-line human reason (for the audit log
and ``reactor replay --dry-run``). The applier writes deltas only — one label added or removed,
never the whole set (SPEC §6) — and checks comment and creation markers before writing, so
applying a decision twice changes nothing more than applying it once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from reactor.core.labels import Status


class Rule(StrEnum):
    """The rule ids of SPEC §3."""

    R1 = "R1"  # lifecycle
    R2 = "R2"  # stage order
    R3 = "R3"  # competition isolation
    R4 = "R4"  # authority
    R5 = "R5"  # duplicates
    R6 = "R6"  # reverse-stage creation
    R7 = "R7"  # dependency cycles
    R8 = "R8"  # timeouts
    R9 = "R9"  # hand-off
    R10 = "R10"  # the reactor's own echoes
    R11 = "R11"  # a runaway actor's budget
    R12 = "R12"  # ping-pong between two actors

    @property
    def name_text(self) -> str:
        """The rule's short name, as comments show it (``R2 stage order``)."""
        return _TITLES[self]


_TITLES = {
    Rule.R1: "lifecycle", Rule.R2: "stage order", Rule.R3: "competition isolation",
    Rule.R4: "authority", Rule.R5: "duplicates", Rule.R6: "reverse stage",
    Rule.R7: "dependency cycles", Rule.R8: "timeouts", Rule.R9: "hand-off", Rule.R10: "self",
    Rule.R11: "runaway", Rule.R12: "ping-pong",
}


class CloseReason(StrEnum):
    """``state_reason`` of a close; https://docs.github.com/en/rest/issues/issues#update-an-issue"""

    COMPLETED = "completed"
    NOT_PLANNED = "not_planned"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class AddLabel:
    """``POST /issues/{issue}/labels`` with this one name."""

    issue: int
    label: str
    rule: Rule
    reason: str


@dataclass(frozen=True, slots=True)
class RemoveLabel:
    """``DELETE /issues/{issue}/labels/{label}``; ``label`` is the exact name on the issue."""

    issue: int
    label: str
    rule: Rule
    reason: str


@dataclass(frozen=True, slots=True)
class Comment:
    """A comment whose body ends with ``marker``; skip it when a comment has that marker.

    ``unless_linked``: a hand-off's comment, posted only when GitHub refused the "blocked by"
    link written just before it (the link shows the chain on both issues then)."""

    issue: int
    body: str
    marker: str
    rule: Rule
    reason: str
    unless_linked: bool = False


@dataclass(frozen=True, slots=True)
class CreateIssue:
    """Create an issue at most once per ``key`` (Redis key + ``creation_marker`` in ``body``).

    ``labels`` already include ``status`` (``status:starting`` on hand-off), so the new issue
    is born in that state; the shell records ``accepted[new number] = status``.
    """

    title: str
    body: str
    labels: tuple[str, ...]
    key: str
    status: Status
    rule: Rule
    reason: str


@dataclass(frozen=True, slots=True)
class CloseIssue:
    """``PATCH /issues/{issue}`` with ``state: closed`` and ``state_reason``.

    For duplicates, ``duplicate_of`` is the original's number (for the comment) and
    ``duplicate_issue_id`` its GitHub id (the API field).
    """

    issue: int
    state_reason: CloseReason
    rule: Rule
    reason: str
    duplicate_of: int | None = None
    duplicate_issue_id: int | None = None


@dataclass(frozen=True, slots=True)
class ReopenIssue:
    """``PATCH /issues/{issue}`` with ``state: open`` (a re-run of a closed stage, R9)."""

    issue: int
    rule: Rule
    reason: str


@dataclass(frozen=True, slots=True)
class Dispatch:
    """``POST /repos/{o}/{r}/dispatches`` (needs ``contents: write``)."""

    event_type: str
    client_payload: tuple[tuple[str, str | int], ...]
    rule: Rule
    reason: str

    def payload(self) -> dict[str, str | int]:
        return dict(self.client_payload)


@dataclass(frozen=True, slots=True)
class Escalate:
    """Stop acting on ``issue``: add ``reactor:needs-human`` (the comment is its own action)."""

    issue: int
    mentions: tuple[str, ...]
    rule: Rule
    reason: str


@dataclass(frozen=True, slots=True)
class LinkBlockedBy:
    """``POST /issues/{issue}/dependencies/blocked_by`` with ``blocking_id``, the id of issue
    ``blocking``: GitHub's own "blocked by" link, so the chain of stages shows in GitHub
    itself (R9). ``key``: the issue is the one this decision creates under that creation
    key, whose number is known once it exists (``issue`` is then 0)."""

    issue: int
    key: str
    blocking: int
    blocking_id: int
    rule: Rule
    reason: str


@dataclass(frozen=True, slots=True)
class AddSubIssue:
    """``POST /issues/{parent}/sub_issues`` with the id of issue ``sub``: the stage shown as a
    sub-issue of its competition's parent issue (R9 with ``chain: [sub_issues]``; R3 puts a
    stage moved out of it back). ``parent_key``/``sub_key``: the issue is one this decision
    creates under that creation key (its number is then 0). ``replace``: take the issue from
    the parent it has now (GitHub's ``replace_parent``)."""

    parent: int
    parent_key: str
    sub: int
    sub_key: str
    sub_id: int
    replace: bool
    rule: Rule
    reason: str


Action = (AddLabel | RemoveLabel | Comment | CreateIssue | CloseIssue | ReopenIssue | Dispatch
          | Escalate | LinkBlockedBy | AddSubIssue)


@dataclass(frozen=True, slots=True)
class Note:
    """An audit-only record: something decided or noticed that needs no write."""

    rule: Rule
    issue: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Saga:
    """One hand-off's steps (R9), applied as a saga: journaled step by step, resumed after a
    crash without repeating a step, compensated in reverse if a step fails for good.

    ``source`` is the completed issue; ``key`` (the completion's delivery) names the journal.
    ``settled`` is the deliveries of the source's changes the completion accounts for (up
    to it, and the removal that finished it): judged once the hand-off is done, by whichever
    worker finishes it, so they are never judged again from ``completed``.
    """

    source: int
    key: str
    steps: tuple[Action, ...]
    settled: tuple[str, ...] = ()


def _no_statuses() -> Mapping[int, Status]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Identity:
    """The competition and stage an agent issue belongs to (R3: set once; a maintainer may
    move it)."""

    comp: str
    stage: str


def _no_identities() -> Mapping[int, Identity]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Decision:
    """The outcome of one evaluation.

    - ``actions``: apply in order (per issue: label removals, additions, close, comment).
    - ``accepted``: merge into the reactor's memory (issue → last accepted status); issues
      absent keep their memory.
    - ``reverted``: issues this decision reverts; the shell counts them for the revert-war cap.
    - ``settle_until``: some issue read ambiguous; apply what is here, then evaluate the same
      changes again at or after this time (SPEC §3 settle window).
    - ``notes``: audit-only records.
    - ``identities``: each agent issue's competition and stage, to remember (R3).
    - ``moved``: issues a maintainer moved to another competition, by the new one; the shell
      judges them there too.
    - ``handed_back``: issues a maintainer handed back (removed ``reactor:needs-human``): the
      revert-war count starts afresh.
    - ``settling``: issues whose judgement waits for the settle window.
    - ``sagas``: the hand-offs among ``actions``, each to be applied as a saga.
    - ``paused_by``: the actor whose overrun this decision pauses the competition for (R11);
      ``resumed``: a maintainer resumed it, and that actor's counts start afresh.
    """

    actions: tuple[Action, ...] = ()
    accepted: Mapping[int, Status] = field(default_factory=_no_statuses)
    reverted: frozenset[int] = frozenset()
    settle_until: datetime | None = None
    notes: tuple[Note, ...] = ()
    identities: Mapping[int, Identity] = field(default_factory=_no_identities)
    moved: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    handed_back: frozenset[int] = frozenset()
    settling: frozenset[int] = frozenset()
    sagas: tuple[Saga, ...] = ()
    paused_by: str | None = None
    resumed: bool = False

    @property
    def is_empty(self) -> bool:
        """True when there is nothing to write (notes and memory aside)."""
        return not self.actions
