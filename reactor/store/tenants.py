"""Forgetting a tenant: what the reactor keeps in Redis of repositories the App has lost.

SPEC §6: an uninstalled installation's data is forgotten. When GitHub says the App was
uninstalled (``installation.deleted``) or lost repositories
(``installation_repositories.removed``), :func:`forget_installation` and
:func:`forget_repositories` delete every key the reactor keeps for those repositories — each
issue's memory, reverts, dependencies, expected echoes and creation claims, the cached config
and the problems reported about it, and each competition's pending work, lease, fencing
token, judged deliveries and hand-off journals — and the installation's cached GitHub answers
(which hold those repositories' issues); for an uninstalled installation also its token, its
rate-limit pause, its pacing window and its ``/metrics`` rate-limit gauge.

Which keys those are is read from the templates of :mod:`reactor.store.keys`: every template
whose first field is a repository id (or a scope, which begins with one) or an installation
id (:data:`REPOSITORY_FAMILIES`, :data:`INSTALLATION_FAMILIES`), so a template added there is
forgotten too. A family whose key is its prefix and the id is deleted by name; the others are
found with ``SCAN … MATCH <prefix>*`` (never ``KEYS``, which blocks Redis) — one pass per
family, however many repositories — and deleted with ``UNLINK`` in batches, so Redis frees
them off its main thread.

GitHub marks the ``repositories`` list of ``installation.deleted`` optional, so the reactor
keeps its own index of the repositories it has seen with each installation
(:func:`index`: when the App is installed or given repositories, when the sweep lists an
installation's repositories, and when a worker first runs a turn of a repository —
:func:`note`, once a day per process and repository, so the hot path costs nothing more) and
forgets those when the list is absent (:func:`indexed`). A repository that moved to another
installation since is left alone: each repository also keeps the installation it was last
seen with.

Each forgotten repository is marked (:data:`keys.FORGOTTEN_REPOS`, with when) for as long as
audit records may name it (:data:`reactor.store.audit.MAX_AGE`), and the dashboard leaves
out what those older records say of it (:func:`forgotten`); being given the repository again
lifts the mark.

Kept: the audit stream, capped by count (:data:`keys.AUDIT_MAXLEN` records) and by age
(:data:`reactor.store.audit.MAX_AGE`), since an operator may need to see what the reactor did
before the uninstall; stored deliveries, keyed by GUID, which expire after
:data:`keys.DELIVERY_TTL_S`; comment markers, which name no repository and hold no tenant
content.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

import redis.asyncio

from reactor.core.view import Repo
from reactor.store import keys, memory
from reactor.store.audit import MAX_AGE

SCAN_COUNT = 1000  # keys Redis looks at per SCAN call
UNLINK_BATCH = 500  # keys per UNLINK
NOTE_EVERY_S = 24 * 3600  # a process writes a repository it runs turns of into the index this often
NOTED_MAX = 10_000  # repositories a process remembers having written (then it starts afresh)
# The index outlives every key kept per repository (a creation claim, 90 days, is the longest)
# however long ago a process last wrote it.
INDEX_TTL_S = memory.CREATION_TTL_S + 2 * NOTE_EVERY_S
FORGOTTEN_KEPT = 10_000  # marks of forgotten repositories kept at most (the newest)
_FIELD = re.compile(r"\{(\w+)\}")
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


@dataclass(frozen=True, order=True)
class Family:
    """Keys of one template: ``prefix`` then the owner's id, then (unless ``exact``) more."""

    prefix: str
    exact: bool

    def owner(self, key: str) -> str | None:
        """The id a key of this family belongs to (None: not of this family)."""
        if not key.startswith(self.prefix):
            return None
        rest = key[len(self.prefix):]
        return rest if self.exact else rest.partition(":")[0]


def families(*fields: str) -> tuple[Family, ...]:
    """The families of every ``reactor:`` key template whose first field is one of ``fields``
    (a ``scope`` always begins with its repository's id, so it is never exact)."""
    found = set()
    for template in vars(keys).values():
        if not isinstance(template, str) or not template.startswith(keys.PREFIX):
            continue
        first = _FIELD.search(template)
        if first is not None and first[1] in fields:
            exact = first.end() == len(template) and first[1] != "scope"
            found.add(Family(template[:first.start()], exact))
    return tuple(sorted(found))


REPOSITORY_FAMILIES = families("repo_id", "scope")
INSTALLATION_FAMILIES = families("installation_id")
CACHED_ANSWERS = Family(keys.ETAG[:keys.ETAG.index("{")], exact=False)


async def forget_installation(
    client: redis.asyncio.Redis, installation_id: int, repositories: Collection[Repo], *,
    now: datetime,
) -> int:
    """Forget an uninstalled installation and its ``repositories``; how many keys went."""
    owner = str(installation_id)
    await _mark(client, repositories, now=now)
    gone = await _forget(client, REPOSITORY_FAMILIES, {str(r.id) for r in repositories})
    gone += await _forget(client, INSTALLATION_FAMILIES, {owner})
    gone += int(await client.hdel(keys.RATE_REMAINING, owner))
    return gone


