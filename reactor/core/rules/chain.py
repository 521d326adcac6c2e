"""The order of a burst's status changes, told by what each webhook's payload showed.

Every ``issues`` webhook carries the issue as GitHub rendered it right after the change:
its labels. A change can come next when applying it to the labels shown at that point gives
what its payload showed; so can two changes whose payloads show the same labels and that
give them together (GitHub may render a ``PUT`` of several changes with its end state, and
removes before it adds). When every order of the burst that fits this way passes through
the same labels, the order is *certain*: the rules then judge the labels shown after each
request in turn, as the agent made them. Otherwise the order is a best guess — requests as
they fit, earliest received first, and where none fits the earliest received change alone —
and the rules fall back on the order-free questions of :mod:`reactor.core.rules.paths`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from reactor.core.labels import Status, parse_label
from reactor.core.view import Change, ChangeKind

Request = tuple[tuple[Change, Status], ...]
SEARCH_LIMIT = 500  # requests tried in all before the order is called uncertain
ORDERS = 4  # fitting orders compared before the order is called certain


@dataclass(frozen=True, slots=True)
class Chain:
    """A burst's status changes grouped into requests, in order."""

    requests: tuple[Request, ...]
    certain: bool

    @property
    def changes(self) -> list[tuple[Change, Status]]:
        return [item for request in self.requests for item in request]

    def ends(self) -> list[frozenset[Status]]:
        """The non-idle statuses shown after each request."""
        return [shown_after(request) for request in self.requests]


def chain(before: Status, known: list[tuple[Change, Status]]) -> Chain:
    """The most likely order of ``known`` (changes with the status each names)."""
    start: frozenset[Status] = frozenset() if before is Status.IDLE else frozenset({before})
    orders = _orders(start, known, limit=ORDERS)
    if orders and len({tuple(map(shown_after, o)) for o in orders}) == 1:
        return Chain(tuple(orders[0]), certain=True)
    left, ordered = list(known), []
    labels = start
    while left:
        request = next(iter(_candidates(left, labels)), (left[0],))
        for item in request:
            left.remove(item)
        ordered.append(request)
        labels = _apply(request, labels) or labels
    return Chain(tuple(ordered), certain=False)


def shown_after(request: Request) -> frozenset[Status]:
    """The non-idle statuses the request's payloads showed."""
    return _statuses(request[0][0].shown or frozenset())


@lru_cache(maxsize=1024)
def _statuses(names: frozenset[str]) -> frozenset[Status]:
    return frozenset(s for n in names
                     if (s := parse_label(n).status) is not None and s is not Status.IDLE)


def _candidates(items: list[tuple[Change, Status]], labels: frozenset[Status]
                ) -> list[Request]:
    """The requests that can come next, earliest received first: single changes, then pairs
    shown alike (a removal before an addition, as GitHub applies a ``PUT``). Of requests
    that differ only in which of two alike changes they take, the first stands for all."""
    found: list[Request] = [(item,) for item in items if _leads((item,), labels) is not None]
    alike: dict[frozenset[str] | None, list[int]] = {}  # changes shown alike, by position
    for index, item in enumerate(items):
        alike.setdefault(item[0].shown, []).append(index)
    pairs = sorted((i, j) for group in alike.values() for n, i in enumerate(group)
                   for j in group[n + 1:])
    for i, j in pairs:
        pair = tuple(sorted((items[i], items[j]), key=lambda x: x[0].kind is ChangeKind.LABELED))
        if _leads(pair, labels) is not None:
            found.append(pair)
    unique: dict[tuple[tuple[bool, Status, frozenset[str] | None], ...], Request] = {}
    for request in found:
        unique.setdefault(tuple((c.kind is ChangeKind.LABELED, s, c.shown) for c, s in request),
                          request)
    return list(unique.values())


def _apply(request: Request, labels: frozenset[Status]) -> frozenset[Status] | None:
    """The labels after ``request``, or None where it cannot apply (a label added while
    shown, or removed while not)."""
    out = set(labels)
    for change, status in request:
        if status is Status.IDLE:
            continue
        added = change.kind is ChangeKind.LABELED
        if (status in out) is added:
            return None
        (out.add if added else out.discard)(status)
    return frozenset(out)


def _leads(request: Request, labels: frozenset[Status]) -> frozenset[Status] | None:
    """The labels after ``request`` when it applies to ``labels`` and ends as its payloads
    show; else None."""
    after = _apply(request, labels)
    return after if after is not None and after == shown_after(request) else None


def _orders(start: frozenset[Status], items: list[tuple[Change, Status]], *, limit: int
            ) -> list[list[Request]]:
    """Up to ``limit`` orders of all ``items`` as requests that each lead from the labels
    the previous one left (a depth-first search of at most ``SEARCH_LIMIT`` steps; none is
    returned when the budget runs out)."""
    found: list[list[Request]] = []
    budget = [SEARCH_LIMIT]

    def search(labels: frozenset[Status], left: list[tuple[Change, Status]],
               path: list[Request]) -> None:
        if len(found) >= limit or budget[0] <= 0:
            return
        if not left:
            found.append(list(path))
            return
        for request in _candidates(left, labels):
            budget[0] -= 1
            after = _leads(request, labels)
            assert after is not None
            search(after, [i for i in left if i not in request], [*path, request])

    search(start, items, [])
    return found if budget[0] > 0 else []

