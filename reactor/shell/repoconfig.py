"""The repository's ``.github/reactor.yml``, cached in Redis and re-read when it changes.

Read through the contents API from the repository's default branch, falling back to the same
path in the owner's ``.github`` repository (an organisation-wide default, as Probot apps do),
then to the defaults. The text is cached for every worker; a ``push`` to the repository drops
the cache, and a read that was in flight when the push came caches nothing (the cache has a
generation the push raises), so an old text never outlives the push by more than
:data:`LOCAL_TTL_S`. Each process parses a distinct text once (:class:`ParseCache`, keyed by
the text's sha256), so an evaluation costs a hash, not a parse, whatever the file holds.

A malformed file never stops the reactor: the last good config (or the defaults) stays in
force, and :func:`load` returns the problem with every evaluation while the text is malformed.
Whoever reports it claims the report first (:func:`claim_report`, once per text for a week)
and gives the claim back if it could not post (:func:`release_report`).
https://docs.github.com/en/rest/repos/contents#get-repository-content
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import redis.asyncio
from gidgethub.abc import GitHubAPI

from reactor.core.config import DEFAULT_CONFIG, RepoConfig, RepoConfigError, parse_config
from reactor.core.errors import GitHubError
from reactor.core.view import Repo
from reactor.store import keys

log = logging.getLogger(__name__)

PATH = ".github/reactor.yml"
CACHE_TTL_S = 300
REPORT_TTL_S = 7 * 24 * 3600
PARSE_CACHE_SIZE = 256  # distinct texts per process; each entry holds a result, not the text


@dataclass(frozen=True)
class ConfigProblem:
    """What is wrong with the current text (one line, ≤ ~300 characters) and its digest.

    ``digest`` names the text: a report is claimed per digest, and a comment about this
    text can carry it as its marker key.
    """

    text: str
    digest: str


class ParseCache:
    """parse_config's result for each recently seen text: a small LRU keyed by sha256.

    Every evaluation loads the config while the text rarely changes, and a problem is kept
    as well as a success, so a malformed or oversized file costs one hash per evaluation.
    Keys are digests, so the cache holds no file contents.
    """

    def __init__(self, size: int = PARSE_CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[str, RepoConfig | str] = OrderedDict()

    def get(self, key: str) -> RepoConfig | str | None:
        """The config, or the problem's text, parsed from the text with sha256 ``key``."""
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: str, parsed: RepoConfig | str) -> None:
        """Keep ``parsed`` for ``key``, dropping the least recently used entry past ``size``."""
        self._entries[key] = parsed
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


PARSED = ParseCache()
LOCAL_TTL_S = 1.0
GEN_TTL_S = 3600  # a config's generation outlives any read of the file in flight
# Cache the text read (ARGV[1], for ARGV[3] s) unless the file's generation is no longer the
# one read with the cache's miss (ARGV[2]; '' for none): a push came while it was read.
_CACHE_IF_CURRENT = """
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
"""
# Per Redis client and repository id: the text read and the time.monotonic() it expires; the
# digest of the good text this process wrote.
_LOCAL: dict[tuple[int, int], tuple[str, float]] = {}
_GOOD_WRITTEN: dict[tuple[int, int], str] = {}


async def load(
    client: redis.asyncio.Redis, gh: GitHubAPI, repo: Repo
) -> tuple[RepoConfig, ConfigProblem | None]:
    """The config in force, and the problem with the current text when it is malformed.

    The problem comes back on every call while the text stays malformed: deciding whether to
    report it is the caller's (:func:`claim_report`). It is logged once per text and process.
    """
    text = await _current_text(client, gh, repo)
    parsed, digest = _parsed(text, repo)
    if isinstance(parsed, RepoConfig):
        written = (id(client), repo.id)
        if _GOOD_WRITTEN.get(written) != digest:  # once per text and process, not per turn
            await client.set(keys.config_good(repo.id), text.encode())
            _GOOD_WRITTEN[written] = digest
        return parsed, None
    return await _last_good(client, repo), ConfigProblem(parsed, digest)


async def claim_report(client: redis.asyncio.Redis, repo: Repo, digest: str) -> bool:
    """True the first time in a week that the problem with text ``digest`` is to be reported."""
    key = keys.config_reported(repo.id, digest)
    return bool(await client.set(key, "1", nx=True, ex=REPORT_TTL_S))


