"""What the reactor remembers between evaluations, in Redis. GitHub stays the source of truth.

- per issue, one hash: the last status the reactor accepted (SPEC §3: a transition is checked
  from it to the status read now) and when the issue entered it (R8 timeouts count from
  then), and the competition and stage the issue belongs to (R3:
  they never change, unless a maintainer moves the issue), so every change of an issue is
  judged in its own competition; and, per label, who changed it last and the undos in a
  row between two actors that change continues (R12 ping-pong, :mod:`reactor.core.rally`);
- dependencies: the issues GitHub lists as blocking each issue, as its ``issue_dependencies``
  webhooks said (R7);
- reverts: when the reactor reverted each issue, for the revert-war cap;
- comment markers: a comment is posted once per marker, retries and replays included;
- expectations: the writes the reactor is about to make, so their webhook echoes are
  recognised as its own (R10) even where an agent shares the App's identity; an echo once
  recognised stays recognised (a retried job, a replay);
- creations: the issue the reactor created for an idempotency key, so a hand-off creates the
  next stage's issue at most once however many workers race.

Everything expires once it can no longer matter (:data:`ISSUE_TTL_S` after an issue's last
judgement, markers after a month), so memory does not grow with a repository's history. What
expires is rebuilt from GitHub: with no memory of an issue, what GitHub shows is taken as
accepted; markers and creation keys are also written into the comment and issue bodies.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import redis.asyncio
from redis.asyncio.client import Pipeline

from reactor.core.rally import Rallies, dumps
from reactor.store import keys

ISSUE_TTL_S = 30 * 24 * 3600
RALLIES = "rallies"  # the issue's hash field: who changed each label last (R12)
MARKER_TTL_S = 30 * 24 * 3600
_PENDING = "pending"  # claimed, the comment not yet confirmed on GitHub ("1" once it is)
EXPECTATION_TTL_S = 600
OWN_TTL_S = 7 * 24 * 3600  # longer than GitHub keeps deliveries for redelivery (3 days)
CREATION_TTL_S = 90 * 24 * 3600
PENDING_CREATION = b"pending"

# Consume one expected echo, once per delivery: a retried job or a replay of the same
# delivery finds it recognised already.
_CONSUME = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
if tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') > 0 then
  redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
  return 1
end
return 0
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class Recalled:
    """What the reactor remembers of one issue (None: nothing); ``since`` is when it entered
    ``status`` (an ISO 8601 time)."""

    status: str | None = None
    comp: str | None = None
    stage: str | None = None
    since: str | None = None
    rallies: str | None = None


async def recall(
    client: redis.asyncio.Redis, repo_id: int, issues: Iterable[int]
) -> dict[int, Recalled]:
    """The memory of each of ``issues`` the reactor remembers anything of."""
    numbers = list(issues)
    async with client.pipeline(transaction=False) as pipe:
        for number in numbers:
            pipe.hgetall(keys.issue(repo_id, number))
        found = await pipe.execute()
    out = {}
    for number, fields in zip(numbers, found, strict=True):
        if fields:
            values = {_text(k): _text(v) for k, v in fields.items()}
            out[number] = Recalled(values.get("status"), values.get("comp"), values.get("stage"),
                                   values.get("since"), values.get(RALLIES))
    return out


async def remember(
    client: redis.asyncio.Redis, repo_id: int, *, statuses: Mapping[int, str],
    identities: Mapping[int, tuple[str, str]], entered: Mapping[int, str] | None = None,
) -> None:
    """Record accepted statuses (``entered``: when the issues entered them) and (comp, stage)
    identities; each issue's memory then lives :data:`ISSUE_TTL_S` from now."""
    async with client.pipeline(transaction=False) as pipe:
        queue_remember(pipe, repo_id, statuses=statuses, identities=identities, entered=entered)
        if len(pipe):
            await pipe.execute()


