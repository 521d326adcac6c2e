"""A competition's turn in Redis: the work waiting for it, and who takes it.

Everything a scope (a competition, or an issue outside any) has to do waits in its *pending*
list as one item each — a delivery (``d:<guid>``), a change handed on from another scope
(``m:<change>``), a timeout check (``t:<issue>:<status>:<entered>``), a reconcile request
(``r``) or a settle re-check (``w``). Whoever adds an item also tries the scope's *turn
marker* (``SET NX``): the one that sets it owns the turn and runs it (or queues the job that
will); everyone else leaves the item for the turn already queued or running. So a scope has
at most one turn queued or running, and a delivery for a scope whose turn is waiting costs
no job of its own. The web process does the same for deliveries, in its accept script
(:mod:`reactor.store.ingest`).

A round of a turn (:func:`begin`) takes the scope's lease with its fencing token, moves
everything pending to the *in-flight* list and returns it, with which of its deliveries were
judged already and the hand-off journals in progress — one script. When the round is done,
:func:`finish` writes in one transaction what it remembers, the judged deliveries, the
in-flight list (what still waits for its settle window), the audit records and counters,
and releases the lease and, when nothing more is pending, the turn marker. A holder killed
mid-round leaves its items in flight for the next round, whose fencing token makes a stale
holder's writes fail (:mod:`reactor.store.locks`).
See https://martin.kleppmann.com/2016/02/08/how-to-do-distributed-locking.html.

From the moment a worker takes a turn's job off RQ's queue (:func:`queue_start`) until the
turn ends or pauses (:func:`pause`: the scheduler then queues the job that goes on), the
scope is in the set of *rounds running*, due back a lease after the turn's last step (the
job's start, each round's begin, a round closing with more to do). Should the worker die
anywhere in between — before the first round, mid-round, between rounds — the scheduler
wakes the scope once it is due (:func:`overdue`), by when the marker the turn held, which
lives no longer, is gone.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio
from redis import Redis as SyncRedis
from redis.exceptions import NoScriptError

from reactor.core.routing import Scope
from reactor.store import keys
from reactor.store.locks import LEASE_TTL_MS, Lease

# A queued turn's marker lives this long (a job's timeout and RQ's margin for handing back
# a dead worker's job); a running one's as long as its lease, renewed with it.
QUEUED_TTL_S = 75
JUDGED_TTL_S = 24 * 3600  # a job is retried within minutes; a redelivery is a new judgement
_CHUNK = 1000  # list items per command inside a script (Lua's unpack has a limit)

# Add an item; the caller owns the turn if it set the marker (or held it already: a retried
# job, a wake the marker was kept for). A caller that sets it enters the scope among the rounds
# running, due once the marker is gone: it runs the turn or queues its job next, and should
# it die before either, the scheduler wakes the scope then (a delivery coming meanwhile finds
# an item pending and leaves the marker alone: reactor/store/accept.py).
# KEYS: pending, turn marker, rounds running; ARGV: item, owner, marker ttl (s), list ttl,
# the scope (as reactor.core.routing.Scope.dumps writes it), watchdog margin (ms)
_OFFER = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'EX', ARGV[3]) then
  local now = redis.call('TIME')
  local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  redis.call('ZADD', KEYS[3], ms + tonumber(ARGV[3]) * 1000 + tonumber(ARGV[6]), ARGV[5])
  return 1
end
if redis.call('GET', KEYS[2]) == ARGV[2] then return 1 end
return 0
"""

