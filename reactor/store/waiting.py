"""The deliveries the web process holds while they wait to be stored, and what it refused.

:class:`WaitingRoom` is the ingest's memory of a Redis outage (``reactor/store/ingest.py``):
every delivery that waits for Redis, bounded by :data:`MAX_WAITING` deliveries and
:data:`MAX_WAITING_BYTES` of payload at once (so an outage cannot grow the web process without
bound; what comes past either is answered 503 at once), each with the deadline by which its
request is answered; and the GUIDs it answered 503 because Redis was away, at most
:data:`MAX_REFUSED`, to be handed to the catch-up once Redis answers. :class:`Chase` keeps
the GUIDs handed over until their redelivery is seen accepted, and when to ask for the
catch-up again meanwhile. No I/O here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Generic, TypeVar

from reactor.core.errors import StoreUnavailable

MAX_WAITING = 1000  # deliveries held in memory at once, waiting for Redis …
MAX_WAITING_BYTES = 32 * 1024 * 1024  # … and their payloads' bytes; past either: 503 at once
MAX_REFUSED = 10_000  # GUIDs answered 503 remembered until Redis can be told (oldest dropped)

T = TypeVar("T")


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~1 µs a delivery more
class Waiting(Generic[T]):
    """One delivery (``item``) waiting to be stored: its request waits on ``future`` until
    ``deadline`` (the event loop's clock); ``size`` is its payload's bytes."""

    item: T
    guid: str
    future: asyncio.Future[bool]
    size: int
    deadline: float


class WaitingRoom(Generic[T]):
    """The deliveries waiting to be stored (pending, or in a round trip), in order."""

    def __init__(self) -> None:
        self.pending: list[Waiting[T]] = []  # not yet in a round trip
        self.count = 0  # waiting, pending or in a round trip …
        self.bytes = 0  # … and their payloads' bytes
        self.refused: dict[str, None] = {}  # GUIDs answered 503 for want of Redis, in order

    def admit(self, waiting: Waiting[T], *, redis_away: bool) -> None:
        """Take ``waiting`` in, or raise StoreUnavailable when the room is full (its GUID is
        then remembered as refused, if Redis is away: otherwise the minute's catch-up will do)."""
        if self.count >= MAX_WAITING or self.bytes + waiting.size > MAX_WAITING_BYTES:
            if redis_away:
                self.refuse(waiting.guid)
            raise StoreUnavailable(f"{self.count} deliveries already wait for Redis")
        self.count += 1
        self.bytes += waiting.size
        self.pending.append(waiting)

    def take(self, most: int) -> list[Waiting[T]]:
        batch, self.pending = self.pending[:most], self.pending[most:]
        return batch

    def put_back(self, batch: list[Waiting[T]]) -> None:
        """A batch whose round trip was cut off waits again, ahead of the rest."""
        self.pending[:0] = batch

    def finish(self, waiting: Waiting[T], result: bool | BaseException) -> None:
        """Answer the request (unless it went away) and let the delivery out of the room."""
        self.count -= 1
        self.bytes -= waiting.size
        if not waiting.future.done():
            if isinstance(result, BaseException):
                waiting.future.set_exception(result)
            else:
                waiting.future.set_result(result)

    def expire(self, now: float, reason: str) -> None:
        """Refuse each pending delivery whose deadline passed; forget those whose request
        went away."""
        kept = []
        for waiting in self.pending:
            if waiting.future.done():
                self.finish(waiting, False)
            elif waiting.deadline <= now:
                self.refuse(waiting.guid)
                self.finish(waiting, StoreUnavailable(reason))
            else:
                kept.append(waiting)
        self.pending = kept

    def earliest(self) -> float | None:
        """The earliest deadline of the pending deliveries (None: none is pending)."""
        return min((w.deadline for w in self.pending), default=None)

    def refuse(self, guid: str) -> None:
        self.refused.pop(guid, None)
        self.refused[guid] = None
        if len(self.refused) > MAX_REFUSED:
            del self.refused[next(iter(self.refused))]  # still caught up within the minute

    def told(self, guids: list[str]) -> None:
        """The catch-up was told of ``guids``: forget them."""
        for guid in guids:
            self.refused.pop(guid, None)


class Chase:
    """The GUIDs the catch-up was told of whose redelivery has not been seen accepted yet,
    and the moments (the event loop's clock) to ask for the catch-up again until it is.

    GitHub's delivery log may show a refused attempt a little after it was made: a catch-up
    run brought forward at once can miss it, and without another ask it would wait for the
    minute's run. The asks are few (``after``, seconds after the GUIDs were handed over) and
    stop as soon as every GUID is seen; past the last one the minute's run takes over.
    """

    def __init__(self, after: tuple[float, ...], *, most: int = MAX_REFUSED) -> None:
        self.after = after
        self.most = most  # GUIDs chased at once (one ask looks for each one's record)
        self.guids: dict[str, None] = {}  # handed over, not yet seen accepted, oldest first
        self.due: list[float] = []  # the asks still to make, earliest first

    def start(self, guids: list[str], now: float) -> None:
        """``guids`` were just handed over: chase them (with any still chased) afresh."""
        for guid in guids:
            self.guids[guid] = None
        while len(self.guids) > self.most:
            del self.guids[next(iter(self.guids))]  # left to the minute's run
        self.due = [now + delay for delay in self.after]

    def next_due(self) -> float | None:
        """When to ask again (None: nothing is chased)."""
        return self.due[0] if self.guids and self.due else None

    def is_due(self, now: float) -> bool:
        return bool(self.guids) and bool(self.due) and self.due[0] <= now

    def ask(self) -> list[str]:
        """An ask is made now: the GUIDs it is about. The last ask ends the chase."""
        self.due.pop(0)
        guids = list(self.guids)
        if not self.due:
            self.guids.clear()
        return guids

    def seen(self, guids: list[str]) -> None:
        """``guids`` were accepted (their redelivery came): no need to ask for them again."""
        for guid in guids:
            self.guids.pop(guid, None)
        if not self.guids:
            self.due.clear()
