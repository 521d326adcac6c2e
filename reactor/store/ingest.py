"""Accept webhook deliveries: store, dedupe and enqueue each in Redis, exactly once.

The deliveries that arrive while one round trip is in flight go together in the next, as:

one ``EVALSHA`` of the accept script (:mod:`reactor.store.accept`) for all of them, each
with its raw record (:mod:`.deliveries`). The script stores a record only if its GUID has
none (``SET NX``: the record is the GUID's seen-marker) and enqueues it in the same atomic
call, so a delivery answered 503 leaves nothing behind, and GitHub's redelivery of the same
GUID is accepted exactly once. Storing the record inside the script costs Redis some 10 µs
a delivery more than a ``SET`` beside it (the 12 KB argument copied into Lua), and saves the
two commands that marked and kept such a record apart.

Why not redis-py's pipeline: its ``pack_commands`` and per-round-trip bookkeeping (a pooled
connection, ``asyncio.shield``, a task per batch) were over a third of the web process's CPU.
Here one connection of its own (redis-py's ``Connection``: connecting, handshake and reply
parsing stay redis-py's) takes the RESP of these two commands from :func:`pack`, and one
long-lived task sends whatever accumulated while the previous round trip was in flight. On
``bench/ingest.py`` (web CPU µs per request, medians of interleaved runs) the whole ingest
rework, with web.py's, took 530 → 283; one script call per batch instead of per delivery then
cut Redis's CPU per delivery 105 → 94 µs (its own commandstats).
See https://docs.github.com/en/webhooks/using-webhooks/best-practices-for-using-webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry as RedisRetry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import NoScriptError, ReadOnlyError, ResponseError
from rq.utils import utcformat

from reactor.core.errors import StoreUnavailable
from reactor.core.routing import Scope
from reactor.store import connect, keys, turns
from reactor.store.accept import TURN_FUNC, JobTemplate, accept_script
from reactor.store.deliveries import Delivery
from reactor.store.waiting import Chase, Waiting, WaitingRoom

log = logging.getLogger(__name__)

STORE_TIMEOUT_S = 5.0  # one round trip's longest wait (a hung Redis)
RECONNECT_RETRIES = 2  # fresh connections tried after one broke (see reconnect_retry)

# Riding out a Redis outage (see Ingest): GitHub waits 10 s for an answer, upload included.
ANSWER_WITHIN_S = 8.0  # a delivery waits for Redis this long after it arrived, then gets 503
MIN_ROUND_TRIP_S = 1.0  # a round trip near a deadline may still take this long
CONNECT_TIMEOUT_S = 2.0  # one attempt to reach Redis again
BACKOFF_FIRST_S = 0.05  # between attempts: 0 (a connection a restart broke), then doubling
BACKOFF_CAP_S = 1.0
# The catch-up's period marker (reactor/entrypoints/worker.py's PERIODIC "catchup"): without it the
# scheduler runs the catch-up at once.
CATCH_UP_PERIOD = keys.periodic("catchup")
# Then, while a refused GUID has no record (GitHub's log can show the refused attempt
# late, so the run brought forward can miss it), the catch-up is asked for again this many
# seconds after the first ask; past the last, the minute's run takes over.
CATCH_UP_AGAIN_S = (2.0, 5.0, 9.0, 15.0)
# KEYS[1]: the period marker; KEYS[2..]: the chased GUIDs' records. Deletes the marker
# if any GUID is unseen; returns the unseen ones' positions (1-based, among the GUIDs).
_ASK_AGAIN = b"""local unseen = {}
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then unseen[#unseen + 1] = i - 1 end
end
if #unseen > 0 then redis.call('DEL', KEYS[1]) end
return unseen"""
WAIT_TIMEOUT_MS = 500  # with REDIS_WAIT_REPLICAS: how long the replicas may take to acknowledge
_AWAY = (redis.ConnectionError, redis.TimeoutError, OSError, TimeoutError)

MAX_BATCH = 64  # deliveries per script call: bounds how long one call holds Redis
TOLD_AT_ONCE = MAX_BATCH * 16  # refused GUIDs named in one command to the catch-up

def reconnect_retry() -> RedisRetry:
    """The web process's policy for a Redis connection that broke (a restart, a failover).

    A connection idle across a Redis restart fails on first use ("Connection closed by
    server"); trying again on a fresh connection, after at most 50 then 100 ms, gets the
    delivery its 202 once Redis is back, well within ``STORE_TIMEOUT_S``. Only connection
    errors are retried (a timeout already spent the budget), and so few times that a Redis
    that is down is still answered 503 within a fraction of a second.
    """
    return RedisRetry(
        ExponentialWithJitterBackoff(base=0.025, cap=0.1), RECONNECT_RETRIES,
        supported_errors=(redis.ConnectionError,),
    )


def pack(*args: bytes) -> bytes:
    """``args`` as one RESP command, as redis-py's ``pack_command`` would write it.

    https://redis.io/docs/latest/develop/reference/protocol-spec/#sending-commands-to-a-redis-server
    """
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts += (b"$%d\r\n" % len(arg), arg, b"\r\n")
    return b"".join(parts)  # the one copy of the payload


class Ingest:
    """Accepts deliveries into Redis over one pipelined connection of its own.

    ``async with Ingest(client) as ingest`` runs its sender task and connection for the block
    (the web lifespan); without it, the first :meth:`accept` starts the sender.

    **Riding out an outage.** When Redis does not answer (restarting, failing over, loading
    its data back), the deliveries wait in memory (a :class:`~.waiting.WaitingRoom`: at most
    1,000 of them and 32 MiB of payload; past that, 503 at once), each until its deadline
    (:data:`ANSWER_WITHIN_S` after its request arrived, inside GitHub's 10 s), while the one
    sender task tries to reach Redis again — one attempt at a time, at once and then after
    50 ms, doubling to 1 s — and stores them the moment it answers: a restart of a few
    seconds costs their 202s a few seconds, not a 503. A delivery whose deadline passes is
    refused (503). A round trip cut off keeps its deliveries for the next: one that the lost
    attempt did accept is then found by its record and answered as a duplicate (2xx),
    so each is still accepted once.

    **Catching up what was refused.** GitHub does not retry a 503. The GUIDs refused while
    Redis was away are remembered, and once Redis answers one command deletes the
    catch-up's period marker, so the scheduler runs the catch-up at once rather than within
    the minute, and each GUID's redelivery hold, so the catch-up asks GitHub for it whatever
    it asked before (``reactor/shell/catchup.py``). GitHub's log can show a refused attempt
    a little late, so while a GUID handed over has no record (its redelivery not yet
    accepted) the catch-up is asked for again, a few times over :data:`CATCH_UP_AGAIN_S`.

    **Replicas** (``replicas``, REDIS_WAIT_REPLICAS). Redis replicates asynchronously: a 202
    for a delivery the master had not yet passed on is lost with the master, and GitHub will
    not redeliver it. With ``replicas`` > 0, each batch's round trip ends with ``WAIT``, and
    a delivery no replica acknowledged within :data:`WAIT_TIMEOUT_MS` is answered 503.
    """

    def __init__(self, client: redis.asyncio.Redis, template: JobTemplate | None = None, *,
                 replicas: int = 0, turn_each: bool = False) -> None:
        self._redis = client  # for SCRIPT LOAD
        # UNSAFE_DISABLE=lease (the chaos suite's control): every delivery queues a turn of
        # its own, so nothing stops two workers judging one scope at once.
        self._turn_each = turn_each
        self._replicas = replicas  # replicas that must acknowledge a delivery before its 202
        self._wait = pack(b"WAIT", b"%d" % replicas, b"%d" % WAIT_TIMEOUT_MS)
        self._template = template or JobTemplate()
        self._script = accept_script(self._template)
        self._sha = hashlib.sha1(self._script.encode()).hexdigest().encode()  # noqa: S324
        # Timeouts are per round trip (STORE_TIMEOUT_S), not per socket read; reconnecting
        # is the ride-out's, one attempt at a time (no retries inside redis-py).
        self._conn: AbstractConnection = connect.dedicated(
            client, socket_timeout=None, health_check_interval=0,
            retry=RedisRetry(NoBackoff(), 0),
        )
        self._room: WaitingRoom[Routed] = WaitingRoom()
        self._failures = 0  # attempts to reach Redis that failed since it last answered
        # the refused GUIDs handed over and not yet seen back, as many as one hand-over
        self._chase = Chase(CATCH_UP_AGAIN_S, most=TOLD_AT_ONCE)
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Ingest:
        self._start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        for waiting in self._room.take(len(self._room.pending)):
            self._room.finish(waiting, StoreUnavailable("the web process is stopping"))
        await self._conn.disconnect()

    async def accept(
        self, delivery: Delivery, scope: Scope | None = None, *, deadline: float | None = None
    ) -> bool:
        """Store ``delivery`` and leave it for its scope's turn (queuing the turn when none
        is queued or running), or queue a job of its own when it has no ``scope``; False if
        its GUID was already accepted.

        ``deadline`` (the event loop's clock; default :data:`ANSWER_WITHIN_S` from now) ends
        its wait for a Redis that does not answer. Raises StoreUnavailable when Redis cannot
        take it by then, or too many deliveries wait already (nothing is written) —
        or, with ``replicas``, when the master took it but no replica acknowledged it (the
        delivery is then handled all the same, and a redelivery is a duplicate).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._room.admit(Waiting(
            Routed(delivery, scope), delivery.guid, future, len(delivery.body),
            loop.time() + ANSWER_WITHIN_S if deadline is None else deadline,
        ), redis_away=self._failures > 0)
        self._wake.set()
        if self._sender is None:  # used without ``async with``: the sender runs from now on
            self._start()
        return await future

    def _start(self) -> None:
        self._sender = asyncio.get_running_loop().create_task(
            self._send_forever(), name="reactor-ingest-sender"
        )

    async def _send_forever(self) -> None:
        while True:
            await self._woken()
            self._wake.clear()
            try:
                await self._step()
            except _AWAY as exc:  # Redis does not answer: wait for it, keeping what waits
                await self._conn.disconnect()
                await self._ride_out(exc)
                self._wake.set()

    async def _woken(self) -> None:
        """Until something wakes the sender, or the next ask of the catch-up is due."""
        due = self._chase.next_due()
        if due is None:
            await self._wake.wait()
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(due):
                await self._wake.wait()

    async def _step(self) -> None:
        """Store the next batch; once nothing waits, tell Redis what was refused meanwhile."""
        room = self._room
        if room.pending:
            batch = room.take(MAX_BATCH)
            try:
                async with asyncio.timeout(self._budget(batch)):
                    results = await self._store([w.item for w in batch])
            except (asyncio.CancelledError, *_AWAY):
                room.put_back(batch)
                raise
            except Exception as exc:  # keep the sender alive whatever happens to one batch
                log.exception("storing %d deliveries failed", len(batch))
                await self._conn.disconnect()
                results = [StoreUnavailable(f"Redis cannot take the delivery: {exc}")
                           for _ in batch]
            self._answered()
            for waiting, result in zip(batch, results, strict=True):
                room.finish(waiting, result)
            if room.pending:
                self._wake.set()
                return
        if room.refused:
            await self._catch_up_now()
        elif self._chase.guids and self._chase.is_due(asyncio.get_running_loop().time()):
            await self._catch_up_again()

    async def _ride_out(self, error: BaseException) -> None:
        """Try to reach Redis again with backoff, one attempt at a time, until it answers or
        nothing waits for it; meanwhile each delivery whose deadline passes is refused."""
        loop = asyncio.get_running_loop()
        room = self._room
        if not self._failures:
            log.warning("Redis does not answer (%s): deliveries wait for it, up to %g s "
                        "each", error, ANSWER_WITHIN_S)
        reason = f"Redis did not answer within {ANSWER_WITHIN_S:g} s"
        while True:
            self._failures += 1
            room.expire(loop.time(), reason)
            if not room.pending and not room.refused:
                return  # nothing waits: the next delivery tries at once
            await asyncio.sleep(self._pause(loop.time()))
            room.expire(loop.time(), reason)
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    await self._connect()
            except _AWAY:
                await self._conn.disconnect()
                continue
            return

    def _answered(self) -> None:
        """Redis answered a round trip: the next failure starts the ride-out afresh."""
        if self._failures:
            log.warning("Redis answers again")
            self._failures = 0

    def _pause(self, now: float) -> float:
        """Before the next attempt: none after the first failure (a connection a restart
        broke is simply made again), then backoff with jitter — never past a deadline."""
        if self._failures <= 1:
            return 0.0
        pause = min(BACKOFF_CAP_S, BACKOFF_FIRST_S * 2.0 ** (self._failures - 2))
        pause *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret
        earliest = self._room.earliest()
        return pause if earliest is None else min(pause, max(0.0, earliest - now))

    def _budget(self, batch: list[Waiting[Routed]]) -> float:
        """How long the batch's round trip may take: :data:`STORE_TIMEOUT_S`, cut short near
        the earliest deadline (a round trip cut off is tried again, its deliveries kept)."""
        left = min(w.deadline for w in batch) - asyncio.get_running_loop().time()
        return min(STORE_TIMEOUT_S, max(MIN_ROUND_TRIP_S, left))

    async def _one(self, command: bytes) -> object:
        """One packed command's reply (a replica's refusal raised as a lost connection)."""
        async with asyncio.timeout(STORE_TIMEOUT_S):
            await self._connect()
            await self._conn.send_packed_command([command], check_health=False)
            reply = await self._reply()
        if isinstance(reply, ReadOnlyError):
            raise redis.ConnectionError(f"Redis is a read-only replica now: {reply}")
        return reply

    async def _catch_up_now(self) -> None:
        """Delete the catch-up's period marker and the refused GUIDs' redelivery holds; then
        chase those GUIDs (:meth:`_catch_up_again`)."""
        guids = list(self._room.refused)[:TOLD_AT_ONCE]
        command = pack(b"DEL", CATCH_UP_PERIOD.encode(),
                       *(keys.redelivery_hold(guid).encode() for guid in guids))
        reply = await self._one(command)
        if isinstance(reply, ResponseError):
            log.warning("could not ask for the catch-up now (%s); it runs within the minute",
                        reply)
        else:
            log.warning("%d deliveries were answered 503 while Redis was away: the catch-up "
                        "asks GitHub for them now", len(guids))
        self._answered()
        self._room.told(guids)
        self._chase.start(guids, asyncio.get_running_loop().time())
        if self._room.refused:
            self._wake.set()

    async def _catch_up_again(self) -> None:
        """Ask for the catch-up once more if a GUID handed over has no record yet; the
        GUIDs that have one are chased no more. A failed ask is not repeated: the next is."""
        guids = self._chase.ask()
        command = pack(b"EVAL", _ASK_AGAIN, b"%d" % (len(guids) + 1), CATCH_UP_PERIOD.encode(),
                       *(keys.delivery(guid).encode() for guid in guids))
        reply = await self._one(command)
        if not isinstance(reply, list):
            log.warning("could not ask for the catch-up again (%s)", reply)
            return
        self._answered()
        unseen = {guids[int(position) - 1] for position in reply}
        self._chase.seen([guid for guid in guids if guid not in unseen])
        if unseen:
            log.warning("%d deliveries answered 503 while Redis was away are not redelivered "
                        "yet: the catch-up runs again", len(unseen))

    async def _store(self, batch: list[Routed]) -> list[bool | StoreUnavailable]:
        """Each delivery's outcome: True, False (a duplicate) or a StoreUnavailable."""
        script = self._script_call(batch)
        answers, copies = await self._round_trip(script)
        if isinstance(answers, NoScriptError):  # Redis restarted without its script cache
            await self._redis.script_load(self._script)  # (or this is the first batch)
            answers, copies = await self._round_trip(script)
        if isinstance(answers, ReadOnlyError):  # a replica now, as a failover leaves it
            raise redis.ConnectionError(f"Redis is a read-only replica now: {answers}")
        if not isinstance(answers, list) or len(answers) != len(batch):
            return [StoreUnavailable(f"Redis refused the deliveries: {answers}") for _ in batch]
        if self._replicas and not (isinstance(copies, int) and copies >= self._replicas):
            # Kept by the master alone: a failover now would lose them, and GitHub would not
            # redeliver what it saw answered 202. Answered 503 instead, they are handled all
            # the same (their record stands) — or redelivered, if the master is lost.
            reason = f"{copies} of {self._replicas} replicas acknowledged the delivery"
            return [StoreUnavailable(reason) if a == 1 else _outcome(a) for a in answers]
        return [_outcome(answer) for answer in answers]

    def _script_call(self, batch: list[Routed]) -> bytes:
        """The ``EVALSHA`` of the accept script for ``batch``, packed."""
        t = self._template
        names, args = [t.queue_key, t.queues_key], [utcformat(datetime.now(UTC)).encode()]
        for routed in batch:
            delivery, scope = routed.delivery, routed.scope
            guid, record = delivery.guid, keys.delivery(delivery.guid).encode()
            if scope is None:
                job = guid.encode()
                names += (record, t.job_prefix + job, record, record)
                args += (job, job, t.data(guid), t.description(guid).encode(), b"",
                         delivery.header() + delivery.body)
                continue
            job_id = turns.owner_id(scope.digest, guid)
            argument = scope.dumps()
            job = t.job_prefix + job_id.encode()
            # Each its own turn: the marker tried is the new job's key, which is free (the
            # script then writes the job over it).
            marker = job if self._turn_each else keys.turn(scope.key).encode()
            names += (record, job, keys.pending(scope.key).encode(), marker)
            args += (guid.encode(), job_id.encode(), t.data(argument, TURN_FUNC),
                     t.description(argument, TURN_FUNC).encode(), b"turn",
                     delivery.header() + delivery.body)
        return pack(b"EVALSHA", self._sha, b"%d" % len(names), *names, *args)

    async def _round_trip(self, script: bytes) -> tuple[Any, Any]:
        """Send the script call (and a ``WAIT`` for the replicas, with REDIS_WAIT_REPLICAS)
        in one write; the script's reply and the replicas that acknowledged (None without
        WAIT). The caller bounds its time."""
        wait = [self._wait] if self._replicas else []
        await self._connect()
        await self._conn.send_packed_command([script, *wait], check_health=False)
        answers = await self._reply()
        return answers, (await self._reply() if wait else None)

    async def _connect(self) -> None:
        """Connect, if need be, the way the connection's own class does: redis-py's connecting
        inside ``send_packed_command`` would skip a Sentinel-managed connection's asking where
        the master is (and go to the address it last had, or localhost:6379 at first)."""
        if not self._conn.is_connected:
            await self._conn.connect()  # type: ignore[no-untyped-call]

    async def _reply(self) -> Any:
        try:
            return await self._conn.read_response()
        except ResponseError as exc:  # an error reply: the connection is still in step
            return exc


@dataclass(frozen=True, slots=True)
class Routed:
    """A delivery to store, and the scope whose turn it joins (None: a job of its own)."""

    delivery: Delivery
    scope: Scope | None


def _outcome(reply: Any) -> bool | StoreUnavailable:
    if reply == 1 or reply == 0:
        return bool(reply)
    return StoreUnavailable(f"Redis refused the delivery: {reply}")