# Take the lease and its fencing token, mark the turn as running for ``owner``, move what is
# pending into flight, and return {fence, in-flight items, judged flags, journals, how many
# of the items an earlier round left in flight (they come first)}; 0 when
# another holds the lease. An item's delivery is judged when its GUID is in the judged set:
# only an item an earlier round left in flight can be (a hand-off settled it), and only an
# earlier round can have left a hand-off's journal, so neither is read otherwise.
# The round is also entered in the set of rounds running, due back by the lease's end: should
# its worker die, the scheduler wakes the scope then (:func:`overdue`).
# KEYS: lease, fence, turn marker, pending, in-flight, judged, sagas, rounds running
# ARGV: lease value, lease ttl (ms), scope ttl (s), owner, chunk, '1' to take the lease,
#       the scope (as reactor.core.routing.Scope.dumps writes it), watchdog margin (ms)
_BEGIN = """
if ARGV[6] == '1' and not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 0
end
local fence = redis.call('INCR', KEYS[2])
if fence == 1 then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[2])
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[8], ms + tonumber(ARGV[2]) + tonumber(ARGV[8]), ARGV[7])
-- Items left in flight by an earlier round (parked, or a round that died) may have been
-- judged since, and a dead round may have left a hand-off half done.
local left = redis.call('EXISTS', KEYS[5]) == 1
local carried = 0
if not left then
  if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('RENAME', KEYS[4], KEYS[5]) end
else
  carried = redis.call('LLEN', KEYS[5])
  local chunk = tonumber(ARGV[5])
  while true do
    local items = redis.call('LRANGE', KEYS[4], 0, chunk - 1)
    if #items == 0 then break end
    redis.call('RPUSH', KEYS[5], unpack(items))
    redis.call('LTRIM', KEYS[4], #items, -1)
  end
end
local taken = redis.call('LRANGE', KEYS[5], 0, -1)
if #taken > 0 then redis.call('EXPIRE', KEYS[5], ARGV[3]) end
local judged, journals = {}, {}
if left then
  for i = 1, #taken, tonumber(ARGV[5]) do
    local part = {}
    for j = i, math.min(i + tonumber(ARGV[5]) - 1, #taken) do
      part[#part + 1] = string.match(taken[j], '^[dm]:([^:]+)') or ''
    end
    local flags = redis.call('SMISMEMBER', KEYS[6], unpack(part))
    for _, flag in ipairs(flags) do judged[#judged + 1] = flag end
  end
  journals = redis.call('HVALS', KEYS[7])
else
  for i = 1, #taken do judged[i] = 0 end
end
return {fence, taken, judged, journals, carried}
"""

# Release the lease; then 1 if more is pending (the owner takes another round), else the
# turn marker is dropped (if still this owner's), the scope leaves the set of rounds running
# and 0. While more is pending the scope stays in that set, due a lease later (as long as the
# marker the round set lives): should the worker die before its next round begins, nothing
# else would come back for what waits.
# KEYS: lease, turn marker, pending, rounds running; ARGV: lease value, owner, the scope,
#       lease ttl (ms), watchdog margin (ms)
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if redis.call('LLEN', KEYS[3]) > 0 then
  local now = redis.call('TIME')
  local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  redis.call('ZADD', KEYS[4], ms + tonumber(ARGV[4]) + tonumber(ARGV[5]), ARGV[3])
  return 1
end
redis.call('ZREM', KEYS[4], ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return 0
"""

# A turn's job starts (reactor/entrypoints/worker.py, LEAN_JOBS): RQ lets go of it as the
# worker takes it off the queue's intermediate list, and its first round enters the scope
# among the rounds running only once it begins. So the job enters it now, due a lease
# later, and cuts the turn's marker, when it holds it, to a lease too: should the worker die
# before that round begins (lingering, pacing its reads), the scheduler's wake finds the
# marker gone and takes the turn.
# KEYS: turn marker, rounds running; ARGV: owner, lease ttl (ms), watchdog margin (ms), the
# scope
_START = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[2], ms + tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[4])
"""


def _sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()  # noqa: S324 - Redis names scripts so


# Rounds overdue (their holder died): each is pushed a lease further (woken again then, if
# the wake fails too) and returned. KEYS: rounds running; ARGV: lease ttl (ms), at most.
_OVERDUE = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ms, 'LIMIT', 0, tonumber(ARGV[2]))
for _, scope in ipairs(due) do redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[1]), scope) end
return due
"""

# Pause a turn: its marker goes to the job that goes on with it, which the scheduler queues
# once the pause is over (:func:`paused_due`); the scheduler looks after the turn until then,
# so it leaves the rounds running. KEYS: turn marker, paused turns, rounds running;
# ARGV: the next owner, marker ttl (s), the entry (owner and scope), pause (ms), the scope.
_PAUSE = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[2], ms + tonumber(ARGV[4]), ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[5])
"""

