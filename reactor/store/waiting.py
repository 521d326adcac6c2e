"""The deliveries the web process holds while they wait to be stored, and what it refused.

:class:`WaitingRoom` is the ingest's memory of a Redis outage (``reactor/store/ingest.py``):
every delivery that waits for Redis, bounded by :data:`MAX_WAITING` deliveries and
:data:`MAX_WAITING_BYTES` of payload at once (so an outage cannot grow the web process without
bound; what comes past either is answered 503 at once), each with the deadline by which its
request is answered; and the GUIDs it answered 503 because Redis was away, at most
:data:`MAX_REFUSED`, to be handed to the catch-up once Redis answers. No I/O here.
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
