"""The repository's ``.github/reactor.yml``, cached in Redis and re-read when it changes.

Read through the contents API from the repository's default branch, falling back to the same
path in the owner's ``.github`` repository (an organisation-wide default, as Probot apps do),
then to the defaults. The text is cached for every worker; a ``push`` to the repository drops
the cache. A malformed file never stops the reactor: the last good config (or the defaults)
stays in force, and the problem is audited once per distinct text.
https://docs.github.com/en/rest/repos/contents#get-repository-content
"""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import Any

import redis.asyncio
from gidgethub.abc import GitHubAPI

from reactor.config import DEFAULT_CONFIG, RepoConfig, RepoConfigError, parse_config
from reactor.errors import GitHubError
from reactor.model import Repo
from reactor.store import keys

log = logging.getLogger(__name__)

PATH = ".github/reactor.yml"
CACHE_TTL_S = 300


async def load(
    client: redis.asyncio.Redis, gh: GitHubAPI, repo: Repo
) -> tuple[RepoConfig, str | None]:
    """The config in force, and a one-line problem when the file is malformed (else None)."""
    cached: bytes | None = await client.get(keys.config(repo.id))  # type: ignore[assignment]
    if cached is None:
        cached = (await _fetch(gh, repo) or "").encode()
        await client.set(keys.config(repo.id), cached, ex=CACHE_TTL_S)
    text = cached.decode()
    try:
        config = parse_config(text)
    except RepoConfigError as exc:
        return await _last_good(client, repo), await _first_report(client, repo, text, exc)
    await client.set(keys.config_good(repo.id), cached)
    return config, None


async def forget(client: redis.asyncio.Redis, repo: Repo) -> None:
    """The file may have changed: read it again next time."""
    await client.delete(keys.config(repo.id))


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
    good: bytes | None = await client.get(keys.config_good(repo.id))  # type: ignore[assignment]
    return parse_config(good.decode()) if good is not None else DEFAULT_CONFIG


async def _first_report(
    client: redis.asyncio.Redis, repo: Repo, text: str, exc: RepoConfigError
) -> str | None:
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    if not await client.set(keys.config_reported(repo.id, digest), "1", nx=True, ex=7 * 86400):
        return None
    log.warning("%s: %s: %s", repo.full_name, PATH, exc)
    return f"{PATH}: {exc}"