# Paused turns whose pause is over (left in the set until their job is queued).
# KEYS: paused turns; ARGV: at most.
_PAUSED_DUE = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ms, 'LIMIT', 0, tonumber(ARGV[1]))
"""

_SCRIPTS = {name: (text, _sha(text)) for name, text in
            (("offer", _OFFER), ("begin", _BEGIN), ("release", _RELEASE),
             ("overdue", _OVERDUE), ("pause", _PAUSE), ("paused_due", _PAUSED_DUE))}
WATCHDOG_MARGIN_MS = 1000  # past a round's lease, before the scheduler wakes its scope


async def _call(client: redis.asyncio.Redis, name: str, keys_: Sequence[str],
                args: Sequence[Any]) -> Any:
    """``EVALSHA`` of one of this module's scripts, loading it the first time Redis lacks it
    (after a restart): one command, not redis-py's ``SCRIPT EXISTS`` before each."""
    text, sha = _SCRIPTS[name]
    try:
        return await client.evalsha(sha, len(keys_), *keys_, *args)
    except NoScriptError:
        await client.script_load(text)
        return await client.evalsha(sha, len(keys_), *keys_, *args)


# -- items ---------------------------------------------------------------------------------

WAKE = "w"
RECONCILE = "r"


def delivery_item(guid: str) -> str:
    return f"d:{guid}"


def timer_item(issue: int, status: str, entered: str) -> str:
    return f"t:{issue}:{status}:{entered}"


def moved_item(guid: str, encoded: bytes) -> str:
    """A change handed on from another scope: its delivery (judged once, whichever scope
    judges it), then the change itself (reactor/shell/schedule.py encodes it)."""
    return f"m:{guid}:{encoded.decode()}"


def guid_of(item: str) -> str | None:
    """The delivery an item carries, if any."""
    kind, _, rest = item.partition(":")
    return rest.partition(":")[0] if kind in ("d", "m") else None


# -- who takes the turn ---------------------------------------------------------------------

def owner_id(digest: str, cause: str) -> str:
    """A turn job's id: the scope's digest and what caused it (a delivery, a timer, …)."""
    return f"turn-{digest}-{cause}"


async def offer(client: redis.asyncio.Redis, scope: Scope, item: str, *, owner: str) -> bool:
    """Leave ``item`` for the scope's turn; True when the caller now owns the turn (it set
    the marker) and must run it, or queue the job that will."""
    taken = await _call(client, "offer", (keys.pending(scope.key), keys.turn(scope.key),
                                          keys.ROUNDS_RUNNING),
                        (item, owner, QUEUED_TTL_S, keys.SCOPE_TTL_S, scope.dumps(),
                         WATCHDOG_MARGIN_MS))
    return bool(taken)


@dataclass(frozen=True)
class Taken:
    """A round's work: its lease, the items in flight, and what Redis says of them."""

    lease: Lease
    owner: str
    items: tuple[str, ...]
    judged: frozenset[str]  # items whose delivery the scope has judged already
    journals: tuple[bytes, ...]  # hand-off journals in progress (reactor/shell/saga.py)
    scope: str  # as reactor.core.routing.Scope.dumps writes it: its entry among rounds running
    carried: frozenset[str] = frozenset()  # items an earlier round left in flight (parked)


