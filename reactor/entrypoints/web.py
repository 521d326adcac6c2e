"""The web process: the webhook route (:mod:`reactor.entrypoints.webhook`), health, the
dashboard and ``/metrics`` (SPEC §4).

:class:`WebApp` hands ``POST /api/github/webhooks`` to the webhook route before Starlette's
middleware and router (~50 µs a request on ``bench/ingest.py``: 303 → 249 µs of web CPU,
interleaved runs) and routes everything else as usual.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from reactor.entrypoints.webhook import WEBHOOK_PATH, WebhookRoute
from reactor.ops import metrics
from reactor.ops.dashboard import page as dashboard
from reactor.process.settings import Settings
from reactor.store import connect
from reactor.store.ingest import Ingest, reconnect_retry

log = logging.getLogger(__name__)

async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    client: redis.asyncio.Redis = request.state.redis
    try:
        await client.ping()
    except (redis.RedisError, OSError) as exc:
        # Redis's error names its host and port: that is for the log, not for any caller.
        log.warning("not ready: Redis does not answer: %s", exc)
        return JSONResponse({"status": "unavailable"}, status_code=503)
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
    settings.require_redis_url()
    secrets = settings.require_webhook_secrets()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        # A pooled connection broken by a Redis restart is retried on a fresh one (asyncio's
        # Retry: the synchronous one never retries an awaited call). The ingest keeps a
        # connection of its own and rides out a Redis that is away (reactor/store/ingest.py).
        client = connect.async_client(
            settings, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30,
            retry=reconnect_retry(),
        )
        try:
            async with Ingest(client, replicas=settings.redis_wait_replicas,
                              turn_each=not settings.guards("lease")) as ingest:
                yield {"redis": client, "ingest": ingest}
        finally:
            await client.aclose()

    webhook = WebhookRoute(secrets)
    routes = [
        Route(WEBHOOK_PATH, webhook, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        *metrics.routes(settings),
        *dashboard.routes(settings),
    ]
    return WebApp(webhook=webhook, routes=routes, lifespan=lifespan)
