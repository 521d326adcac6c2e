"""Points where a test stops a worker as if it were killed (SIGKILL) at the worst moment.

The shell calls :func:`reached` at each point; nothing happens unless the process armed the
point first (:func:`arm`), which only a test's worker entry point does
(``python -m tests.crashing_worker``). The product reads no setting for them.
"""

from __future__ import annotations

import os
from enum import StrEnum

KILLED = 137  # the exit status of a process killed by SIGKILL, as a shell reports it


class Point(StrEnum):
    AFTER_CLAIM = "after-claim"  # a comment's marker claimed, the comment not posted
    AFTER_STEP = "after-step"  # a hand-off's step N done, its journal not advanced
    AFTER_HANDOFF = "after-handoff"  # a hand-off finished, the round that ran it not closed


_armed: dict[Point, int | None] = {}


def arm(point: Point, at: int | None = None) -> None:
    """Exit at ``point``; with ``at``, only where it is reached with that value (a step's
    index)."""
    _armed[point] = at


def reached(point: Point, at: int | None = None) -> None:
    if point in _armed and _armed[point] in (None, at):
        os._exit(KILLED)
