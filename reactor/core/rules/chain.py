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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from reactor.core.labels import Status, parse_label
from reactor.core.view import Change, ChangeKind

Request = tuple[tuple[Change, Status], ...]
Sig = tuple[bool, Status, frozenset[str] | None]  # a change's signature: added, status, shown
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
    that differ only in which of two alike changes they take, the earliest stands for all."""
    sigs = [_sig(item) for item in items]
    return [tuple(items[p] for p in request)
            for request in _next_requests(sigs, range(len(items)), labels)]


def _sig(item: tuple[Change, Status]) -> Sig:
    return item[0].kind is ChangeKind.LABELED, item[1], item[0].shown


def _next_requests(sigs: Sequence[Sig], left: Iterable[int], labels: frozenset[Status]
                   ) -> list[tuple[int, ...]]:
    """:func:`_candidates` by position: whether a request leads depends only on its changes'
    signatures, so each signature is tried once, with its earliest change standing for it
    (a burst's cost grows with its distinct signatures, not with its changes squared)."""
    at: dict[Sig, list[int]] = {}  # positions by signature, earliest first
    for position in left:
        at.setdefault(sigs[position], []).append(position)
    found: list[tuple[int, ...]] = [(ps[0],) for sig, ps in at.items()
                                    if _leads_sigs((sig,), labels) is not None]
    alike: dict[frozenset[str] | None, list[Sig]] = {}
    for sig in at:
        alike.setdefault(sig[2], []).append(sig)
    pairs: list[tuple[int, int, tuple[int, int], tuple[Sig, Sig]]] = []
    for group in alike.values():
        for n, a in enumerate(group):
            if len(at[a]) > 1:
                first, second = at[a][:2]
                pairs.append((first, second, (first, second), (a, a)))
            for b in group[n + 1:]:
                if a[0] != b[0]:  # a removal and an addition: the removal comes first
                    gone, added = (b, a) if a[0] else (a, b)
                    i, j = sorted((at[a][0], at[b][0]))
                    pairs.append((i, j, (at[gone][0], at[added][0]), (gone, added)))
                    continue
                for x, y in ((a, b), (b, a)):  # alike kinds: in the order received
                    i = at[x][0]
                    later = next((q for q in at[y] if q > i), None)
                    if later is not None:
                        pairs.append((i, later, (i, later), (x, y)))
    pairs.sort()
    found += [request for _, _, request, key in pairs if _leads_sigs(key, labels) is not None]
    return found


@lru_cache(maxsize=4096)
def _leads_sigs(sigs: tuple[Sig, ...], labels: frozenset[Status]) -> frozenset[Status] | None:
    """The labels after a request (given by its changes' signatures) when it applies to
    ``labels`` and ends as its payloads show; else None."""
    after = _apply_sigs(sigs, labels)
    return after if after is not None and after == _statuses(sigs[0][2] or frozenset()) else None


def _apply(request: Request, labels: frozenset[Status]) -> frozenset[Status] | None:
    """The labels after ``request``, or None where it cannot apply."""
    return _apply_sigs(tuple(_sig(item) for item in request), labels)


def _apply_sigs(sigs: tuple[Sig, ...], labels: frozenset[Status]) -> frozenset[Status] | None:
    """The labels after the changes ``sigs``, or None where they cannot apply (a label added
    while shown, or removed while not)."""
    out = set(labels)
    for added, status, _ in sigs:
        if status is Status.IDLE:
            continue
        if (status in out) is added:
            return None
        (out.add if added else out.discard)(status)
    return frozenset(out)


def _orders(start: frozenset[Status], items: list[tuple[Change, Status]], *, limit: int
            ) -> list[list[Request]]:
    """Up to ``limit`` orders of all ``items`` as requests that each lead from the labels
    the previous one left (a depth-first search of at most ``SEARCH_LIMIT`` steps; none is
    returned when the budget runs out). Taking a request takes every change equal to one
    of its own."""
    found: list[list[tuple[int, ...]]] = []
    budget = [SEARCH_LIMIT]
    sigs = [_sig(item) for item in items]
    first: dict[tuple[Change, Status], int] = {}
    same = [first.setdefault(item, n) for n, item in enumerate(items)]  # equal items alike

    def search(labels: frozenset[Status], left: list[int], path: list[tuple[int, ...]]
               ) -> None:
        if len(found) >= limit or budget[0] <= 0:
            return
        if not left:
            found.append(list(path))
            return
        for request in _next_requests(sigs, left, labels):
            budget[0] -= 1
            after = _leads_sigs(tuple(sigs[p] for p in request), labels)
            assert after is not None
            taken = {same[p] for p in request}
            search(after, [p for p in left if same[p] not in taken], [*path, request])

    search(start, list(range(len(items))), [])
    if budget[0] <= 0:
        return []
    return [[tuple(items[p] for p in request) for request in order] for order in found]
