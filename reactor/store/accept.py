"""The accept script: what the web process writes for a delivery, in one atomic call.

Per delivery it answers 0 if the delivery's record exists (a duplicate: the record is the
GUID's seen-marker, kept :data:`reactor.store.keys.DELIVERY_TTL_S`), or, having stored the
record, written RQ's job hash and pushed the job onto RQ's queue, 1 — or, for a delivery
that joins its competition's turn, left it in the turn's pending list and queued the turn's
job only if none is queued or running (:mod:`reactor.store.turns`).
:mod:`reactor.store.ingest` sends it, a batch of deliveries a call.

The job is RQ's own: its hash is ``Job.to_dict()`` of a template job RQ makes at start-up
(:class:`JobTemplate`); the fields that never change are constants of the script, so a
delivery's job costs the script four short arguments instead of 62 (tests/test_ingest.py
compares the hash with RQ's own).
"""

from __future__ import annotations

import zlib
from enum import Enum
from typing import Any

import redis
from rq import Queue, Retry
from rq.job import Job, JobStatus

from reactor.store import keys, turns

JOB_FUNC = "reactor.entrypoints.jobs.process_delivery"
TURN_FUNC = "reactor.entrypoints.jobs.take_turn"
JOB_TIMEOUT_S = 60  # a job takes seconds; a killed worker's job is handed back after this + 15 s
JOB_RESULT_TTL_S = 3600
JOB_FAILURE_TTL_S = 7 * 24 * 3600
JOB_RETRY = Retry(max=3, interval=[5, 30, 120])
# Web processes before this script stored a delivery's record apart from accepting it, to
# live this long unless accepted: a record with no more time left than this was never
# accepted (an accepted one lives 7 days, and GitHub redelivers for 3), and the script takes
# it over.
UNACCEPTED_TTL_S = 600

_ACCEPT_LUA = """\
-- KEYS: RQ's queue, RQ's set of queues, then per delivery: its record, job hash, its scope's
-- pending list and turn marker (a delivery handled alone repeats its record there, unused).
-- ARGV: timestamp, then per delivery: GUID, job id, job data, description, 'turn' when the
-- delivery joins its scope's turn, and the record.
-- Answers per delivery: 1 accepted, 0 a duplicate.
local answers, queued = {{}}, {{}}
for i = 0, (#KEYS - 2) / 4 - 1 do
  local record, job, a = KEYS[3 + 4 * i], KEYS[4 + 4 * i], 1 + 6 * i
  local guid, id, turn = ARGV[a + 1], ARGV[a + 2], ARGV[a + 5] == 'turn'
  local stored = redis.call('SET', record, ARGV[a + 6], 'NX', 'EX', {delivery_ttl})
  if not stored then
    -- a record an older web process stored and could not accept (it answered 503) lives
    -- at most UNACCEPTED_TTL_S: GitHub's redelivery takes it over
    local ttl = redis.call('TTL', record)
    if ttl >= 0 and ttl <= {unaccepted_ttl} then
      stored = redis.call('SET', record, ARGV[a + 6], 'EX', {delivery_ttl})
    end
  end
  if not stored then
    answers[i + 1] = 0
  else
    answers[i + 1] = 1
    local enqueue = true
    if turn then
      -- an item already pending means a turn is queued or running for it, or the scope is
      -- on the turn's watchdog: whoever added that item took the marker or found it taken,
      -- a turn ends only with nothing pending, and a worker that took the marker and died
      -- before queuing the turn is woken (reactor/store/turns.py _OFFER)
      local pending = KEYS[5 + 4 * i]
      enqueue = redis.call('RPUSH', pending, 'd:' .. guid) == 1
        and redis.call('SET', KEYS[6 + 4 * i], id, 'NX', 'EX', {turn_ttl})
      if enqueue then redis.call('EXPIRE', pending, {scope_ttl}) end
    end
    if enqueue then
      redis.call('DEL', job)
      if turn then
        redis.call('HSET', job, {turn_fixed}, 'created_at', ARGV[1], 'enqueued_at', ARGV[1],
                   'data', ARGV[a + 3], 'description', ARGV[a + 4])
      else
        redis.call('HSET', job, {fixed}, 'created_at', ARGV[1], 'enqueued_at', ARGV[1],
                   'data', ARGV[a + 3], 'description', ARGV[a + 4])
      end
      queued[#queued + 1] = id
    end
  end
end
if #queued > 0 then
  redis.call('RPUSH', KEYS[1], unpack(queued))
  redis.call('SADD', KEYS[2], KEYS[1])
end
return answers
"""


