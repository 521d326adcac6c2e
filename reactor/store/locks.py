"""Per-competition leases with fencing tokens, and the burst queue that feeds them.

Work on one competition (one issue, outside any competition) is serialised across every worker
process and machine by a Redis lease: ``SET key value NX PX ttl``. Each lease carries a
fencing token, a number that only grows, so a worker whose lease expired (a long GC pause, a
partition) finds out before its next write: :meth:`Lease.check` fails once another worker
holds the scope, and the stale worker stops instead of writing over the new holder's
decisions. GitHub cannot check the token itself (it has no conditional writes), so the check
runs in Redis right before every write.

Bursts collapse: a job first appends its change to the scope's pending list, then tries the
lease. The holder takes the whole list and evaluates the competition once for all changes it
found; a job that finds the lease taken leaves its change for the holder. The holder re-checks
the list after releasing, so no change is stranded between a take and a release. Taken changes
stay in an in-flight list until the evaluation is done, so a holder killed mid-way leaves them
for the next holder (evaluation reads fresh state, and the deliveries a scope has judged are
remembered for a day, so a change seen twice counts once). Every per-scope key expires after
a quiet week.
See https://martin.kleppmann.com/2016/02/08/how-to-do-distributed-locking.html.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import redis.asyncio

from reactor.errors import LeaseLost
from reactor.store import keys

LEASE_TTL_MS = 15_000  # renewed before every write; a killed holder blocks this long

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Still ours? Then extend it, so a long evaluation does not lose the lease mid-write.
_CHECK_AND_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
# Take the lease and its next fencing token in one round trip; 0 when another holds it.
_ACQUIRE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
local fence = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return fence
"""
# Move everything pending to the in-flight list and return the in-flight list.
_TAKE = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
if #items > 0 then
  redis.call('RPUSH', KEYS[2], unpack(items))
  redis.call('DEL', KEYS[1])
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
return redis.call('LRANGE', KEYS[2], 0, -1)
"""
JUDGED_TTL_S = 24 * 3600  # a job is retried within minutes; a redelivery is a new judgement


@dataclass(frozen=True, slots=True)
class Lease:
    """A held lease on one scope: its random value and its fencing token. An unguarded one
    (``UNSAFE_DISABLE=lease``, for bench/ and the chaos suite's control) holds nothing."""

    scope: str
    value: str
    fence: int
    client: redis.asyncio.Redis
    guarded: bool = True

    async def check(self) -> None:
        """Raise LeaseLost unless this lease is still the scope's holder (and renew it)."""
        if not self.guarded:
            return
        held = await self.client.register_script(_CHECK_AND_RENEW)(
            keys=[keys.lease(self.scope)], args=[self.value, LEASE_TTL_MS])
        if not held:
            raise LeaseLost(f"lease on {self.scope} (fence {self.fence}) was lost")

    async def release(self) -> None:
        if self.guarded:
            await self.client.register_script(_RELEASE)(
                keys=[keys.lease(self.scope)], args=[self.value])


async def acquire(client: redis.asyncio.Redis, scope: str, *, guarded: bool = True
                  ) -> Lease | None:
    """Take the scope's lease, or None when another worker holds it."""
    if not guarded:
        return Lease(scope=scope, value="", fence=0, client=client, guarded=False)
    value = secrets.token_hex(16)
    fence = await client.register_script(_ACQUIRE)(
        keys=[keys.lease(scope), keys.fence(scope)], args=[value, LEASE_TTL_MS, keys.SCOPE_TTL_S])
    if not fence:
        return None
    return Lease(scope=scope, value=value, fence=int(fence), client=client)


async def push_pending(client: redis.asyncio.Redis, scope: str, change: bytes) -> None:
    """Leave a change for whoever holds (or next takes) the scope's lease."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.rpush(keys.pending(scope), change)
        pipe.expire(keys.pending(scope), keys.SCOPE_TTL_S)
        await pipe.execute()


async def take_pending(client: redis.asyncio.Redis, scope: str) -> list[bytes]:
    """Every change left for the scope, including any a killed holder did not finish."""
    taken = await client.eval(
        _TAKE, 2, keys.pending(scope), keys.inflight(scope), keys.SCOPE_TTL_S
    )
    return list(taken)


async def judged(client: redis.asyncio.Redis, scope: str, guids: list[str]) -> set[str]:
    """Which of ``guids`` the scope has judged already (a retried job brings one back)."""
    if not guids:
        return set()
    found = await client.smismember(keys.judged(scope), guids)
    return {guid for guid, seen in zip(guids, found, strict=True) if seen}


async def unjudge(client: redis.asyncio.Redis, scope: str, guid: str) -> None:
    """Let the scope judge the delivery ``guid`` again (``reactor replay``)."""
    await client.srem(keys.judged(scope), guid)


async def mark_judged(client: redis.asyncio.Redis, scope: str, guids: list[str]) -> None:
    if guids:
        async with client.pipeline(transaction=True) as pipe:
            pipe.sadd(keys.judged(scope), *guids)
            pipe.expire(keys.judged(scope), JUDGED_TTL_S)
            await pipe.execute()


async def finish_pending(client: redis.asyncio.Redis, scope: str) -> None:
    """The taken changes are evaluated and applied: forget them."""
    await client.delete(keys.inflight(scope))


async def has_pending(client: redis.asyncio.Redis, scope: str) -> bool:
    return bool(await client.exists(keys.pending(scope)))
