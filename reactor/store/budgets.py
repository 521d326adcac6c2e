"""R11's counts: what each actor did in an installation, per kind, within a moving window.

Per installation, kind (moves, issues, comments) and actor, one sorted set holds the
deliveries of what the actor did, each scored by when it was done; a delivery counted twice
(a retried round) counts once, at the same time. When it was done is when the web process
received its webhook (``received_at``: the reactor's own clock, nothing in a payload an
agent writes), never later than the count (a clock a little ahead cannot keep a move in the
window longer). It is not when a round counts it: a burst that waited behind a busy round
or a settle window is as dense as it was made, neither bunched up by a slow round nor spread
out by it. The count is of those within the kind's window that ends at the newest of the
round's deliveries (``ZCOUNT``), not at the clock, so a backlog cannot carry a flood out of
the window unseen either. It is exact over the moving window for any round that counts no
more than a window behind the newest move counted (a set keeps two windows' worth).

The actor whose overrun paused a competition is remembered beside it. A maintainer's resume
forgives that actor everything it did up to the resume: its sets are dropped, and the time
the resume is judged is kept as the actor's *floor* (:func:`keys.budget_floor`, for the
longest window, :data:`FLOOR_TTL_S`), and nothing under it counts. Moves made before the
resume that a round counts after it (still queued, or a retried round's) are scored under
the floor, so they cannot pause the competition a second time: they did once, and the
maintainer has seen to it. The floor is the judging rather than the maintainer's own
webhook, so what arrived in between (a round and its settle window at most) is forgiven too.

Counting a round costs three commands per actor and kind, sent in one pipeline (one round
trip for the round): ``ZADD``, ``EVAL`` of :data:`_COUNT` (a ``GET`` of the floor and the
``ZCOUNT`` from the later of the window's start and the floor) and ``EXPIRE``. One count in
:data:`TRIM_EVERY` also drops, in the script, what is two windows old or under the floor
(``ZREMRANGEBYSCORE``), and an actor idle for two windows leaves nothing. The script's text
goes with each ``EVAL`` (a few hundred bytes; Redis keeps it compiled by its hash), since
redis-py's pipeline checks a registered script with a ``SCRIPT EXISTS`` round trip of its own.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping, Sequence
from datetime import timedelta

import redis.asyncio
from redis.asyncio.client import Pipeline

from reactor.core.config import Limits
from reactor.store import keys

PAUSED_TTL_S = 30 * 24 * 3600
FLOOR_TTL_S = int(max(Limits().windows().values()).total_seconds()) + 1  # the longest window
TRIM_EVERY = 16

# KEYS: the actor's set of one kind, the actor's floor. ARGV: the window's start and end
# (what is counted lies after the start and the floor, up to the end), and where to trim
# below ("": not this time; nothing under the floor counts either).
_COUNT = """
local start, trim = tonumber(ARGV[1]), tonumber(ARGV[3])
local floor = tonumber(redis.call('GET', KEYS[2]))
if floor and floor > start then start = floor end
if trim then
  if floor and floor > trim then trim = floor end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('(%.17g', trim))
end
return redis.call('ZCOUNT', KEYS[1], string.format('(%.17g', start), ARGV[2])
"""


async def count(client: redis.asyncio.Redis, installation_id: int,
                done: Mapping[tuple[str, str], Mapping[str, float | None]],
                windows: Mapping[str, timedelta], *, now: float | None = None
                ) -> dict[tuple[str, str], int]:
    """Add the deliveries each (actor, kind) of ``done`` did, each with when it happened
    (seconds since the epoch; None: unknown, so now), and answer each one's count within the
    window of its kind (``windows``) that ends at the newest of them."""
    now = time.time() if now is None else now
    counted = [(key, {guid: min(at or now, now) for guid, at in deliveries.items()})
               for key, deliveries in done.items() if deliveries]
    async with client.pipeline(transaction=False) as pipe:
        for (actor, kind), scores in counted:
            key, window = keys.budget(installation_id, kind, actor), windows[kind]
            newest = max(scores.values())
            pipe.zadd(key, scores)
            span = window.total_seconds()
            pipe.eval(_COUNT, 2, key, keys.budget_floor(installation_id, actor),
                      repr(newest - span), repr(newest),
                      repr(newest - 2 * span) if _trims(scores) else "")
            pipe.expire(key, int(2 * span) + 1)
        replies = await pipe.execute()
    return {key: int(replies[3 * i + 1]) for i, (key, _) in enumerate(counted)}


def _trims(deliveries: Mapping[str, float]) -> bool:
    """Whether this count also drops what is past counting: one count in :data:`TRIM_EVERY`,
    by its first delivery's GUID (what is left meanwhile is not counted, only kept)."""
    return zlib.crc32(next(iter(deliveries)).encode()) % TRIM_EVERY == 0


def queue_paused(pipe: Pipeline, repo_id: int, comp: str, actor: str) -> None:
    """Remember, on ``pipe``, whose overrun paused the competition."""
    pipe.set(keys.paused_by(repo_id, comp), actor, ex=PAUSED_TTL_S)


async def resumed(client: redis.asyncio.Redis, installation_id: int, repo_id: int, comp: str,
                  kinds: Sequence[str], *, now: float | None = None) -> None:
    """A maintainer resumed the competition (judged ``now``): what the actor that paused it
    did until then no longer counts, whenever a round counts it."""
    actor = await client.getdel(keys.paused_by(repo_id, comp))
    if actor is None:
        return
    login = actor.decode() if isinstance(actor, bytes) else str(actor)
    now = time.time() if now is None else now
    async with client.pipeline(transaction=True) as pipe:
        pipe.set(keys.budget_floor(installation_id, login), repr(now), ex=FLOOR_TTL_S)
        pipe.delete(*(keys.budget(installation_id, kind, login) for kind in kinds))
        await pipe.execute()
