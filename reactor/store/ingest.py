"""Accept webhook deliveries: store, dedupe and enqueue each in Redis, exactly once.

The deliveries that arrive while one round trip is in flight go together in the next, as:

1. per delivery, ``SET reactor:delivery:{guid} <record> NX EX 600``: the raw delivery
   (:mod:`.deliveries`), sent outside the script because copying a 12 KB argument into Lua
   costs Redis ~20 µs;
2. one ``EVALSHA`` of the accept script (:func:`accept_script`) for all of them, which answers
   per delivery -1 if its record is missing, 0 if its GUID's seen-marker exists (a duplicate),
   or, having written the marker, given the record its full TTL, written RQ's job hash and
   pushed the job onto RQ's queue, 1. A script call is atomic, so each marker is written only
   together with its enqueue, and only once the raw delivery is stored. A delivery answered
   503 leaves at most an unmarked record that expires in ``UNACCEPTED_TTL_S``, and GitHub's
   redelivery of the same GUID is accepted exactly once.

The job is RQ's own: its hash is ``Job.to_dict()`` of a template job RQ makes at start-up; the
fields that never change are constants of the script, so a delivery sends three arguments and
three keys instead of 62 arguments (tests/test_ingest.py compares the hash with RQ's own).

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
import hashlib
import logging
import zlib
from datetime import UTC, datetime
from enum import Enum
from types import TracebackType
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry as RedisRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import BusyLoadingError, NoScriptError, ResponseError
from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.utils import utcformat

from reactor.errors import StoreUnavailable
from reactor.store import keys
from reactor.store.deliveries import Delivery

log = logging.getLogger(__name__)

JOB_FUNC = "reactor.jobs.process_delivery"
JOB_TIMEOUT_S = 60  # a job takes seconds; a killed worker's job is handed back after this + 15 s
JOB_RESULT_TTL_S = 3600
JOB_FAILURE_TTL_S = 7 * 24 * 3600
JOB_RETRY = Retry(max=3, interval=[5, 30, 120])
UNACCEPTED_TTL_S = 600  # a record whose script never ran (503, crash) expires this soon
STORE_TIMEOUT_S = 5.0  # GitHub gives up on a delivery after 10 s
RECONNECT_RETRIES = 2  # fresh connections tried after one broke (see reconnect_retry)
LOADING_WAIT_S = 3.0  # a Redis reading its data back after a restart is waited for this long
LOADING_POLL_S = 0.1
_UNACCEPTED_TTL = b"%d" % UNACCEPTED_TTL_S

MAX_BATCH = 64  # deliveries per script call: bounds how long one call holds Redis

_ACCEPT_LUA = """\
-- KEYS: RQ's queue, RQ's set of queues, then per delivery: seen-marker, record, job hash.
-- ARGV: timestamp, then per delivery: job id (the delivery's GUID), job data, description.
-- Answers per delivery: 1 accepted, 0 a duplicate, -1 its record is missing (not stored).
local answers, queued = {{}}, {{}}
for i = 0, (#KEYS - 2) / 3 - 1 do
  local seen, record, job = KEYS[3 + 3 * i], KEYS[4 + 3 * i], KEYS[5 + 3 * i]
  if redis.call('EXISTS', record) == 0 then
    answers[i + 1] = -1
  elseif not redis.call('SET', seen, '1', 'NX', 'EX', {seen_ttl}) then
    answers[i + 1] = 0
  else
    redis.call('EXPIRE', record, {delivery_ttl})
    redis.call('DEL', job)
    redis.call('HSET', job, {fixed}, 'created_at', ARGV[1], 'enqueued_at', ARGV[1],
               'data', ARGV[3 + 3 * i], 'description', ARGV[4 + 3 * i])
    queued[#queued + 1] = ARGV[2 + 3 * i]
    answers[i + 1] = 1
  end
end
if #queued > 0 then
  redis.call('RPUSH', KEYS[1], unpack(queued))
  redis.call('SADD', KEYS[2], KEYS[1])
end
return answers
"""


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


class JobTemplate:
    """RQ's job hash for a delivery, taken from one template job RQ makes at start-up."""

    VARIABLE = ("created_at", "enqueued_at", "data", "description")

    def __init__(self, queue_name: str = keys.QUEUE_EVENTS) -> None:
        queue = Queue(queue_name, connection=redis.Redis())  # never used for I/O here
        template = Job.create(
            JOB_FUNC, args=("template",), connection=queue.connection, origin=queue_name,
            timeout=JOB_TIMEOUT_S, result_ttl=JOB_RESULT_TTL_S, failure_ttl=JOB_FAILURE_TTL_S,
            retry=JOB_RETRY, status=JobStatus.QUEUED,
        )
        self.fixed: dict[str, Any] = {
            name: value.value if isinstance(value, Enum) else value
            for name, value in template.to_dict().items() if name not in self.VARIABLE
        }
        self._dumps = template.serializer.dumps
        self.queue_key = queue.key.encode()
        self.queues_key = queue.redis_queues_keys.encode()
        self.job_prefix = template.key[: -len(template.id)].encode()
        try:
            zlib.decompress(self.data("template"))
        except zlib.error:
            return
        raise TypeError("RQ would zlib-decompress this job data: compress it instead")

    def data(self, guid: str) -> bytes:
        """The job's data, not compressed: RQ's ``Job.restore`` takes data that is not zlib as
        it is (a pickle starts with its PROTO opcode, 0x80, never a zlib header; checked at
        start-up). Compressing 80 bytes gains nothing and costs ~5 µs a delivery."""
        return self._dumps((JOB_FUNC, None, (guid,), {}))

    @staticmethod
    def description(guid: str) -> str:
        return f"{JOB_FUNC}({guid!r})"  # as RQ's get_call_string writes it


def accept_script(template: JobTemplate) -> str:
    """The accept script's Lua source, with ``template``'s constant job fields in it."""
    fixed = ", ".join(_lua_string(x) for pair in template.fixed.items() for x in pair)
    return _ACCEPT_LUA.format(
        seen_ttl=keys.SEEN_TTL_S, delivery_ttl=keys.DELIVERY_TTL_S, fixed=fixed
    )


def _lua_string(value: object) -> str:
    """``value`` as a Lua string literal: printable ASCII as is, any other byte as ``\\ddd``."""
    raw = value if isinstance(value, bytes) else str(value).encode()
    return "'" + "".join(
        chr(b) if 32 <= b < 127 and b not in b"'\\" else f"\\{b:03d}" for b in raw
    ) + "'"


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
    """

    def __init__(self, client: redis.asyncio.Redis, template: JobTemplate | None = None) -> None:
        self._redis = client  # for SCRIPT LOAD
        self._template = template or JobTemplate()
        self._script = accept_script(self._template)
        self._sha = hashlib.sha1(self._script.encode()).hexdigest().encode()  # noqa: S324
        pool = client.connection_pool
        # Timeouts are per round trip (STORE_TIMEOUT_S), not per socket read.
        self._conn: AbstractConnection = pool.connection_class(**{
            **pool.connection_kwargs, "socket_timeout": None, "health_check_interval": 0,
        })
        self._pending: list[tuple[Delivery, asyncio.Future[bool]]] = []
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._reconnect = reconnect_retry()

    async def __aenter__(self) -> Ingest:
        self._start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._sender is not None:
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        for _, future in self._pending:
            _settle(future, StoreUnavailable("the web process is stopping"))
        await self._conn.disconnect()

    async def accept(self, delivery: Delivery) -> bool:
        """Store and enqueue ``delivery``; False if its GUID was already accepted.

        Raises StoreUnavailable when Redis cannot take it (no seen-marker is then written).
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((delivery, future))
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
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            if self._pending:
                self._wake.set()
            try:
                results = await self._store([delivery for delivery, _ in batch])
            except asyncio.CancelledError:
                for _, future in batch:
                    _settle(future, StoreUnavailable("the web process is stopping"))
                raise
            except Exception as exc:  # keep the sender alive whatever happens to one batch
                if not isinstance(exc, redis.RedisError | OSError | TimeoutError):
                    log.exception("storing %d deliveries failed", len(batch))
                await self._conn.disconnect()
                results = [StoreUnavailable(f"Redis cannot take the delivery: {exc}")
                           for _ in batch]
            for (_, future), result in zip(batch, results, strict=True):
                _settle(future, result)

    async def _store(self, batch: list[Delivery]) -> list[bool | StoreUnavailable]:
        """Each delivery's outcome: True, False (a duplicate) or a StoreUnavailable."""
        records, script = [self._record(d) for d in batch], self._script_call(batch)
        waited_until = asyncio.get_running_loop().time() + LOADING_WAIT_S
        while True:
            try:
                answers = await self._send(records, script)
                break
            except BusyLoadingError:  # just restarted: reading its data back, for a moment
                await self._conn.disconnect()  # the rest of the replies are not coming
                if asyncio.get_running_loop().time() > waited_until:
                    raise
                await asyncio.sleep(LOADING_POLL_S)
        if isinstance(answers, NoScriptError):  # Redis restarted without its script cache
            await self._redis.script_load(self._script)  # (or this is the first batch)
            answers = await self._round_trip([], script)
        if not isinstance(answers, list) or len(answers) != len(batch):
            return [StoreUnavailable(f"Redis refused the deliveries: {answers}") for _ in batch]
        return [_outcome(answer) for answer in answers]

    async def _send(self, records: list[bytes], script: bytes) -> Any:
        if self._conn.is_connected:
            # A connection idle across a Redis restart fails on first use: fresh tries.
            # Any delivery a lost attempt did accept then answers "duplicate": still once.
            return await self._reconnect.call_with_retry(
                lambda: self._round_trip(records, script), self._drop_connection
            )
        # not connected: Redis was unreachable a moment ago, so fail fast if it still is
        return await self._round_trip(records, script)

    async def _drop_connection(self, error: Exception) -> None:
        await self._conn.disconnect()

    def _record(self, delivery: Delivery) -> bytes:
        """The delivery's ``SET`` of its record, packed."""
        key = keys.delivery(delivery.guid).encode()
        return pack(b"SET", key, delivery.header() + delivery.body, b"NX", b"EX", _UNACCEPTED_TTL)

    def _script_call(self, batch: list[Delivery]) -> bytes:
        """The ``EVALSHA`` of the accept script for ``batch``, packed."""
        t = self._template
        names, args = [t.queue_key, t.queues_key], [utcformat(datetime.now(UTC)).encode()]
        for delivery in batch:
            guid = delivery.guid
            names += (keys.seen(guid).encode(), keys.delivery(guid).encode(),
                      t.job_prefix + guid.encode())
            args += (guid.encode(), t.data(guid), t.description(guid).encode())
        return pack(b"EVALSHA", self._sha, b"%d" % len(names), *names, *args)

    async def _round_trip(self, records: list[bytes], script: bytes) -> Any:
        """Send the records' SETs and the script call in one write; the script's reply."""
        async with asyncio.timeout(STORE_TIMEOUT_S):
            # send_packed_command connects first when the connection is closed.
            await self._conn.send_packed_command([*records, script], check_health=False)
            for _ in records:
                await self._reply()  # OK, or nil when an unaccepted record was already there
            return await self._reply()

    async def _reply(self) -> Any:
        try:
            return await self._conn.read_response()
        except ResponseError as exc:  # an error reply: the connection is still in step
            return exc


def _settle(future: asyncio.Future[bool], result: bool | BaseException) -> None:
    if future.done():  # the request went away
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


def _outcome(reply: Any) -> bool | StoreUnavailable:
    if reply == 1 or reply == 0:
        return bool(reply)
    if reply == -1:
        return StoreUnavailable("Redis did not keep the delivery's record")
    return StoreUnavailable(f"Redis refused the delivery: {reply}")
