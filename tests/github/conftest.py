"""A scripted GitHub stand-in and clients pointed at it, for the tests of ``reactor.github``.

The stand-in is a real HTTP server (Starlette on uvicorn, 127.0.0.1, a free port, a
background thread) that checks credentials as GitHub does — the App's JWT against the
public key, installation tokens against those it minted — mints ~520-character tokens,
serves resources with ETags and 304s, and answers scripted replies queued per route.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reactor.github import GitHubClient, RetryPolicy, full_jitter
from tests.conftest import free_port, wait_for_port

APP_ID = 4242
TOKEN_LENGTH = 520
METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]


@dataclass
class Reply:
    """One scripted answer; ``delay`` holds it back (longer than the client timeout = a timeout)."""

    status: int = 200
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Seen:
    """One request as the stand-in received it."""

    method: str
    path: str
    authorization: str
    if_none_match: str | None
    status: int


class StandIn:
    """GitHub, as far as ``reactor.github`` needs it; state is reset before every test."""

    def __init__(self, *, public_key: bytes, url: str) -> None:
        self.public_key = public_key
        self.url = url
        self.reset()

    def reset(self) -> None:
        self.scripts: dict[tuple[str, str], deque[Reply]] = {}
        self.resources: dict[str, Any] = {}
        self.tokens: set[str] = set()
        self.seen: list[Seen] = []
        self.token_lifetime = timedelta(hours=1)
        self.token_delay = 0.0
        self.remaining = 5000

    def script(self, method: str, path: str, *replies: Reply) -> None:
        """Queue replies for the route; once used up, the route answers normally again."""
        self.scripts.setdefault((method, path), deque()).extend(replies)

    def calls(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path == path]

    def token_requests(self, installation_id: int) -> int:
        return len(self.calls("POST", f"/app/installations/{installation_id}/access_tokens"))

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    async def handle(self, request: Request) -> Response:
        method, path = request.method, request.url.path
        authorization = request.headers.get("authorization", "")
        reply = (
            self._authenticate(path, authorization)
            or self._scripted(method, path)
            or self._serve(method, path, request.headers.get("if-none-match"))
        )
        self.seen.append(Seen(
            method, path, authorization, request.headers.get("if-none-match"), reply.status
        ))
        if reply.delay:
            await asyncio.sleep(reply.delay)
        headers = {**self._rate_headers(reply.status), **reply.headers}
        if reply.json is None:
            return Response(status_code=reply.status, headers=headers)
        return Response(
            json.dumps(reply.json), status_code=reply.status, headers=headers,
            media_type="application/json; charset=utf-8",
        )

    def _authenticate(self, path: str, authorization: str) -> Reply | None:
        scheme, _, credential = authorization.partition(" ")
        if path.startswith("/app") or path.endswith("/installation"):
            try:
                jwt.decode(
                    credential, self.public_key, algorithms=["RS256"], issuer=str(APP_ID),
                    leeway=3600, options={"require": ["iat", "exp", "iss"]},
                )
            except jwt.PyJWTError:
                return Reply(401, {"message": "A JSON web token could not be decoded"})
            return None if scheme.lower() == "bearer" else Reply(401, {"message": "Bad scheme"})
        if scheme.lower() == "token" and credential in self.tokens:
            return None
        return Reply(401, {"message": "Bad credentials"})

    def _scripted(self, method: str, path: str) -> Reply | None:
        queue = self.scripts.get((method, path))
        return queue.popleft() if queue else None

    def _serve(self, method: str, path: str, if_none_match: str | None) -> Reply:
        parts = path.strip("/").split("/")
        if method == "POST" and parts[:2] == ["app", "installations"] and parts[-1:] == [
            "access_tokens"
        ]:
            return self._mint()
        if method == "GET" and path in self.resources:
            body = self.resources[path]
            etag = '"' + hashlib.sha256(json.dumps(body).encode()).hexdigest() + '"'
            if if_none_match == etag:
                return Reply(304, headers={"etag": etag})
            return Reply(200, body, headers={"etag": etag})
        return Reply(404, {"message": "Not Found"})

    def _mint(self) -> Reply:
        token = ("ghs_" + secrets.token_urlsafe(TOKEN_LENGTH))[:TOKEN_LENGTH]
        self.tokens.add(token)
        expires_at = datetime.now(UTC) + self.token_lifetime
        return Reply(
            201,
            {"token": token, "expires_at": expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")},
            delay=self.token_delay,
        )

    def _rate_headers(self, status: int) -> dict[str, str]:
        if status != 304:  # as on GitHub, a 304 costs nothing
            self.remaining = max(0, self.remaining - 1)
        return {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(int(time.time()) + 3600),
        }


class Sleeps:
    """Stands in for ``asyncio.sleep`` in the retry policy: records each wait, sleeps none."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class FakeClock:
    """An aware UTC clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture(scope="session")
def rsa_key() -> tuple[str, bytes]:
    """A fresh App key: (private PEM text, public PEM bytes)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@pytest.fixture(scope="session")
def stand_in_server(rsa_key: tuple[str, bytes]) -> Iterator[StandIn]:
    port = free_port()
    stand_in = StandIn(public_key=rsa_key[1], url=f"http://127.0.0.1:{port}")
    app = Starlette(routes=[Route("/{path:path}", stand_in.handle, methods=METHODS)])
    server = uvicorn.Server(uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
    ))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port)
    yield stand_in
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def stand_in(stand_in_server: StandIn) -> StandIn:
    stand_in_server.reset()
    return stand_in_server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


MakeClient = Callable[..., Awaitable[GitHubClient]]


@pytest.fixture
async def make_client(
    redis_url: str, stand_in: StandIn, rsa_key: tuple[str, bytes], sleeps: Sleeps, clock: FakeClock
) -> AsyncIterator[MakeClient]:
    """Build clients on the stand-in, each with its own Redis connection, all closed after."""
    opened: list[tuple[GitHubClient, Redis[Any]]] = []

    async def make(**options: Any) -> GitHubClient:
        redis: Redis[Any] = Redis.from_url(redis_url)
        options.setdefault("retry", RetryPolicy(wait=full_jitter(), sleep=sleeps))
        options.setdefault("clock", clock)
        options.setdefault("timeout", 2.0)
        options.setdefault("api_url", stand_in.url)
        client = GitHubClient(app_id=APP_ID, private_key=rsa_key[0], redis=redis, **options)
        opened.append((client, redis))
        return client

    yield make
    for client, redis in opened:
        await client.aclose()
        await redis.aclose()  # type: ignore[attr-defined]  # types-redis predates aclose()


@pytest.fixture
async def client(make_client: MakeClient) -> GitHubClient:
    return await make_client()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis[Any]]:
    connection: Redis[Any] = Redis.from_url(redis_url)
    yield connection
    await connection.aclose()  # type: ignore[attr-defined]  # types-redis predates aclose()
