"""Per-competition leases with fencing tokens.

Work on one competition (one issue, outside any competition) is serialised across every worker
process and machine by a Redis lease: ``SET key value NX PX ttl``, taken by each round of the
competition's turn (:mod:`reactor.store.turns`). Each lease carries a fencing token, a number
that only grows, so a worker whose lease expired (a long GC pause, a partition) finds out
before its next write: :meth:`Lease.check` fails once another worker holds the scope, and the
stale worker stops instead of writing over the new holder's decisions. GitHub cannot check
the token itself (it has no conditional writes), so the check runs in Redis right before
every write.
See https://martin.kleppmann.com/2016/02/08/how-to-do-distributed-locking.html.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import redis.asyncio

from reactor.core.errors import LeaseLost
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
