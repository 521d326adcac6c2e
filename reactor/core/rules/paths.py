"""Which lifecycle paths a burst's status changes can describe, whatever order they came in.

Webhooks arrive late, twice and out of order, and parallel workers see them in any order, so
the rules never read an order into a burst. They ask instead whether *some* order of its
status changes is a valid lifecycle path (:mod:`reactor.core.transitions`) from the accepted status
to the status read now. Adding ``status:X`` means entering ``X``; removing the label means
leaving it; ``idle`` needs no label at all. Five questions:

- :func:`settled_walk` — the statuses shown after each request, when the payloads told the
  order (:mod:`reactor.core.rules.chain`): the status they reach, and the first move that breaks
  the lifecycle, if any;
- :func:`ordered_walk` — the same over single changes in a guessed order (where a stop at
  ``idle`` cannot be told from half a change, it is taken as half a change);
- :func:`exact_walk` — a walk that enters every status exactly as many times as the burst
  added its label (the burst is the whole story, with no webhook missing);
- :func:`lenient_path` — a simple path whose every status after the first was added at
  least once (some webhooks are missing or were counted before);
- :func:`furthest` — when neither exists, the furthest status a valid prefix reaches, each
  step backed by both halves (the old label removed, the new one added): the status a revert
  restores, so exactly the invalid rest is undone.

``enters`` is a guard: the order rule (R2) forbids entering ``starting``/``running`` while an
earlier stage is unfinished, and a path through a forbidden status is no path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise

from reactor.core.labels import Status
from reactor.core.transitions import TRANSITIONS

Guard = Callable[[Status], bool]
# Past this many status changes of one issue in one burst, the exact walk (whose search grows
# with the counts) is skipped and the lenient checks decide.
EXACT_LIMIT = 24


def always(status: Status) -> bool:
    """The guard that forbids nothing."""
    return True


@dataclass(frozen=True, slots=True)
class Walk:
    """Where an ordered walk got: the last status valid moves reached, and the move that
    broke the lifecycle (its index and the status it tried to reach), if one did."""

    reached: Status
    broke: int | None = None
    attempted: Status | None = None
    possible: bool = True  # False: a label added while shown, or removed while not shown


def ordered_walk(before: Status, moves: Sequence[tuple[bool, Status]], *,
                 enters: Guard = always) -> Walk:
    """Walk ``moves`` — (added?, status) in order — from ``before``.

    A status is reached when it is the only one shown, or when none is shown and no later
    move adds a label: removing the old label before adding the new one is one move (as a
    ``PUT`` of the whole set sends it), not a stop at ``idle``. Two labels at once are a
    two-request change in flight. A label added while shown, or removed while not, proves
    the order wrong: the walk stops as impossible.
    """
    if not _possible(before, moves):
        return Walk(before, possible=False)  # not the order GitHub made them in
    shown: set[Status] = set() if before is Status.IDLE else {before}
    current = before
    for index, (added, status) in enumerate(moves):
        if status is Status.IDLE:
            continue  # idle needs no label; ``status:idle`` only says so
        (shown.add if added else shown.discard)(status)
        if len(shown) == 1:
            reached = next(iter(shown))
        elif not shown and not any(a and s is not Status.IDLE for a, s in moves[index + 1:]):
            reached = Status.IDLE
        else:
            continue
        if reached is current:
            continue
        if reached not in TRANSITIONS[current] or not (reached is Status.IDLE or enters(reached)):
            return Walk(current, index, reached)
        current = reached
    return Walk(current)


def settled_walk(before: Status, ends: Sequence[frozenset[Status]], *,
                 enters: Guard = always) -> Walk:
    """Walk the non-idle statuses shown after each request, in a known order, from ``before``.

    One status shown is that status; two or more are a change in flight. None shown is a
    stop at ``idle`` where ``idle`` may follow (from ``completed``, ``error``, ``timeout``),
    and otherwise the first half of a remove-then-add change (``starting`` → ``running`` in
    two requests)."""
    current = before
    for index, shown in enumerate(ends):
        if len(shown) > 1 or (not shown and Status.IDLE not in TRANSITIONS[current]):
            continue
        reached = next(iter(shown), Status.IDLE)
        if reached is current:
            continue
        if reached not in TRANSITIONS[current] or not (reached is Status.IDLE or enters(reached)):
            return Walk(current, index, reached)
        current = reached
    return Walk(current)


def _possible(before: Status, moves: Sequence[tuple[bool, Status]]) -> bool:
    """No label added while shown, none removed while not shown."""
    shown = set() if before is Status.IDLE else {before}
    for added, status in moves:
        if status is not Status.IDLE:
            if (status in shown) is added:
                return False
            (shown.add if added else shown.discard)(status)
    return True


def exact_walk(before: Status, after: Status, added: Counter[Status], *,
               enters: Guard = always) -> bool:
    """Whether a walk ``before → … → after`` enters each non-idle status exactly
    ``added[status]`` times (``idle`` any number of times)."""
    need = {s: n for s, n in added.items() if s is not Status.IDLE and n > 0}
    if sum(need.values()) > EXACT_LIMIT:
        return False
    order = tuple(sorted(need))
    start = (before, tuple(need[s] for s in order))
    seen = {start}
    frontier = [start]
    while frontier:
        node, left = frontier.pop()
        if node is after and not any(left):
            return True
        for nxt in TRANSITIONS[node]:
            if nxt is not Status.IDLE and not enters(nxt):
                continue
            state: tuple[Status, tuple[int, ...]]
            if nxt is Status.IDLE:
                state = (nxt, left)
            elif nxt in order and left[order.index(nxt)] > 0:
                i = order.index(nxt)
                state = (nxt, (*left[:i], left[i] - 1, *left[i + 1:]))
            else:
                continue
            if state not in seen:
                seen.add(state)
                frontier.append(state)
    return False


def lenient_path(before: Status, after: Status, added: frozenset[Status], *,
                 enters: Guard = always) -> bool:
    """Whether a simple path ``before → … → after`` exists whose statuses between the two
    ends were each added by the burst (``idle`` needs nothing); ``after`` must be enterable."""
    if after is not Status.IDLE and not enters(after):
        return False
    return any(all(s is Status.IDLE or (s in added and enters(s)) for s in path[1:-1])
               for path in simple_paths(before, after))


def one_move_short(before: Status, read: Status, added: Counter[Status], *,
                   enters: Guard = always) -> tuple[Status, ...]:
    """The statuses ``P`` from which the burst is a valid walk ``before → … → P`` followed by
    one last move ``P → read``: where the agent stood before its one invalid move."""
    rest = added.copy()
    if read is not Status.IDLE:
        if rest[read] < 1:
            return ()
        rest[read] -= 1
    return tuple(p for p in Status if p is not read
                 and exact_walk(before, p, rest, enters=enters))


def furthest(before: Status, added: frozenset[Status], removed: frozenset[Status], *,
             enters: Guard = always) -> Status:
    """The end of the longest simple path from ``before`` whose every step ``a → b`` has
    ``a`` removed (unless idle) and ``b`` added (unless idle), and enters nothing forbidden.
    Ties go to the path found first in the table's order, so the answer is deterministic."""
    best: tuple[Status, ...] = (before,)
    for path in _paths_from(before):
        steps = pairwise(path)
        if all(_backed(a, b, added, removed, enters) for a, b in steps) and len(path) > len(best):
            best = path
    return best[-1]


def _backed(a: Status, b: Status, added: frozenset[Status], removed: frozenset[Status],
            enters: Guard) -> bool:
    left = a is Status.IDLE or a in removed
    entered = b is Status.IDLE or (b in added and enters(b))
    return left and entered


@cache
def simple_paths(before: Status, after: Status) -> tuple[tuple[Status, ...], ...]:
    """Every simple path ``before → … → after`` of at least one step, in the table's order."""
    return tuple(p for p in _paths_from(before) if p[-1] is after)


@cache
def _paths_from(before: Status) -> tuple[tuple[Status, ...], ...]:
    """Every simple path of at least one step starting at ``before``."""
    return tuple(_extend((before,)))


def _extend(path: tuple[Status, ...]) -> Iterator[tuple[Status, ...]]:
    for nxt in sorted(TRANSITIONS[path[-1]], key=list(Status).index):
        if nxt not in path:
            longer = (*path, nxt)
            yield longer
            yield from _extend(longer)
