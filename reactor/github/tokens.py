"""Installation access tokens, cached in Redis for every worker process.

An installation token lasts an hour
(https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-an-installation-access-token-for-a-github-app);
it is cached under ``keys.installation_token(id)`` until a safety margin before its
``expires_at``, with a Redis TTL derived from that time, so every process of the pool uses
the same token and asks GitHub for a new one only when it is about to expire. Tokens are
opaque strings of any length (GitHub's newer format is ~520 characters).

Concurrent misses do not stampede: the process that wins a short ``SET NX`` lock fetches the
token while the others poll the cache. The lock expires by itself, so a process that dies
holding it delays the others by at most ``lock_timeout``. A process also keeps the token it
last read, for as long as Redis would (until the margin before ``expires_at``), and forgets
it when GitHub rejects it: a turn's calls do not each ask Redis.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from reactor.core.errors import GitHubError
from reactor.github._shared import (
    DELETE_IF_FIELD,
    DELETE_IF_VALUE,
    Clock,
    RedisClient,
    as_text,
    utc_now,
)
from reactor.process.observability import register_secret
from reactor.store import keys


@dataclass(frozen=True)
class InstallationToken:
    """An installation access token and the moment GitHub stops accepting it."""

    token: str = field(repr=False)
    expires_at: datetime

    @classmethod
    def from_payload(cls, data: Any) -> InstallationToken:
        """Read GitHub's answer to ``POST /app/installations/{id}/access_tokens``."""
        try:
            token, expires_at = data["token"], datetime.fromisoformat(data["expires_at"])
        except (TypeError, KeyError, ValueError):
            raise GitHubError(
                "GitHub's access-token answer lacks a token or a valid expires_at", method="POST"
            ) from None
        if not isinstance(token, str) or not token or expires_at.tzinfo is None:
            raise GitHubError("GitHub's access-token answer is malformed", method="POST")
        return cls(token=token, expires_at=expires_at)


Fetch = Callable[[int], Awaitable[InstallationToken]]


class TokenCache:
    """Installation tokens shared through Redis, fetched with ``fetch`` on a miss."""

    def __init__(
        self,
        redis: RedisClient,
        fetch: Fetch,
        *,
        clock: Clock = utc_now,
        margin: timedelta = timedelta(minutes=5),
        lock_timeout: float = 20.0,
        poll_interval: float = 0.05,
    ) -> None:
        self._redis = redis
        self._fetch = fetch
        self._clock = clock
        self._margin = margin
        self._lock_timeout_ms = int(lock_timeout * 1000)
        self._poll_interval = poll_interval
        self._release = redis.register_script(DELETE_IF_VALUE)
        self._drop = redis.register_script(DELETE_IF_FIELD)
        self._held: dict[int, tuple[str, float]] = {}  # installation -> (token, fresh until)

    async def get(self, installation_id: int) -> str:
        """The installation's token: cached, fetched by another process, or fetched here."""
        lock = keys.installation_token_lock(installation_id)
        owner = secrets.token_hex(16)
        while True:
            token = await self._cached(installation_id)
            if token is not None:
                return token
            if await self._redis.set(lock, owner, nx=True, px=self._lock_timeout_ms):
                try:
                    return await self._cached(installation_id) or await self._renew(
                        installation_id
                    )
                finally:
                    await self._release(keys=[lock], args=[owner])
            await asyncio.sleep(self._poll_interval)

    async def drop(self, installation_id: int, token: str) -> None:
        """Forget ``token`` (GitHub rejected it), unless another process already replaced it."""
        if self._held.get(installation_id, ("", 0.0))[0] == token:
            del self._held[installation_id]
        key = keys.installation_token(installation_id)
        await self._drop(keys=[key], args=["token", token])

    async def _cached(self, installation_id: int) -> str | None:
        now = self._clock().timestamp()
        held = self._held.get(installation_id)
        if held is not None and now < held[1]:
            return held[0]
        key = keys.installation_token(installation_id)
        token, expires = await self._redis.hmget(key, ["token", "expires_at"])
        if token is None or expires is None:
            return None
        fresh_until = float(as_text(expires)) - self._margin.total_seconds()
        if fresh_until <= now:
            return None
        text = as_text(token)
        register_secret(text)  # another process may have minted it: redact it here too
        self._held[installation_id] = (text, fresh_until)
        return text

    async def _renew(self, installation_id: int) -> str:
        token = await self._fetch(installation_id)
        register_secret(token.token)
        ttl = token.expires_at - self._margin - self._clock()
        self._held[installation_id] = (token.token, (token.expires_at - self._margin).timestamp())
        if ttl > timedelta(0):
            key = keys.installation_token(installation_id)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping={
                    "token": token.token,
                    "expires_at": repr(token.expires_at.timestamp()),
                })
                pipe.pexpire(key, int(ttl.total_seconds() * 1000))
                await pipe.execute()
        return token.token