async def release_report(client: redis.asyncio.Redis, repo: Repo, digest: str) -> None:
    """The claimed report could not be posted: let a later evaluation claim it again."""
    await client.delete(keys.config_reported(repo.id, digest))


async def forget(client: redis.asyncio.Redis, repo: Repo) -> None:
    """The file may have changed: read it again next time (every process within
    :data:`LOCAL_TTL_S`; this one at once). Raising its generation keeps a read already in
    flight, which may have the old text, from caching it."""
    _LOCAL.pop((id(client), repo.id), None)
    async with client.pipeline(transaction=True) as pipe:
        pipe.delete(keys.config(repo.id))
        pipe.incr(keys.config_gen(repo.id))
        pipe.expire(keys.config_gen(repo.id), GEN_TTL_S)
        await pipe.execute()


async def _current_text(client: redis.asyncio.Redis, gh: GitHubAPI, repo: Repo) -> str:
    """The file's text from the shared cache, fetched (and cached) when absent or expired.
    A process keeps what it read for :data:`LOCAL_TTL_S`, so a busy competition's turns do
    not ask Redis each time; a push is seen within that."""
    now, local = time.monotonic(), (id(client), repo.id)
    held = _LOCAL.get(local)
    if held is not None and now < held[1]:
        return held[0]
    names = keys.config(repo.id), keys.config_gen(repo.id)
    found: list[bytes | None] = await client.mget(names)  # type: ignore[assignment]
    cached, generation = found
    if cached is None:
        cached = (await _fetch(gh, repo) or "").encode()
        if not await client.eval(_CACHE_IF_CURRENT, 2, *names, cached, generation or b"",
                                 CACHE_TTL_S):
            return cached.decode("utf-8", "replace")  # a push came meanwhile: used, not kept
    text = cached.decode("utf-8", "replace")
    _LOCAL[local] = (text, now + LOCAL_TTL_S)
    return text


def _parsed(text: str, repo: Repo) -> tuple[RepoConfig | str, str]:
    """The config in ``text`` or the problem with it, parsed once per process; and its digest.

    The problem is one line of at most ~300 characters (RepoConfigError's bound plus the
    path), logged when this process first finds it rather than on every evaluation.
    """
    key = hashlib.sha256(text.encode()).hexdigest()
    parsed = PARSED.get(key)
    if parsed is None:
        try:
            parsed = parse_config(text)
        except RepoConfigError as exc:
            parsed = f"{PATH}: {exc}"
            log.warning("%s: %s", repo.full_name, parsed)
        PARSED.put(key, parsed)
    return parsed, key[:16]


async def _fetch(gh: GitHubAPI, repo: Repo) -> str | None:
    for owner_repo in (repo.full_name, f"{repo.owner}/.github"):
        try:
            item: Any = await gh.getitem(f"/repos/{owner_repo}/contents/{PATH}")
        except GitHubError as exc:
            if exc.status in (403, 404):  # absent, or the App is not installed there
                continue
            raise
        if isinstance(item, dict) and item.get("encoding") == "base64":
            return base64.b64decode(item.get("content", "")).decode("utf-8", "replace")
    return None


async def _last_good(client: redis.asyncio.Redis, repo: Repo) -> RepoConfig:
    """The config of the last text that parsed here, or the defaults.

    A text that parsed before may fail now (a limit added since): the defaults then.
    """
    good: bytes | None = await client.get(keys.config_good(repo.id))  # type: ignore[assignment]
    if good is None:
        return DEFAULT_CONFIG
    parsed, _ = _parsed(good.decode("utf-8", "replace"), repo)
    return parsed if isinstance(parsed, RepoConfig) else DEFAULT_CONFIG


async def last_good(client: redis.asyncio.Redis, repo_id: int) -> RepoConfig:
    """The repository's last good config, read from Redis alone (the dashboard: it asks
    GitHub nothing); the defaults when none parsed yet."""
    text: bytes | None = await client.get(keys.config_good(repo_id))  # type: ignore[assignment]
    try:
        return parse_config(text.decode("utf-8", "replace")) if text else DEFAULT_CONFIG
    except RepoConfigError:
        return DEFAULT_CONFIG
