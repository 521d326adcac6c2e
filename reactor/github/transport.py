"""The path every GitHub call takes, between gidgethub and the HTTP connection.

In order: refuse at once if the installation is rate limited; a call that creates content
(an issue, a comment) spends one write of the installation's budget (``pacing``), which
refuses with :class:`~reactor.core.errors.RateLimited` once it is spent; add ``If-None-Match`` when
a cached answer exists; authenticate; send with retries (``retry``); on a 401 from a token
GitHub no longer accepts, drop it and send once more with a fresh one; record metrics and
the remaining budget; turn a rate-limited answer into a pause plus
:class:`~reactor.core.errors.RateLimited`; answer a 304 from the cache; turn any other failure into
:class:`~reactor.core.errors.GitHubError` with GitHub's own ``message``.

gidgethub therefore only ever sees successful answers.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from reactor.core.errors import GitHubError
from reactor.github._shared import Clock, RedisClient, utc_now
from reactor.github.cache import CachedResponse, ETagCache
from reactor.github.metrics import CallRecord, OnResponse, route_of
from reactor.github.pacing import ContentPacer, creates_content
from reactor.github.ratelimit import (
    Limit,
    RateBudget,
    RateGate,
    budget_from_headers,
    exhausted,
    limit_from_error,
    rate_limited,
)
from reactor.github.retry import Response, RetryPolicy, ServerError, with_retries

log = logging.getLogger(__name__)

# https://docs.github.com/en/rest/about-the-rest-api/api-versions
API_VERSION = "2022-11-28"
MAX_MESSAGE_CHARS = 300

RawSend = Callable[[str, str, Mapping[str, str], bytes], Awaitable[Response]]


class Credentials(Protocol):
    """Who a call acts as: an installation (its token) or the App itself (its JWT)."""

    @property
    def installation_id(self) -> int | None: ...

    async def authorization(self) -> str:
        """The ``Authorization`` header value to send."""

    async def rejected(self, authorization: str) -> bool:
        """GitHub answered 401 to ``authorization``; True when fresh credentials may help."""


class Transport:
    """One per process: the request path, its Redis-backed state and its counters."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        base_url: str,
        retry: RetryPolicy,
        clock: Clock = utc_now,
        etags: ETagCache | None = None,
        on_response: OnResponse | None = None,
        pacer: ContentPacer | None = None,
    ) -> None:
        self.base_url = base_url
        self.gate = RateGate(redis, clock=clock)
        self.pacer = pacer if pacer is not None else ContentPacer(redis, clock=clock)
        self.etags = etags if etags is not None else ETagCache(redis)
        self._retry = retry
        self._clock = clock
        self._on_response = on_response
        self._budgets: dict[int | None, RateBudget] = {}

    def budget(self, installation_id: int | None) -> RateBudget | None:
        """The budget GitHub last reported for the installation (None: App-level calls)."""
        return self._budgets.get(installation_id)

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        credentials: Credentials,
        raw: RawSend,
    ) -> Response:
        """Send one logical call; return a successful answer or raise a GitHubError."""
        installation_id = credentials.installation_id
        await self.gate.check(installation_id, method=method, url=url)
        if installation_id is not None and creates_content(method, url):
            await self.pacer.take(installation_id, method=method, url=url)
        request = {**headers, "x-github-api-version": API_VERSION}
        accept = request.get("accept", "")
        cached = None
        if method == "GET":
            cached = await self.etags.lookup(installation_id, url, accept)
            if cached is not None:
                request["if-none-match"] = cached.etag

        async def attempt() -> Response:
            # Sends ``request`` as it is at that moment: after a 401, with the new credentials.
            return await self._attempt(method, url, request, body, installation_id, raw)

        authorization = request["authorization"] = await credentials.authorization()
        response = await with_retries(attempt, policy=self._retry, method=method, url=url)
        if response[0] == 401 and await credentials.rejected(authorization):
            request["authorization"] = await credentials.authorization()
            response = await with_retries(attempt, policy=self._retry, method=method, url=url)
        return await self._interpret(method, url, accept, response, cached, installation_id)

    async def _attempt(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        installation_id: int | None,
        raw: RawSend,
    ) -> Response:
        started = time.perf_counter()
        try:
            status, response_headers, response_body = await raw(method, url, headers, body)
        except httpx.TransportError:
            self._record(method, url, 0, {}, installation_id, started)
            raise
        self._record(method, url, status, response_headers, installation_id, started)
        if status >= 500:
            raise ServerError((status, response_headers, response_body))
        return status, response_headers, response_body

    def _record(
        self,
        method: str,
        url: str,
        status: int,
        headers: Mapping[str, str],
        installation_id: int | None,
        started: float,
    ) -> None:
        budget = budget_from_headers(headers)
        if budget is not None:
            self._budgets[installation_id] = budget
        if self._on_response is not None:
            self._on_response(CallRecord(
                method=method,
                route=route_of(url, base_url=self.base_url),
                status=status,
                installation_id=installation_id,
                rate_remaining=budget.remaining if budget is not None else None,
                elapsed_s=time.perf_counter() - started,
            ))

    async def _interpret(
        self,
        method: str,
        url: str,
        accept: str,
        response: Response,
        cached: CachedResponse | None,
        installation_id: int | None,
    ) -> Response:
        status, raw_headers, body = response
        headers = {name.lower(): value for name, value in raw_headers.items()}
        if status >= 400:
            raise await self._failure(method, url, status, headers, body, installation_id)
        limit = exhausted(budget_from_headers(headers), now=self._clock())
        if limit is not None:
            await self._pause(installation_id, limit)
        if status == 304 and cached is not None:
            await self.etags.touch(installation_id, url, accept)
            return 200, _replayed_headers(headers, cached), cached.body
        if status >= 300:
            raise GitHubError(
                f"GitHub answered {status} to {method} {urlsplit(url).path}",
                status=status, method=method, url=url,
            )
        if method == "GET" and status == 200 and "etag" in headers:
            await self.etags.store(installation_id, url, accept, CachedResponse(
                etag=headers["etag"],
                body=body,
                content_type=headers.get("content-type", ""),
                link=headers.get("link", ""),
            ))
        return status, headers, body

    async def _failure(
        self,
        method: str,
        url: str,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        installation_id: int | None,
    ) -> GitHubError:
        """The error for a 4xx answer; a rate limit also pauses the installation."""
        message = github_message(body, headers.get("content-type", "")) or _phrase(status)
        limit = limit_from_error(status, headers, message, now=self._clock())
        if limit is None:
            return GitHubError(
                f"GitHub answered {status} to {method} {urlsplit(url).path}: {message}",
                status=status, method=method, url=url,
            )
        await self._pause(installation_id, limit)
        return rate_limited(installation_id, limit.until, status=status, method=method, url=url)

    async def _pause(self, installation_id: int | None, limit: Limit) -> None:
        log.warning(
            "GitHub %s rate limit: %s paused until %s",
            limit.kind, "the App" if installation_id is None else f"installation {installation_id}",
            f"{limit.until:%Y-%m-%d %H:%M:%S} UTC",
        )
        await self.gate.close(installation_id, limit)


def _replayed_headers(headers: Mapping[str, str], cached: CachedResponse) -> dict[str, str]:
    """A 304's own headers (rate limit, date) with the cached answer's body headers."""
    replayed = {**headers, "etag": cached.etag, "content-type": cached.content_type}
    replayed.pop("content-length", None)
    if cached.link:
        replayed["link"] = cached.link
    return replayed


def github_message(body: bytes, content_type: str) -> str:
    """GitHub's error ``message`` (with its ``errors`` details), shortened to one line.

    Shape: https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api
    """
    data: Any = None
    if "json" in content_type:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
    if not isinstance(data, dict) or not isinstance(data.get("message"), str):
        return " ".join(body.decode("utf-8", "replace").split())[:MAX_MESSAGE_CHARS]
    message: str = data["message"]
    details = [_error_detail(error) for error in data.get("errors") or () if error]
    if details:
        message = f"{message} ({'; '.join(details)})"
    return " ".join(message.split())[:MAX_MESSAGE_CHARS]


def _error_detail(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    if isinstance(error.get("message"), str):
        return str(error["message"])
    parts = (error.get("resource"), error.get("field"), error.get("code"))
    return " ".join(str(part) for part in parts if part)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "no message"
