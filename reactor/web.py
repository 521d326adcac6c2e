"""The web process: verify → dedupe → store → enqueue → 202, plus health routes.

The route table is SPEC §4. The webhook route is a plain ASGI callable rather than a
``Request`` endpoint: it is the hot path, and it needs only the raw body and five headers.
:class:`WebApp` hands ``POST /api/github/webhooks`` to it before Starlette's middleware and
router (~50 µs a request on ``bench/ingest.py``: 303 → 249 µs of web CPU, interleaved runs),
and routes everything else as usual.
Everything the route does after verifying the signature is one batched Redis step
(:mod:`reactor.store.ingest`); the worker does the rest.

See https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

import orjson
import redis.asyncio
from gidgethub import ValidationFailure
from gidgethub.sansio import validate_event
from redis.backoff import NoBackoff
from redis.retry import Retry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from reactor.errors import StoreUnavailable
from reactor.settings import Settings
from reactor.store.deliveries import Delivery
from reactor.store.ingest import Ingest

log = logging.getLogger(__name__)

MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB and does not send larger ones.
WEBHOOK_PATH = "/api/github/webhooks"
_GUID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}")
_EVENT = re.compile(r"[a-z][a-z0-9_]{0,63}")

# The request's headers by lower-case name, as ASGI gives them: a dict lookup rather than
# Starlette's ``Headers``, which scans and decodes the list on every get (~6 µs a request).
Headers = dict[bytes, bytes]


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
        headers: Headers = dict(scope["headers"])
        try:
            status, answer = await self._handle(headers, receive, ingest)
        except Reject as exc:
            status, answer = exc.status, {"message": exc.reason}
        except Exception:  # answered here: the route runs outside Starlette's error middleware
            guid = _header(headers, b"x-github-delivery")
            log.exception("webhook delivery failed", extra={"delivery": guid})
            status, answer = 500, {"message": "internal error; redeliver later"}
        await _send(send, status, answer)

    async def _handle(
        self, headers: Headers, receive: Receive, ingest: Ingest
    ) -> tuple[int, dict[str, Any] | None]:
        body = await _read_body(headers, receive)
        event = _required(headers, b"x-github-event")
        guid = _required(headers, b"x-github-delivery")
        if not _EVENT.fullmatch(event) or not _GUID.fullmatch(guid):
            raise Reject(400, "X-GitHub-Event or X-GitHub-Delivery is malformed")
        signature = _header(headers, b"x-hub-signature-256")
        if not verify_signature(body, signature, self._secrets):
            raise Reject(401, "X-Hub-Signature-256 is missing or matches no webhook secret")
        payload = _payload(body, _header(headers, b"content-type"))
        if event == "ping":
            return 200, {"pong": True}
        delivery = Delivery(
            guid=guid, event=event, body=payload, received_at=time.time(),
            hook_id=_header(headers, b"x-github-hook-id"),
            target_type=_header(headers, b"x-github-hook-installation-target-type"),
            target_id=_header(headers, b"x-github-hook-installation-target-id"),
        )
        try:
            accepted = await ingest.accept(delivery)
        except StoreUnavailable as exc:
            log.warning("delivery refused: %s", exc, extra={"delivery": guid, "event": event})
            reason = "the reactor cannot store deliveries right now; redeliver later"
            raise Reject(503, reason) from None
        if not accepted:
            return 200, {"duplicate": True}
        # No body: GitHub reads only the status, and a body is a second write to the socket
        # in uvicorn (263 → 233 µs of web CPU a request on bench/ingest.py without it).
        return 202, None


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
    declared = headers.get(b"content-length", b"")
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


def _header(headers: Headers, name: bytes) -> str:
    return headers.get(name, b"").decode("latin-1")


def _required(headers: Headers, name: bytes) -> str:
    value = _header(headers, name)
    if not value:
        raise Reject(400, f"{name.decode()} header is missing")
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


async def _send(send: Send, status: int, answer: dict[str, Any] | None) -> None:
    """Answer ``status`` with ``answer`` as JSON, or with no body when it is None."""
    body = b"" if answer is None else orjson.dumps(answer)
    headers = [(b"content-length", b"%d" % len(body))]
    if answer is not None:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
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


class WebApp(Starlette):
    """Starlette, with the webhook hot path dispatched before its middleware and router.

    Anything else, including the webhook path under another method or a ``root_path``, takes
    the ordinary route table, where the same route is registered.
    """

    def __init__(self, *, webhook: WebhookRoute, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._webhook = webhook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == WEBHOOK_PATH:
            await self._webhook(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings: Settings) -> Starlette:
    """The web process's app; Redis clients open and close with its lifespan."""
    redis_url = settings.require_redis_url()
    secrets = settings.require_webhook_secrets()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        # One immediate retry and no backoff: with Redis down, GitHub gets its 503 at once.
        client = redis.asyncio.Redis.from_url(
            redis_url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30,
            retry=Retry(NoBackoff(), 1),
        )
        try:
            async with Ingest(client) as ingest:
                yield {"redis": client, "ingest": ingest}
        finally:
            await client.aclose()

    webhook = WebhookRoute(secrets)
    routes = [
        Route(WEBHOOK_PATH, webhook, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
    ]
    return WebApp(webhook=webhook, routes=routes, lifespan=lifespan)
