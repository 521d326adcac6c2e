"""The web process: verify → dedupe → store → enqueue → 202, plus health routes.

The route table is SPEC §4. The webhook route is a plain ASGI callable rather than a
``Request`` endpoint: it is the hot path, and it needs only the raw body and five headers.
Everything the route does after verifying the signature is one batched Redis step
(:mod:`reactor.store.ingest`); the worker does the rest.

See https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

import orjson
import redis.asyncio
from gidgethub import ValidationFailure
from gidgethub.sansio import validate_event
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reactor.errors import StoreUnavailable
from reactor.settings import Settings
from reactor.store.ingest import Delivery, Ingest

log = logging.getLogger(__name__)

MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB and does not send larger ones.
WEBHOOK_PATH = "/api/github/webhooks"
_GUID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}")
_EVENT = re.compile(r"[a-z][a-z0-9_]{0,63}")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Reject(Exception):
    """A delivery the route answers without storing: carries the status and the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class WebhookRoute:
    """``POST /api/github/webhooks`` as an ASGI app (SPEC §4)."""

    def __init__(self, secrets: tuple[bytes, ...]) -> None:
        self._secrets = tuple(s.decode() for s in secrets)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ingest: Ingest = scope["state"]["ingest"]
        try:
            status, answer = await self._handle(Headers(scope=scope), receive, ingest)
        except Reject as exc:
            status, answer = exc.status, {"message": exc.reason}
        await _send_json(send, status, orjson.dumps(answer))

    async def _handle(
        self, headers: Headers, receive: Receive, ingest: Ingest
    ) -> tuple[int, dict[str, Any]]:
        body = await _read_body(headers, receive)
        event, guid = _required(headers, "x-github-event"), _required(headers, "x-github-delivery")
        if not _EVENT.fullmatch(event) or not _GUID.fullmatch(guid):
            raise Reject(400, "X-GitHub-Event or X-GitHub-Delivery is malformed")
        if not verify_signature(body, headers.get("x-hub-signature-256"), self._secrets):
            raise Reject(401, "X-Hub-Signature-256 is missing or matches no webhook secret")
        payload = _payload(body, headers.get("content-type", ""))
        if event == "ping":
            return 200, {"pong": True}
        delivery = Delivery(
            guid=guid, event=event, body=payload, received_at=time.time(),
            hook_id=headers.get("x-github-hook-id", ""),
            target_type=headers.get("x-github-hook-installation-target-type", ""),
            target_id=headers.get("x-github-hook-installation-target-id", ""),
        )
        try:
            accepted = await ingest.accept(delivery)
        except StoreUnavailable as exc:
            log.warning("delivery refused: %s", exc, extra={"delivery": guid, "event": event})
            reason = "the reactor cannot store deliveries right now; redeliver later"
            raise Reject(503, reason) from None
        if not accepted:
            return 200, {"duplicate": True}
        return 202, {"accepted": guid}


def verify_signature(body: bytes, signature: str | None, secrets: tuple[str, ...]) -> bool:
    """True when ``signature`` (``sha256=<hex>``) is ``body``'s HMAC under any of ``secrets``.

    gidgethub compares in constant time; several secrets allow rotation without downtime.
    """
    if not signature or not signature.startswith("sha256="):
        return False
    for secret in secrets:
        try:
            validate_event(body, signature=signature, secret=secret)
        except ValidationFailure:
            continue
        return True
    return False


async def _read_body(headers: Headers, receive: Receive) -> bytes:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise Reject(413, "payload is larger than 25 MiB")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Reject(400, "client disconnected before the body was read")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise Reject(413, "payload is larger than 25 MiB")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _required(headers: Headers, name: str) -> str:
    value = headers.get(name)
    if not value:
        raise Reject(400, f"{name} header is missing")
    return value


def _payload(body: bytes, content_type: str) -> bytes:
    """The JSON payload: the body itself, or its ``payload`` field when form-encoded."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        fields = parse_qs(body.decode("utf-8", "replace"))
        if "payload" not in fields:
            raise Reject(400, "form-encoded body has no 'payload' field")
        body = fields["payload"][0].encode()
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Reject(400, "body is not JSON") from None
    if not isinstance(parsed, dict):
        raise Reject(400, "payload must be a JSON object")
    return body


async def _send_json(send: Send, status: int, body: bytes) -> None:
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    client: redis.asyncio.Redis = request.state.redis
    try:
        await client.ping()
    except (redis.RedisError, OSError) as exc:
        return JSONResponse({"status": "unavailable", "redis": str(exc)}, status_code=503)
    return JSONResponse({"status": "ready"})


def create_app(settings: Settings) -> Starlette:
    """The web process's app; Redis clients open and close with its lifespan."""
    redis_url = settings.require_redis_url()
    secrets = settings.require_webhook_secrets()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        client = redis.asyncio.Redis.from_url(
            redis_url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30
        )
        try:
            yield {"redis": client, "ingest": Ingest(client)}
        finally:
            await client.aclose()

    routes = [
        Route(WEBHOOK_PATH, WebhookRoute(secrets), methods=["POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
