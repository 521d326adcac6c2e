"""What the reactor remembers between evaluations, in Redis. GitHub stays the source of truth.

- accepted statuses: the last status the reactor accepted per issue (SPEC §3: a transition is
  checked from it to the status read now);
- competitions: the competition each issue was first seen in (R3: it never changes), so
  every change of an issue is judged in its own competition;
- reverts: when the reactor reverted each issue, for the revert-war cap;
- comment markers: a comment is posted once per marker, retries and replays included;
- expectations: the label writes the reactor is about to make, so their webhook echoes are
  recognised as its own (R10) even where an agent shares the App's identity;
- creations: the issue the reactor created for an idempotency key, so a hand-off creates the
  next stage's issue at most once however many workers race.

If Redis is wiped, ``reactor reconcile`` reseeds accepted statuses from GitHub; markers and
creation keys are also written into the comment and issue bodies, where they can be found.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import redis.asyncio

from reactor.store import keys

REVERT_WINDOW_S = 3600
MARKER_TTL_S = 30 * 24 * 3600
EXPECTATION_TTL_S = 600
PENDING_CREATION = b"pending"

_CONSUME = """
if tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') > 0 then
  redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
  return 1
end
return 0
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def accepted(
    client: redis.asyncio.Redis, repo_id: int, issues: Iterable[int]
) -> dict[int, str]:
    """The last accepted status of each of ``issues`` that has one."""
    return await _fields(client, keys.accepted(repo_id), issues)


async def set_accepted(
    client: redis.asyncio.Redis, repo_id: int, statuses: Mapping[int, str]
) -> None:
    if statuses:
        await client.hset(keys.accepted(repo_id), mapping=dict(statuses))  # type: ignore[arg-type]


async def competition_of(client: redis.asyncio.Redis, repo_id: int, issue: int) -> str | None:
    key = keys.competitions(repo_id)
    found: bytes | None = await client.hget(key, str(issue))  # type: ignore[assignment]
    return None if found is None else found.decode()


async def competitions(
    client: redis.asyncio.Redis, repo_id: int, issues: Iterable[int]
) -> dict[int, str]:
    """The remembered competition of each of ``issues`` that has one."""
    return await _fields(client, keys.competitions(repo_id), issues)


async def _fields(client: redis.asyncio.Redis, key: str, issues: Iterable[int]) -> dict[int, str]:
    numbers = list(issues)
    if not numbers:
        return {}
    found = await client.hmget(key, [str(n) for n in numbers])
    return {n: _text(v) for n, v in zip(numbers, found, strict=True) if v is not None}


async def remember_competition(
    client: redis.asyncio.Redis, repo_id: int, issues: Iterable[int], comp: str
) -> None:
    """Record ``comp`` for issues not yet remembered (the first competition stays)."""
    async with client.pipeline(transaction=False) as pipe:
        for number in issues:
            pipe.hsetnx(keys.competitions(repo_id), str(number), comp)
        await pipe.execute()


async def revert_counts(
    client: redis.asyncio.Redis, repo_id: int, issues: Iterable[int], *, now: float | None = None
) -> dict[int, int]:
    """How many times each issue was reverted within the window."""
    since = (now if now is not None else time.time()) - REVERT_WINDOW_S
    numbers = list(issues)
    async with client.pipeline(transaction=False) as pipe:
        for number in numbers:
            pipe.zcount(keys.reverts(repo_id, number), since, "+inf")
        counts = await pipe.execute()
    return {n: int(c) for n, c in zip(numbers, counts, strict=True) if c}


async def record_revert(
    client: redis.asyncio.Redis, repo_id: int, issue: int, *, delivery: str,
    now: float | None = None,
) -> None:
    stamp = now if now is not None else time.time()
    key = keys.reverts(repo_id, issue)
    async with client.pipeline(transaction=True) as pipe:
        pipe.zadd(key, {delivery: stamp})
        pipe.zremrangebyscore(key, "-inf", stamp - REVERT_WINDOW_S)
        pipe.expire(key, REVERT_WINDOW_S)
        await pipe.execute()


async def claim_marker(client: redis.asyncio.Redis, marker: str) -> bool:
    """True the first time ``marker`` is claimed: only then may its comment be posted."""
    return bool(await client.set(keys.marker(marker), "1", nx=True, ex=MARKER_TTL_S))


async def release_marker(client: redis.asyncio.Redis, marker: str) -> None:
    """The comment could not be posted: let a retry claim the marker again."""
    await client.delete(keys.marker(marker))


async def expect(client: redis.asyncio.Redis, repo_id: int, issue: int, echo: str) -> None:
    """Record that the reactor's next write will come back as the webhook ``echo``."""
    key = keys.expectations(repo_id, issue)
    async with client.pipeline(transaction=True) as pipe:
        pipe.hincrby(key, echo, 1)
        pipe.expire(key, EXPECTATION_TTL_S)
        await pipe.execute()


async def consume_expectation(
    client: redis.asyncio.Redis, repo_id: int, issue: int, echo: str
) -> bool:
    """True if ``echo`` was expected (and is now consumed): the webhook is the reactor's own."""
    taken = await client.eval(
        _CONSUME, 1, keys.expectations(repo_id, issue), echo
    )
    return bool(taken)


@dataclass(frozen=True, slots=True)
class CreationClaim:
    """What :func:`begin_creation` found: the issue made for the key, or who may make it."""

    number: int | None  # the issue already created for the key
    claimed: bool  # this caller claimed the key and now creates the issue


async def begin_creation(client: redis.asyncio.Redis, repo_id: int, key: str) -> CreationClaim:
    """The issue already created for ``key``, or the claim to create it.

    ``CreationClaim(None, False)`` means another worker claimed the key and has not finished:
    with the competition's lease now held by the caller, that worker died mid-creation, so the
    caller looks for the creation marker in the competition's issues before creating anything.
    """
    redis_key = keys.created(repo_id, key)
    if await client.set(redis_key, PENDING_CREATION, nx=True):
        return CreationClaim(number=None, claimed=True)
    value = await client.get(redis_key)
    if value is None or value == PENDING_CREATION:
        return CreationClaim(number=None, claimed=False)
    return CreationClaim(number=int(_text(value)), claimed=False)


async def finish_creation(
    client: redis.asyncio.Redis, repo_id: int, key: str, number: int
) -> None:
    await client.set(keys.created(repo_id, key), number)


async def abandon_creation(client: redis.asyncio.Redis, repo_id: int, key: str) -> None:
    """The creation failed: let the next decision claim the key again."""
    await client.delete(keys.created(repo_id, key))
