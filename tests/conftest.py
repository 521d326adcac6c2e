"""Shared fixtures: real processes on loopback, no network.

``redis_server`` starts a private ``redis-server`` (append-only, on a free port, in a temp dir)
once per test session; ``redis_url`` hands each test its own flushed database.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from reactor.errors import ConfigError
from reactor.processes import find_binary



def sign(body: bytes, secret: str) -> str:
    """The ``X-Hub-Signature-256`` GitHub sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_headers(
    body: bytes, secret: str, *, event: str = "issues", guid: str = "d1"
) -> dict[str, str]:
    return {
        "X-GitHub-Event": event, "X-GitHub-Delivery": guid,
        "X-Hub-Signature-256": sign(body, secret), "Content-Type": "application/json",
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class RedisServer:
    """A private redis-server process that tests may stop and start again on the same port."""

    def __init__(self, directory: Path) -> None:
        try:
            self.binary = find_binary()
        except ConfigError as exc:
            pytest.skip(str(exc))
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.directory), "--appendonly", "yes",
                "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A clean database on the session's redis-server (restarted if a test stopped it)."""
    if redis_server.process is None:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url