class JobTemplate:
    """RQ's job hash for a delivery, taken from a template job RQ makes at start-up; and for
    a competition's turn, whose job keeps no result (its outcome is in the audit log)."""

    VARIABLE = ("created_at", "enqueued_at", "data", "description")

    def __init__(self, queue_name: str = keys.QUEUE_EVENTS) -> None:
        queue = Queue(queue_name, connection=redis.Redis())  # never used for I/O here
        template = self._template(queue, JOB_RESULT_TTL_S)
        self.fixed = self._fixed(template)
        self.turn_fixed = self._fixed(self._template(queue, 0))
        self._dumps = template.serializer.dumps
        self.queue_key = queue.key.encode()
        self.queues_key = queue.redis_queues_keys.encode()
        self.job_prefix = template.key[: -len(template.id)].encode()
        try:
            zlib.decompress(self.data("template"))
        except zlib.error:
            return
        raise TypeError("RQ would zlib-decompress this job data: compress it instead")

    @staticmethod
    def _template(queue: Queue, result_ttl: int) -> Job:
        return Job.create(
            JOB_FUNC, args=("template",), connection=queue.connection, origin=queue.name,
            timeout=JOB_TIMEOUT_S, result_ttl=result_ttl, failure_ttl=JOB_FAILURE_TTL_S,
            retry=JOB_RETRY, status=JobStatus.QUEUED,
        )

    def _fixed(self, template: Job) -> dict[str, Any]:
        return {name: value.value if isinstance(value, Enum) else value
                for name, value in template.to_dict().items() if name not in self.VARIABLE}

    def data(self, guid: str, func: str = JOB_FUNC) -> bytes:
        """The job's data, not compressed: RQ's ``Job.restore`` takes data that is not zlib as
        it is (a pickle starts with its PROTO opcode, 0x80, never a zlib header; checked at
        start-up). Compressing 80 bytes gains nothing and costs ~5 µs a delivery."""
        return self._dumps((func, None, (guid,), {}))

    @staticmethod
    def description(argument: str, func: str = JOB_FUNC) -> str:
        return f"{func}({argument!r})"  # as RQ's get_call_string writes it


def accept_script(template: JobTemplate) -> str:
    """The accept script's Lua source, with ``template``'s constant job fields in it."""
    return _ACCEPT_LUA.format(
        delivery_ttl=keys.DELIVERY_TTL_S, unaccepted_ttl=UNACCEPTED_TTL_S,
        fixed=_lua_fields(template.fixed), turn_fixed=_lua_fields(template.turn_fixed),
        turn_ttl=turns.QUEUED_TTL_S, scope_ttl=keys.SCOPE_TTL_S,
    )


def _lua_fields(fields: dict[str, Any]) -> str:
    return ", ".join(_lua_string(x) for pair in fields.items() for x in pair)


def _lua_string(value: object) -> str:
    """``value`` as a Lua string literal: printable ASCII as is, any other byte as ``\\ddd``."""
    raw = value if isinstance(value, bytes) else str(value).encode()
    return "'" + "".join(
        chr(b) if 32 <= b < 127 and b not in b"'\\" else f"\\{b:03d}" for b in raw
    ) + "'"