async def begin(client: redis.asyncio.Redis, scope: Scope, *, owner: str,
                guarded: bool = True) -> Taken | None:
    """Take the scope's lease and everything waiting for it; None while another holds the
    lease. Unguarded (``UNSAFE_DISABLE=lease``), the lease is a random value nobody checks."""
    value, key, dumped = secrets.token_hex(16), scope.key, scope.dumps()
    found = await _call(client, "begin", (
        keys.lease(key), keys.fence(key), keys.turn(key), keys.pending(key),
        keys.inflight(key), keys.judged(key), keys.sagas(key), keys.ROUNDS_RUNNING,
    ), (value, LEASE_TTL_MS, keys.SCOPE_TTL_S, owner, _CHUNK, "1" if guarded else "0",
        dumped, WATCHDOG_MARGIN_MS))
    if not found:
        return None
    fence, items, flags, journals, carried = found
    taken = tuple(_text(item) for item in items)
    judged = frozenset(item for item, flag in zip(taken, flags, strict=True) if flag)
    lease = Lease(scope=key, value=value, fence=int(fence), client=client, guarded=guarded)
    return Taken(lease, owner, taken, judged, tuple(journals), dumped,
                 frozenset(taken[:int(carried)]))


Write = Callable[[Any], object]  # a command queued on a round's closing transaction


@dataclass
class Commit:
    """What a round writes when it is done, in one transaction with the lease's release.

    ``parked``: the in-flight items that still wait (the rest are done and leave the
    in-flight list, so no round takes them again); ``judged``: deliveries to record as
    judged beyond that (a change handed on from another scope, which could be handed on
    twice); ``writes``: further commands queued on the transaction (memory, audit records,
    counters), each a function of the pipeline."""

    parked: list[str] = field(default_factory=list)
    judged: list[str] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)


async def finish(client: redis.asyncio.Redis, taken: Taken, commit: Commit) -> bool:
    """Write the round's commit and release the lease, atomically; True when more waits
    (the owner takes another round), False once the turn is over."""
    scope = taken.lease.scope
    _, sha = _SCRIPTS["release"]
    async with client.pipeline(transaction=True) as pipe:
        for write in commit.writes:
            write(pipe)
        if commit.judged:
            pipe.sadd(keys.judged(scope), *commit.judged)
            pipe.expire(keys.judged(scope), JUDGED_TTL_S)
        if taken.items:
            pipe.delete(keys.inflight(scope))
        if commit.parked:
            pipe.rpush(keys.inflight(scope), *commit.parked)
            pipe.expire(keys.inflight(scope), keys.SCOPE_TTL_S)
        names = (keys.lease(scope), keys.turn(scope), keys.pending(scope), keys.ROUNDS_RUNNING)
        values = (taken.lease.value, taken.owner, taken.scope, LEASE_TTL_MS, WATCHDOG_MARGIN_MS)
        pipe.evalsha(sha, len(names), *names, *values)
        try:
            replies = await pipe.execute()
        except NoScriptError:  # Redis restarted without its scripts: the rest was written
            return bool(await _call(client, "release", names, values))
    return bool(replies[-1])


def queue_start(pipe: Any, dumped: str, *, owner: str) -> None:
    """On the pipeline that takes the turn job ``owner`` off RQ's intermediate list: the
    turn's watchdog covers the job from here (see ``_START``). ``dumped``: the job's scope,
    as ``Scope.dumps`` wrote it."""
    scope = Scope.loads(dumped)
    pipe.eval(_START, 2, keys.turn(scope.key), keys.ROUNDS_RUNNING, owner, LEASE_TTL_MS,
              WATCHDOG_MARGIN_MS, scope.dumps())


async def hand_over(client: redis.asyncio.Redis, scope: str, *, owner: str) -> None:
    """The turn goes on as ``owner`` (a job queued next), who now holds its marker."""
    await client.set(keys.turn(scope), owner, ex=QUEUED_TTL_S)


