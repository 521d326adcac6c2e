"""R11's counts: what each actor did in an installation, per kind, within a moving window.

Per installation, kind (moves, issues, comments) and actor, one sorted set holds the
deliveries of what the actor did, scored by when; the count is of those within the kind's
window (``ZCOUNT``), so it is exact over the moving window, and a delivery counted twice (a
retried round) counts once. Counting a round costs three commands per actor and kind
(``ZADD``, ``ZCOUNT``, ``EXPIRE``); one count in :data:`TRIM_EVERY` also drops what left
the window, so a set holds little more than a window's worth, and an actor idle for a
window leaves nothing. The actor whose overrun
paused a competition is remembered beside it, so the maintainer's resume can start that
actor's counts afresh.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping, Sequence
from datetime import timedelta

import redis.asyncio
from redis.asyncio.client import Pipeline

from reactor.store import keys

PAUSED_TTL_S = 30 * 24 * 3600
TRIM_EVERY = 16


async def count(client: redis.asyncio.Redis, installation_id: int,
                done: Mapping[tuple[str, str], Sequence[str]], windows: Mapping[str, timedelta],
                *, now: float | None = None) -> dict[tuple[str, str], int]:
    """Add the deliveries each (actor, kind) of ``done`` did now, and answer each one's count
    within the window of its kind (``windows``)."""
    now = time.time() if now is None else now
    counted = list(done.items())
    async with client.pipeline(transaction=False) as pipe:
        for (actor, kind), deliveries in counted:
            key, window = keys.budget(installation_id, kind, actor), windows[kind]
            if _trims(deliveries):
                pipe.zremrangebyscore(key, "-inf", f"({now - window.total_seconds()}")
            pipe.zadd(key, dict.fromkeys(deliveries, now))
            pipe.zcount(key, f"({now - window.total_seconds()}", "+inf")
            pipe.expire(key, int(window.total_seconds()) + 1)
        replies = await pipe.execute()
    return {key: int(replies[i]) for i, key in _count_replies(counted, replies)}


def _trims(deliveries: Sequence[str]) -> bool:
    """Whether this count also drops what left the window: one count in :data:`TRIM_EVERY`,
    by its first delivery's GUID (what is left meanwhile is not counted, only kept)."""
    return zlib.crc32(deliveries[0].encode()) % TRIM_EVERY == 0


def _count_replies(counted: list[tuple[tuple[str, str], Sequence[str]]], replies: list[object]
                   ) -> list[tuple[int, tuple[str, str]]]:
    """Where each count's ``ZCOUNT`` answer is among the pipeline's replies."""
    found, at = [], 0
    for key, deliveries in counted:
        at += 1 if _trims(deliveries) else 0
        found.append((at + 1, key))
        at += 3
    return found


def queue_paused(pipe: Pipeline, repo_id: int, comp: str, actor: str) -> None:
    """Remember, on ``pipe``, whose overrun paused the competition."""
    pipe.set(keys.paused_by(repo_id, comp), actor, ex=PAUSED_TTL_S)


async def resumed(client: redis.asyncio.Redis, installation_id: int, repo_id: int, comp: str,
                  kinds: Sequence[str]) -> None:
    """A maintainer resumed the competition: the counts of the actor that paused it start
    afresh."""
    actor = await client.getdel(keys.paused_by(repo_id, comp))
    if actor is not None:
        login = actor.decode() if isinstance(actor, bytes) else str(actor)
        await client.delete(*(keys.budget(installation_id, kind, login) for kind in kinds))