async def forget_repositories(
    client: redis.asyncio.Redis, installation_id: int, repositories: Collection[Repo], *,
    now: datetime,
) -> int:
    """Forget ``repositories``, taken from an installation that stays, and the installation's
    cached GitHub answers (they may hold those repositories' issues; the others' are read
    again); how many keys went."""
    await _mark(client, repositories, now=now)
    ids = {str(r.id) for r in repositories}
    gone = await _forget(client, REPOSITORY_FAMILIES, ids)
    if ids:
        await client.hdel(keys.installation_repos(installation_id), *ids)
    return gone + await _forget(client, (CACHED_ANSWERS,), {str(installation_id)})


async def index(client: redis.asyncio.Redis, installation_id: int,
                repositories: Collection[Repo]) -> None:
    """Write ``repositories`` into the installation's index, as last seen with it."""
    if not repositories:
        return
    async with client.pipeline(transaction=False) as pipe:
        named = keys.installation_repos(installation_id)
        pipe.hset(named, mapping={str(r.id): r.full_name for r in repositories})
        pipe.expire(named, INDEX_TTL_S)
        for repo in repositories:
            pipe.set(keys.repo_installation(repo.id), installation_id, ex=INDEX_TTL_S)
        await pipe.execute()


_NOTED: dict[tuple[int, int, int], float] = {}  # (client, installation, repository) → when


async def note(client: redis.asyncio.Redis, installation_id: int, repo: Repo) -> None:
    """:func:`index` the repository a turn runs for, unless this process did so in the last
    :data:`NOTE_EVERY_S` (a turn of a repository seen today costs no Redis command)."""
    seen, now = (id(client), installation_id, repo.id), time.monotonic()
    if now - _NOTED.get(seen, -NOTE_EVERY_S) < NOTE_EVERY_S:
        return
    await index(client, installation_id, [repo])
    if len(_NOTED) >= NOTED_MAX:  # a process's memory of what it wrote stays small
        _NOTED.clear()
    _NOTED[seen] = now


async def indexed(client: redis.asyncio.Redis, installation_id: int) -> tuple[Repo, ...]:
    """The repositories seen with the installation that were not seen with another since,
    in order of id (an uninstall forgets these as well as those its payload lists)."""
    found = await client.hgetall(keys.installation_repos(installation_id))
    repos = sorted((int(_text(k)), _text(v)) for k, v in found.items() if _text(k).isdigit())
    if not repos:
        return ()
    owners = [None if o is None else _text(o) for o in
              await client.mget([keys.repo_installation(i) for i, _ in repos])]
    return tuple(_repo(i, name) for (i, name), owner in zip(repos, owners, strict=True)
                 if owner in (None, str(installation_id)))


async def unmark(client: redis.asyncio.Redis, repositories: Collection[Repo]) -> None:
    """The App was given ``repositories`` (again): the dashboard shows them again."""
    ids = {str(r.id) for r in repositories}
    marked: list[bytes] = await client.zrange(keys.FORGOTTEN_REPOS, 0, -1)  # type: ignore[assignment]
    back = [m for m in marked if _text(m).partition(" ")[0] in ids]
    if back:
        await client.zrem(keys.FORGOTTEN_REPOS, *back)


async def forgotten(client: redis.asyncio.Redis) -> dict[int, tuple[str, float]]:
    """Per repository id forgotten within :data:`MAX_AGE` (and not given back since): its
    full name then and when (a Unix time)."""
    marked: list[tuple[bytes, float]] = await client.zrange(  # type: ignore[assignment]
        keys.FORGOTTEN_REPOS, 0, -1, withscores=True)
    found = {}
    for member, when in marked:
        ident, _, name = _text(member).partition(" ")
        if ident.isdigit():
            found[int(ident)] = (name, float(when))
    return found


def _repo(ident: int, full_name: str) -> Repo:
    owner, _, name = full_name.partition("/")
    return Repo(owner, name, ident)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


async def _mark(client: redis.asyncio.Redis, repositories: Collection[Repo], *,
                now: datetime) -> None:
    """Mark ``repositories`` forgotten at ``now``; marks older than :data:`MAX_AGE` go, and
    all but the newest :data:`FORGOTTEN_KEPT`."""
    if not repositories:
        return
    at = now.timestamp()
    async with client.pipeline(transaction=False) as pipe:
        pipe.zadd(keys.FORGOTTEN_REPOS, {f"{r.id} {r.full_name}": at for r in repositories})
        pipe.zremrangebyscore(keys.FORGOTTEN_REPOS, "-inf", at - MAX_AGE.total_seconds())
        pipe.zremrangebyrank(keys.FORGOTTEN_REPOS, 0, -FORGOTTEN_KEPT - 1)
        pipe.expire(keys.FORGOTTEN_REPOS, int(MAX_AGE.total_seconds()))
        await pipe.execute()


async def _forget(
    client: redis.asyncio.Redis, chosen: Iterable[Family], owners: Collection[str]
) -> int:
    gone = 0
    if not owners:
        return gone
    for family in chosen:
        if family.exact:
            gone += await _unlink(client, [family.prefix + owner for owner in owners])
            continue
        batch: list[str] = []
        pattern = _GLOB_SPECIAL.sub(r"\\\1", family.prefix) + "*"
        async for raw in client.scan_iter(match=pattern, count=SCAN_COUNT):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            if family.owner(key) in owners:
                batch.append(key)
            if len(batch) >= UNLINK_BATCH:
                gone += await _unlink(client, batch)
                batch = []
        gone += await _unlink(client, batch)
    return gone


async def _unlink(client: redis.asyncio.Redis, names: list[str]) -> int:
    return int(await client.unlink(*names)) if names else 0
