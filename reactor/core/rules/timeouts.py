"""R8 timeouts: ``running`` lasts at most the stage's timeout, ``starting`` at most
``start_timeout`` (SPEC §3; ``timeouts`` and ``start_timeout`` in ``.github/reactor.yml``).

The shell schedules one check per status entry, keyed by (issue, status, entered), at
:func:`deadline`; no polling. When it fires, the shell reads the issue afresh and asks
:func:`check`, which acts only when the issue is still in that same entry: open, showing
exactly that status, not handed to a human, and — when the shell passes what it remembers
now — entered at that same time. A later move (to ``completed``, ``error``, or out and back
into ``running``) makes the scheduled check a no-op, so cancelling it is an optimisation, not
a requirement. The move to ``timeout`` is one the lifecycle allows from both guarded states.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reactor.core import comments
from reactor.core.actions import Action, AddLabel, RemoveLabel, Rule
from reactor.core.config import RepoConfig
from reactor.core.labels import LabelKind, Status
from reactor.core.view import IssueSnapshot

TIMED = frozenset({Status.STARTING, Status.RUNNING})  # the statuses that schedule a check


def limit(status: Status, stage: str, config: RepoConfig) -> timedelta | None:
    """How long ``status`` may last on an issue of ``stage``; None for untimed statuses."""
    if status is Status.RUNNING:
        return config.timeout_for(stage)
    if status is Status.STARTING:
        return config.start_timeout
    return None


def deadline(status: Status, *, stage: str, entered: datetime,
             config: RepoConfig) -> datetime | None:
    """When an issue that entered ``status`` at ``entered`` times out; None: it never does."""
    allowed = limit(status, stage, config)
    return None if allowed is None else entered + allowed


def setting(status: Status, stage: str) -> str:
    """The config key that sets the limit, as the comment names it."""
    return f"timeouts.{stage}" if status is Status.RUNNING else "start_timeout"


def key(status: Status, entered: datetime) -> str:
    """The comment's key: one per status entry, so a retried or repeated check never posts
    twice, while a later entry into the same status gets its own."""
    return f"timeout:{status.value}:{entered.astimezone(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}"


def still_in(issue: IssueSnapshot, status: Status, entered: datetime,
             remembered: datetime | None = None) -> bool:
    """The issue is still in the status entry the check was scheduled for."""
    if remembered is not None and remembered != entered:
        return False
    stopped = issue.tags.has(LabelKind.REACTOR, "needs-human")  # the reactor stays out
    return issue.is_open and issue.status is status and not stopped


def check(issue: IssueSnapshot, *, stage: str, status: Status, entered: datetime,
          now: datetime, config: RepoConfig,
          remembered: datetime | None = None) -> tuple[Action, ...]:
    """R8 when a scheduled check fires: move ``issue`` to ``status:timeout`` with one comment
    if it is still in the entry (``status`` since ``entered``) and ``now`` is at or past the
    deadline; otherwise nothing.

    ``remembered`` is the entry time the reactor remembers for the issue now, if any: a
    different one means the issue left and came back, and this check is stale. A non-empty
    result moves the issue: the shell records ``timeout`` as its accepted status."""
    allowed = limit(status, stage, config)
    if allowed is None or now < entered + allowed:
        return ()
    if not still_in(issue, status, entered, remembered):
        return ()
    reason = f"`{status}` for longer than {comments.span(allowed)}"
    moves: list[Action] = [RemoveLabel(issue.number, item.name, Rule.R8, reason)
                           for item in issue.tags.of(LabelKind.STATUS)]
    moves.append(AddLabel(issue.number, Status.TIMEOUT.label, Rule.R8, reason))
    moves.append(comments.timed_out(
        issue=issue.number, stage=stage, status=status.value, waited=now - entered,
        limit=allowed, setting=setting(status, stage), key=key(status, entered)))
    return tuple(moves)
