"""Accept a webhook delivery: dedupe, store and enqueue in one atomic Redis step.

One Lua script per delivery does all of it, so a delivery is either fully accepted (its raw
body stored, an RQ job queued, its ``X-GitHub-Delivery`` marked seen) or not at all. Because
the seen-marker is written only together with the store and the enqueue, a delivery answered
503 (Redis down) leaves nothing behind, and GitHub's later redelivery of the same GUID is
accepted exactly once.

Throughput comes from :class:`Ingest`, which batches the scripts of concurrent requests into
one pipelined round trip: while one batch is in flight, the next accumulates.

The RQ job hash is RQ's own serialisation (``Job.to_dict``), taken once from a template job
at start-up; each delivery fills in only its id, payload and timestamps.
See https://docs.github.com/en/webhooks/using-webhooks/best-practices-for-using-webhooks.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import redis
import redis.asyncio
from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.utils import utcformat

from reactor.errors import StoreUnavailable
from reactor.store import keys

JOB_FUNC = "reactor.jobs.process_delivery"
JOB_TIMEOUT_S = 120
JOB_RESULT_TTL_S = 3600
JOB_FAILURE_TTL_S = 7 * 24 * 3600
JOB_RETRY = Retry(max=3, interval=[5, 30, 120])

# KEYS: seen, delivery, job, queue, rq's set of queues.
# ARGV: seen ttl, delivery ttl, job id, number of delivery field/value pairs, then the
#       delivery's pairs, then the job hash's pairs.
_INGEST_LUA = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return 0
end
local n = tonumber(ARGV[4])
local delivery = {}
for i = 5, 4 + 2 * n do delivery[#delivery + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], unpack(delivery))
redis.call('EXPIRE', KEYS[2], ARGV[2])
local job = {}
for i = 5 + 2 * n, #ARGV do job[#job + 1] = ARGV[i] end
redis.call('HSET', KEYS[3], unpack(job))
redis.call('RPUSH', KEYS[4], ARGV[3])
redis.call('SADD', KEYS[5], KEYS[4])
return 1
"""


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified webhook delivery as received (the raw body, before any parsing)."""

    guid: str
    event: str
    body: bytes
    received_at: float
    hook_id: str = ""
    target_type: str = ""
    target_id: str = ""

    def fields(self) -> list[Any]:
        return [
            "event", self.event, "body", self.body, "received_at", repr(self.received_at),
            "hook_id", self.hook_id, "target_type", self.target_type, "target_id", self.target_id,
        ]


class JobTemplate:
    """Builds the RQ job hash for a delivery from one template job made by RQ itself."""

    def __init__(self, queue_name: str = keys.QUEUE_EVENTS) -> None:
        queue = Queue(queue_name, connection=redis.Redis())  # never used for I/O here
        template = Job.create(
            JOB_FUNC, args=("template",), connection=queue.connection, origin=queue_name,
            timeout=JOB_TIMEOUT_S, result_ttl=JOB_RESULT_TTL_S, failure_ttl=JOB_FAILURE_TTL_S,
            retry=JOB_RETRY, status=JobStatus.QUEUED,
        )
        fixed = template.to_dict()
        for name in ("created_at", "enqueued_at", "data", "description"):
            fixed.pop(name, None)
        self._fixed: list[Any] = [
            x.value if isinstance(x, Enum) else x for pair in fixed.items() for x in pair
        ]
        self._serializer = template.serializer
        self.queue_key = queue.key
        self.queues_key = queue.redis_queues_keys
        self.job_prefix = template.key[: -len(template.id)]

    def fields(self, guid: str, *, now: float) -> list[Any]:
        """The job hash for ``guid``'s delivery; the job id is the delivery's GUID."""
        stamp = utcformat(datetime.fromtimestamp(now, UTC))
        data = zlib.compress(self._serializer.dumps((JOB_FUNC, None, (guid,), {})))
        return [
            *self._fixed, "created_at", stamp, "enqueued_at", stamp, "data", data,
            "description", f"{JOB_FUNC}({guid!r})",
        ]


class Ingest:
    """Accepts deliveries into Redis, batching concurrent requests into one round trip."""

    def __init__(self, client: redis.asyncio.Redis, template: JobTemplate | None = None) -> None:
        self._redis = client
        self._template = template or JobTemplate()
        self._sha = ""
        self._pending: list[tuple[list[Any], asyncio.Future[bool]]] = []
        self._flushing = False

    async def accept(self, delivery: Delivery) -> bool:
        """Store and enqueue ``delivery``; False if its GUID was already accepted.

        Raises StoreUnavailable when Redis cannot take it (nothing is then written).
        """
        args = self._script_args(delivery)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((args, future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        return await future

    def _script_args(self, d: Delivery) -> list[Any]:
        t = self._template
        job_key = t.job_prefix + d.guid
        delivery_fields = d.fields()
        return [
            5, keys.seen(d.guid), keys.delivery(d.guid), job_key, t.queue_key, t.queues_key,
            keys.SEEN_TTL_S, keys.DELIVERY_TTL_S, d.guid, len(delivery_fields) // 2,
            *delivery_fields, *t.fields(d.guid, now=d.received_at),
        ]

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._send(batch)
        finally:
            self._flushing = False

    async def _send(self, batch: list[tuple[list[Any], asyncio.Future[bool]]]) -> None:
        try:
            results = await self._run_scripts([args for args, _ in batch])
        except (redis.RedisError, OSError) as exc:
            error = StoreUnavailable(f"Redis cannot take the delivery: {exc}")
            results = [error] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(StoreUnavailable(f"Redis refused the delivery: {result}"))
            else:
                future.set_result(bool(result))

    async def _run_scripts(self, batch: list[list[Any]]) -> list[Any]:
        if not self._sha:
            self._sha = await self._redis.script_load(_INGEST_LUA)
        results = await self._pipeline(batch)
        if any(isinstance(r, redis.exceptions.NoScriptError) for r in results):
            # Redis restarted without its script cache: load again and resend those alone.
            self._sha = await self._redis.script_load(_INGEST_LUA)
            missing = [i for i, r in enumerate(results) if isinstance(r, redis.RedisError)]
            retried = await self._pipeline([batch[i] for i in missing])
            for i, result in zip(missing, retried, strict=True):
                results[i] = result
        return results

    async def _pipeline(self, batch: list[list[Any]]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for args in batch:
                pipe.evalsha(self._sha, *args)
            return list(await pipe.execute(raise_on_error=False))