def queue_remember(
    pipe: Pipeline, repo_id: int, *, statuses: Mapping[int, str],
    identities: Mapping[int, tuple[str, str]], entered: Mapping[int, str] | None = None,
    rallies: Mapping[int, Rallies] | None = None,
) -> None:
    """:func:`remember`, queued on ``pipe`` (a turn's closing transaction), with the issues'
    ``rallies`` (R12) when given: one write per issue."""
    entered, rallies = entered or {}, rallies or {}
    for number in set(statuses) | set(identities) | set(rallies):
        fields: dict[str, str] = {}
        if number in rallies:
            fields[RALLIES] = dumps(rallies[number])
        if number in statuses:
            fields["status"] = statuses[number]
        if number in entered:
            fields["since"] = entered[number]
        if number in identities:
            fields["comp"], fields["stage"] = identities[number]
        key = keys.issue(repo_id, number)
        pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
        pipe.expire(key, ISSUE_TTL_S)


async def record_dependency(client: redis.asyncio.Redis, repo_id: int, blocked: int,
                            blocking: int, *, added: bool) -> None:
    """GitHub now lists (or no longer lists) ``blocking`` among ``blocked``'s blockers."""
    key = keys.dependencies(repo_id, blocked)
    async with client.pipeline(transaction=True) as pipe:
        (pipe.sadd if added else pipe.srem)(key, blocking)
        pipe.expire(key, ISSUE_TTL_S)
        await pipe.execute()


async def set_dependencies(client: redis.asyncio.Redis, repo_id: int, blocked: int,
                           blockers: frozenset[int]) -> None:
    """What GitHub lists now, read afresh (``reactor reconcile``), replaces what was recorded."""
    key = keys.dependencies(repo_id, blocked)
    async with client.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        if blockers:
            pipe.sadd(key, *blockers)
            pipe.expire(key, ISSUE_TTL_S)
        await pipe.execute()


async def dependencies(client: redis.asyncio.Redis, repo_id: int, issues: Iterable[int]
                       ) -> dict[int, frozenset[int]]:
    """The blockers recorded for each of ``issues`` that has any."""
    numbers = list(issues)
    async with client.pipeline(transaction=False) as pipe:
        for number in numbers:
            pipe.smembers(keys.dependencies(repo_id, number))
        found = await pipe.execute()
    return {n: frozenset(int(m) for m in members)
            for n, members in zip(numbers, found, strict=True) if members}


async def competition_of(client: redis.asyncio.Redis, repo_id: int, issue: int) -> str | None:
    found = await client.hget(keys.issue(repo_id, issue), "comp")
    return None if found is None else _text(found)


async def revert_counts(
    client: redis.asyncio.Redis, repo_id: int, issues: Iterable[int], *, window_s: float,
    now: float | None = None,
) -> dict[int, int]:
    """How many times each issue was reverted within the last ``window_s`` seconds."""
    since = (now if now is not None else time.time()) - window_s
    numbers = list(issues)
    async with client.pipeline(transaction=False) as pipe:
        for number in numbers:
            pipe.zcount(keys.reverts(repo_id, number), since, "+inf")
        counts = await pipe.execute()
    return {n: int(c) for n, c in zip(numbers, counts, strict=True) if c}


def queue_revert(pipe: Pipeline, repo_id: int, issue: int, *, delivery: str, window_s: float,
                 now: float | None = None) -> None:
    """Record, on ``pipe``, that the reactor reverted ``issue`` (the revert-war count)."""
    stamp = now if now is not None else time.time()
    key = keys.reverts(repo_id, issue)
    pipe.zadd(key, {delivery: stamp})
    pipe.zremrangebyscore(key, "-inf", stamp - window_s)
    pipe.expire(key, max(1, int(window_s)))


async def record_revert(
    client: redis.asyncio.Redis, repo_id: int, issue: int, *, delivery: str, window_s: float,
    now: float | None = None,
) -> None:
    async with client.pipeline(transaction=True) as pipe:
        queue_revert(pipe, repo_id, issue, delivery=delivery, window_s=window_s, now=now)
        await pipe.execute()


def queue_forget_reverts(pipe: Pipeline, repo_id: int, issue: int) -> None:
    """A maintainer handed the issue back: the revert-war count starts afresh."""
    pipe.delete(keys.reverts(repo_id, issue))


