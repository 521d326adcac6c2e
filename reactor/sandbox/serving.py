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

import uvicorn
from starlette.applications import Starlette

START_TIMEOUT_S = 15.0


def loopback_socket(port: int = 0) -> socket.socket:
    """A listening-ready socket bound to 127.0.0.1 (``port`` 0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@contextlib.contextmanager
def serve_in_thread(app: Starlette, *, port: int = 0) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 in a daemon thread; yields its base URL, stops at exit."""
    sock = loopback_socket(port)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    )
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
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
