"""Per-competition leases with fencing tokens.

Work on one competition (one issue, outside any competition) is serialised across every worker
process and machine by a Redis lease: ``SET key value NX PX ttl``, taken with its fencing
token by the script that begins each round of the competition's turn
(:func:`reactor.store.turns.begin`); this module checks and releases it. The fencing token
is a number that only grows, so a worker whose lease expired (a long GC pause, a partition)
finds out before its next write: :meth:`Lease.check` fails once another worker holds the
scope, and the stale worker stops instead of writing over the new holder's decisions. GitHub
cannot check the token itself (it has no conditional writes), so the check runs in Redis
right before every write.
See https://martin.kleppmann.com/2016/02/08/how-to-do-distributed-locking.html.
"""

from __future__ import annotations

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

