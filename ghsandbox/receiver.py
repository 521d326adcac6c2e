"""A webhook receiver for tests: records every delivery the sandbox sends it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ghsandbox.serving import KEEP_ALIVE_S, serve_app_in_thread


@dataclass(frozen=True)
class ReceivedWebhook:
    """One webhook request as a receiver got it."""

    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> str:
        return self.headers.get("x-github-event", "")

    @property
    def guid(self) -> str:
        return self.headers.get("x-github-delivery", "")

    @property
    def payload(self) -> dict[str, Any]:
        result: dict[str, Any] = orjson.loads(self.body)
        return result


@dataclass
class WebhookReceiver:
    """Records every webhook it receives and answers ``status``."""

    url: str = ""
    status: int = 200
    received: list[ReceivedWebhook] = field(default_factory=list)
    open_connections: Callable[[], int] = field(default=lambda: 0)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedWebhook]:
        """Block until ``count`` webhooks arrived (TimeoutError otherwise); returns them all."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.received)} of {count} webhooks after {timeout}s")
            time.sleep(0.01)
        return list(self.received)

    def wait_until_idle(self, timeout: float = 10.0) -> None:
        """Block until the receiver holds no open connection (TimeoutError otherwise).

        Once its keep-alive timeout has passed, the server has closed every idle connection:
        a sender that still holds one must notice, reconnect and send.
        """
        deadline = time.monotonic() + timeout
        while self.open_connections():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.open_connections()} connections open after {timeout}s")
            time.sleep(0.01)


@contextlib.contextmanager
def run_receiver(
    *, status: int = 200, keep_alive_s: int = KEEP_ALIVE_S
) -> Iterator[WebhookReceiver]:
    """A webhook receiver on a free loopback port, in a daemon thread (uvicorn, which closes
    idle kept-alive connections after ``keep_alive_s`` seconds)."""
    receiver = WebhookReceiver(status=status)

    async def receive(request: Request) -> Response:
        receiver.received.append(ReceivedWebhook(dict(request.headers), await request.body()))
        return Response(b"{}", status_code=receiver.status, media_type="application/json")

    app = Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])
    with serve_app_in_thread(app, keep_alive_s=keep_alive_s) as served:
        receiver.url = f"{served.url}/api/github/webhooks"
        receiver.open_connections = served.open_connections
        yield receiver
