"""Conditional GETs: ETags and bodies shared in Redis by every worker process.

GitHub answers a GET carrying ``If-None-Match`` with a matching ETag by ``304 Not Modified``,
which does not count against the rate limit
(https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api#use-conditional-requests-if-appropriate).
The last 200 answer to each GET is kept under ``keys.etag(installation, digest)`` — the
digest covers the URL and the ``Accept`` header, since media types change the body — so a
re-read by any process is free while nothing changed. Entries expire after ``ttl``, and
bodies over ``max_body_bytes`` are not kept, so the cache stays bounded.

An entry is one string — its ETag, content type and ``Link`` header, a line each (no header
value holds a line break), then the body — written with one ``SET … EX`` and read with one
``GET``: keeping a read's answer costs one command, not a transaction of five.
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
        found = await self._redis.get(self._key(installation_id, url, accept))
        parts = as_bytes(found).split(b"\n", 3) if found is not None else []
        if len(parts) != 4 or not parts[0]:
            return None
        etag, content_type, link, body = parts
        return CachedResponse(etag=as_text(etag), body=body,
                              content_type=as_text(content_type), link=as_text(link))

    async def store(
        self, installation_id: int | None, url: str, accept: str, response: CachedResponse
    ) -> None:
        """Keep a 200 answer for later conditional GETs (unless its body is too large)."""
        if len(response.body) > self._max_body_bytes:
            return
        head = [response.etag, response.content_type, response.link]
        if any("\n" in value or "\r" in value for value in head):
            return  # not a header value GitHub sends: nothing to keep
        value = "\n".join(head).encode() + b"\n" + response.body
        await self._redis.set(self._key(installation_id, url, accept), value, ex=self._ttl_s)

    async def touch(self, installation_id: int | None, url: str, accept: str) -> None:
        """Keep an entry that GitHub just confirmed unchanged for another ``ttl``."""
        await self._redis.expire(self._key(installation_id, url, accept), self._ttl_s)

    @staticmethod
    def _key(installation_id: int | None, url: str, accept: str) -> str:
        digest = hashlib.sha256(f"{accept}\n{url}".encode()).hexdigest()[:32]
        return keys.etag(scope(installation_id), digest)
