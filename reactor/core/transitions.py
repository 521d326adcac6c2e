"""The agent lifecycle (rule R1) as one table, looked up once per judged change.

::

    idle      → starting, error
    starting  → running, error, timeout
    running   → completed, error, timeout
    completed → idle
    error     → idle, starting
    timeout   → idle, starting

Staying in a state is not a move: ``check_transition(s, s)`` passes for every ``s``, because
re-reading an unchanged status is never a violation. Every other pair not in the table
raises :class:`InvalidTransition` — one typed error carrying both ends, so a caller that
prefers a value to an exception uses :func:`is_allowed` instead.
"""

from __future__ import annotations

from types import MappingProxyType

from reactor.core.errors import ReactorError
from reactor.core.labels import Status

S = Status
TRANSITIONS: MappingProxyType[Status, frozenset[Status]] = MappingProxyType({
    S.IDLE: frozenset({S.STARTING, S.ERROR}),
    S.STARTING: frozenset({S.RUNNING, S.ERROR, S.TIMEOUT}),
    S.RUNNING: frozenset({S.COMPLETED, S.ERROR, S.TIMEOUT}),
    S.COMPLETED: frozenset({S.IDLE}),
    S.ERROR: frozenset({S.IDLE, S.STARTING}),
    S.TIMEOUT: frozenset({S.IDLE, S.STARTING}),
})


class InvalidTransition(ReactorError):
    """A status move the lifecycle table does not allow."""

    def __init__(self, before: Status, after: Status) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[before])) or "nothing"
        super().__init__(f"{before} → {after} is not allowed (from {before}: {allowed})")
        self.before = before
        self.after = after


def is_allowed(before: Status, after: Status) -> bool:
    """True when ``before → after`` is in the table, or is no move at all."""
    return before == after or after in TRANSITIONS[before]


def check_transition(before: Status, after: Status) -> None:
    """Raise :class:`InvalidTransition` unless ``before → after`` is allowed."""
    if not is_allowed(before, after):
        raise InvalidTransition(before, after)


def allowed_from(before: Status) -> tuple[Status, ...]:
    """The states reachable from ``before`` in one move, in declaration order (for comments)."""
    return tuple(s for s in Status if s in TRANSITIONS[before])
