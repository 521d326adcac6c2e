"""Serving a Starlette app on loopback in a background thread (tests, scripts).

uvicorn runs in a daemon thread on a socket bound before it starts, so the port is known at
once and free-port races are impossible; the server stops when the ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette

START_TIMEOUT_S = 15.0
KEEP_ALIVE_S = 5  # uvicorn's default: an idle kept-alive connection is closed after 5 s


def loopback_socket(port: int = 0) -> socket.socket:
    """A listening-ready socket bound to 127.0.0.1 (``port`` 0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@dataclass(frozen=True)
class ServedApp:
    """A running server: its base URL and the uvicorn server behind it."""

    url: str
    server: uvicorn.Server

    def open_connections(self) -> int:
        """How many client connections the server holds open (kept-alive ones included)."""
        return len(self.server.server_state.connections)


@contextlib.contextmanager
def serve_in_thread(
    app: Starlette, *, port: int = 0, keep_alive_s: int = KEEP_ALIVE_S
) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 in a daemon thread; yields its base URL, stops at exit."""
    with serve_app_in_thread(app, port=port, keep_alive_s=keep_alive_s) as served:
        yield served.url


@contextlib.contextmanager
def serve_app_in_thread(
    app: Starlette, *, port: int = 0, keep_alive_s: int = KEEP_ALIVE_S
) -> Iterator[ServedApp]:
    """Like :func:`serve_in_thread`, but yields the server too, so callers can watch it.

    ``keep_alive_s`` is uvicorn's ``timeout_keep_alive``: how long an idle connection stays
    open (tests shorten it to reproduce a receiver that closes connections under a client).
    """
    sock = loopback_socket(port)
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="on",
        access_log=False,
        timeout_keep_alive=keep_alive_s,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="sandbox-server"
    )
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    try:
        yield ServedApp(f"http://127.0.0.1:{sock.getsockname()[1]}", server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