async def pause(client: redis.asyncio.Redis, scope: Scope, *, owner: str, for_ms: int
                ) -> None:
    """The turn goes on as ``owner`` in ``for_ms``: ``owner`` holds its marker meanwhile, so
    what arrives waits for it and costs no job, and the scheduler queues its job then."""
    dumped = scope.dumps()
    await _call(client, "pause", (keys.turn(scope.key), keys.PAUSED, keys.ROUNDS_RUNNING),
                (owner, QUEUED_TTL_S, f"{owner} {dumped}", max(0, for_ms), dumped))


async def read_pace(client: redis.asyncio.Redis, scope: str, *, gap_ms: int, free: int
                    ) -> tuple[int, int]:
    """How long the scope's next round must wait before it reads GitHub (ms), and how many
    rounds read in a row before it, each within ``gap_ms`` of the one before: no wait for
    the first ``free`` of them, then ``gap_ms`` after the last. Clocks of different machines
    may differ: a wait is never longer than ``gap_ms``."""
    raw: bytes | None = await client.get(keys.pace(scope))  # type: ignore[assignment]
    if raw is None:
        return 0, 0
    last, _, streak = raw.decode().partition(":")
    if int(streak) < free:
        return 0, int(streak)
    wait = int(last) + gap_ms - int(time.time() * 1000)
    return max(0, min(gap_ms, wait)), int(streak)


def queue_read(pipe: Any, scope: str, *, streak: int, gap_ms: int) -> None:
    """On a round's closing transaction: it read GitHub, the ``streak``-th in a row."""
    pipe.set(keys.pace(scope), f"{int(time.time() * 1000)}:{streak}", px=gap_ms)


def paused_due(connection: SyncRedis, *, at_most: int = 100) -> list[tuple[str, str]]:
    """Paused turns whose pause is over, as (owner, scope as ``Scope.dumps`` wrote it); each
    stays in the set until :func:`resumed` says its job is queued."""
    text, sha = _SCRIPTS["paused_due"]
    try:
        found = connection.evalsha(sha, 1, keys.PAUSED, at_most)
    except NoScriptError:
        found = connection.eval(text, 1, keys.PAUSED, at_most)
    entries = [_text(item).partition(" ") for item in found]
    return [(owner, dumped) for owner, _, dumped in entries]


def resumed(connection: SyncRedis, owner: str, dumped: str) -> None:
    connection.zrem(keys.PAUSED, f"{owner} {dumped}")


async def release(client: redis.asyncio.Redis, taken: Taken) -> None:
    """Give the lease up after a round that failed: its items stay in flight for the next
    round, the turn marker stays for the job's retry (or expires), and the scheduler wakes
    the scope should no retry come (it stays among the rounds running)."""
    await taken.lease.release()


def overdue(connection: SyncRedis, *, at_most: int = 100) -> list[str]:
    """Scopes (as ``Scope.dumps`` wrote them) whose round has been running for longer than
    its lease and a margin: its worker died mid-round. Each is due again a lease later, in
    case its wake fails as well."""
    text, sha = _SCRIPTS["overdue"]
    try:
        found = connection.evalsha(sha, 1, keys.ROUNDS_RUNNING, LEASE_TTL_MS, at_most)
    except NoScriptError:
        found = connection.eval(text, 1, keys.ROUNDS_RUNNING, LEASE_TTL_MS, at_most)
    return [_text(item) for item in found]


async def mark_judged(client: redis.asyncio.Redis, scope: str, guids: list[str]) -> None:
    """The deliveries ``guids`` are judged (a hand-off that settled them, done by whichever
    worker finished it): no round judges them again."""
    if guids:
        async with client.pipeline(transaction=True) as pipe:
            pipe.sadd(keys.judged(scope), *guids)
            pipe.expire(keys.judged(scope), JUDGED_TTL_S)
            await pipe.execute()


async def unjudge(client: redis.asyncio.Redis, scope: str, guid: str) -> None:
    """Let the scope judge the delivery ``guid`` again (``reactor replay``)."""
    await client.srem(keys.judged(scope), guid)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