async def forget_reverts(client: redis.asyncio.Redis, repo_id: int, issue: int) -> None:
    await client.delete(keys.reverts(repo_id, issue))


class MarkerClaim(StrEnum):
    """Who may post the comment of a marker: this caller (``CLAIMED``), nobody (``POSTED``:
    it was), or whoever finds it missing (``UNCONFIRMED``: claimed by a worker that did not
    confirm the post — it may have died between the claim and the ``POST``)."""

    CLAIMED = "claimed"
    POSTED = "posted"
    UNCONFIRMED = "unconfirmed"


async def claim_marker(client: redis.asyncio.Redis, marker: str) -> MarkerClaim:
    """Claim ``marker`` before posting its comment (see :class:`MarkerClaim`)."""
    key = keys.marker(marker)
    if await client.set(key, _PENDING, nx=True, ex=MARKER_TTL_S):
        return MarkerClaim.CLAIMED
    found = await client.get(key)
    return MarkerClaim.UNCONFIRMED if found == _PENDING.encode() else MarkerClaim.POSTED


async def confirm_marker(client: redis.asyncio.Redis, marker: str) -> None:
    """The marker's comment is on GitHub."""
    await client.set(keys.marker(marker), "1", ex=MARKER_TTL_S)


async def release_marker(client: redis.asyncio.Redis, marker: str) -> None:
    """The comment could not be posted: let a retry claim the marker again."""
    await client.delete(keys.marker(marker))


async def expect(client: redis.asyncio.Redis, repo_id: int, target: int | str, *echoes: str
                 ) -> None:
    """Record that the reactor's next write will come back as the webhooks ``echoes``
    (``labeled:<name>``, ``closed``, …) on issue ``target``, or on the issue it creates
    for a key (``target`` = ``create:<key>``)."""
    key = keys.expectations(repo_id, target)
    async with client.pipeline(transaction=True) as pipe:
        for echo in echoes:
            pipe.hincrby(key, echo, 1)
        pipe.expire(key, EXPECTATION_TTL_S)
        await pipe.execute()


async def consume_expectation(
    client: redis.asyncio.Redis, repo_id: int, target: int | str, echo: str, *, delivery: str
) -> bool:
    """True if the delivery ``delivery`` (webhook ``echo``) is an expected echo: consumed
    now, or recognised before."""
    taken = await client.eval(
        _CONSUME, 2, keys.expectations(repo_id, target), keys.own(delivery), echo, OWN_TTL_S
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
    if await client.set(redis_key, PENDING_CREATION, nx=True, ex=CREATION_TTL_S):
        return CreationClaim(number=None, claimed=True)
    value = await client.get(redis_key)
    if value is None or value == PENDING_CREATION:
        return CreationClaim(number=None, claimed=False)
    return CreationClaim(number=int(_text(value)), claimed=False)


async def finish_creation(
    client: redis.asyncio.Redis, repo_id: int, key: str, number: int
) -> None:
    await client.set(keys.created(repo_id, key), number, ex=CREATION_TTL_S)


async def abandon_creation(client: redis.asyncio.Redis, repo_id: int, key: str) -> None:
    """The creation failed (or its issue is gone): let the next decision claim the key."""
    await client.delete(keys.created(repo_id, key))


_ISSUE_KEY = re.compile(keys.ISSUE.format(repo_id=r"(\d+)", issue=r"(\d+)"))


async def remembered(client: redis.asyncio.Redis, repo_id: int | None = None
                     ) -> dict[int, list[int]]:
    """Per repository id (``repo_id``'s only, if given), the numbers of the issues the
    reactor remembers anything of (a ``SCAN``: for operators' views, never the hot path)."""
    pattern = keys.ISSUE.format(repo_id="*" if repo_id is None else repo_id, issue="*")
    numbers: dict[int, list[int]] = {}
    async for key in client.scan_iter(match=pattern, count=1000):
        found = _ISSUE_KEY.fullmatch(key.decode() if isinstance(key, bytes) else key)
        if found is not None:
            numbers.setdefault(int(found[1]), []).append(int(found[2]))
    return numbers
