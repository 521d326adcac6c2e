"""Conditional GETs: ETags and bodies shared in Redis by every worker process.

GitHub answers a GET carrying ``If-None-Match`` with a matching ETag by ``304 Not Modified``,
which does not count against the rate limit
(https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api#use-conditional-requests-if-appropriate).
The last 200 answer to each GET is kept under ``keys.etag(installation, digest)`` — the
digest covers the URL and the ``Accept`` header, since media types change the body — so a
re-read by any process is free while nothing changed. Entries expire after ``ttl``, and
bodies over ``max_body_bytes`` are not kept, so the cache stays bounded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from reactor.github._shared import RedisClient, as_bytes, as_text, scope
from reactor.store import keys


@dataclass(frozen=True)
class CachedResponse:
    """What is needed to answer a GET again: its ETag, body and the headers that shape it."""

    etag: str
    body: bytes
    content_type: str = ""
    link: str = ""


class ETagCache:
    """The last 200 answer per (installation, URL, Accept), with its ETag."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        ttl: timedelta = timedelta(hours=1),
        max_body_bytes: int = 1024 * 1024,
    ) -> None:
        self._redis = redis
        self._ttl_s = max(1, int(ttl.total_seconds()))
        self._max_body_bytes = max_body_bytes

    async def lookup(
        self, installation_id: int | None, url: str, accept: str
    ) -> CachedResponse | None:
        """The cached answer to this GET, or None."""
        found = await self._redis.hgetall(self._key(installation_id, url, accept))
        fields = {as_text(name): value for name, value in found.items()}
        if "etag" not in fields or "body" not in fields:
            return None
        return CachedResponse(
            etag=as_text(fields["etag"]),
            body=as_bytes(fields["body"]),
            content_type=as_text(fields.get("content_type", "")),
            link=as_text(fields.get("link", "")),
        )

    async def store(
        self, installation_id: int | None, url: str, accept: str, response: CachedResponse
    ) -> None:
        """Keep a 200 answer for later conditional GETs (unless its body is too large)."""
        if len(response.body) > self._max_body_bytes:
            return
        key = self._key(installation_id, url, accept)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping={
                "etag": response.etag,
                "body": response.body,
                "content_type": response.content_type,
                "link": response.link,
            })
            pipe.expire(key, self._ttl_s)
            await pipe.execute()

    async def touch(self, installation_id: int | None, url: str, accept: str) -> None:
        """Keep an entry that GitHub just confirmed unchanged for another ``ttl``."""
        await self._redis.expire(self._key(installation_id, url, accept), self._ttl_s)

    @staticmethod
    def _key(installation_id: int | None, url: str, accept: str) -> str:
        digest = hashlib.sha256(f"{accept}\n{url}".encode()).hexdigest()[:32]
        return keys.etag(scope(installation_id), digest)
