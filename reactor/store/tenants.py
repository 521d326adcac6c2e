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

Kept: the audit stream, capped by count (:data:`keys.AUDIT_MAXLEN` records), since an
operator may need to see what the reactor did before the uninstall; stored deliveries, keyed
by GUID, which expire after :data:`keys.DELIVERY_TTL_S`; comment markers and seen-markers,
which name no repository and hold no tenant content.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import redis.asyncio

from reactor.store import keys

SCAN_COUNT = 1000  # keys Redis looks at per SCAN call
UNLINK_BATCH = 500  # keys per UNLINK
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
    client: redis.asyncio.Redis, installation_id: int, repositories: Iterable[int]
) -> int:
    """Forget an uninstalled installation and its ``repositories``; how many keys went."""
    owner = str(installation_id)
    gone = await _forget(client, REPOSITORY_FAMILIES, {str(r) for r in repositories})
    gone += await _forget(client, INSTALLATION_FAMILIES, {owner})
    gone += int(await client.hdel(keys.RATE_REMAINING, owner))
    return gone


async def forget_repositories(
    client: redis.asyncio.Redis, installation_id: int, repositories: Iterable[int]
) -> int:
    """Forget ``repositories``, taken from an installation that stays, and the installation's
    cached GitHub answers (they may hold those repositories' issues; the others' are read
    again); how many keys went."""
    gone = await _forget(client, REPOSITORY_FAMILIES, {str(r) for r in repositories})
    return gone + await _forget(client, (CACHED_ANSWERS,), {str(installation_id)})


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
