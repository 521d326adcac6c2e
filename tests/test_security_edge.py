"""Hostile requests against the real web process (``reactor serve`` on a real socket).

Issue 11's findings 5, 9 and 12 as they reach the process: requests that cannot be deliveries
are answered before their body is read, a body has a deadline and the bodies held at once are
capped, a malformed signature is a 401 (never a 500), ``/readyz`` names no host, and
``reactor dev``'s private Redis has a password that nothing it prints shows. Issue 17's
finding 2: a request over loopback that names another host (DNS rebinding) is not local.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
import redis

from reactor.entrypoints.webhook import BODY_TIMEOUT_S, MAX_BODY, WEBHOOK_PATH
from tests.conftest import (
    assert_no_failed_jobs,
    free_port,
    sign,
    stop_group,
    wait_for_port,
    webhook_headers,
)
from tests.test_cli import _lines, _read_until, background_job, clean_env, dev_redis_url

pytestmark = pytest.mark.slow

SECRET = "the webhook secret of these tests"
PAYLOAD = orjson.dumps({"action": "labeled", "issue": {"number": 1}})
MIB = 1024 * 1024
DEAD_REDIS_PASSWORD = "pw-of-a-redis-that-is-not-there"


@dataclass
class Web:
    """A running ``reactor serve`` and the file its output goes to."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def bytes_read(self) -> int:
        """Every byte the web process has read so far, from sockets and files alike: the
        kernel's ``rchar`` count (its read(2) calls; uvicorn's event loop reads sockets so)."""
        io = Path(f"/proc/{self.process.pid}/io").read_text()
        return int(next(line.split()[1] for line in io.splitlines()
                        if line.startswith("rchar:")))

    def post(self, body: bytes) -> httpx.Response:
        """A signed delivery of ``body``, as GitHub sends it."""
        headers = webhook_headers(body, SECRET, guid=str(uuid.uuid4()))
        return httpx.post(f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}", content=body,
                          headers=headers, timeout=10)


@contextmanager
def serving(redis_url: str, log_dir: Path) -> Iterator[Web]:
    """``reactor serve`` on a free port with this module's secret."""
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "WEBHOOK_SECRET": SECRET,
           "LOG_LEVEL": "info", "SENTRY_DSN": ""}
    log = log_dir / "web.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "reactor", "serve", "--port",
                                    str(port)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        wait_for_port(port)
        yield Web(port, process, log)
    finally:
        stop_group(process)


@pytest.fixture
def web(redis_url: str, tmp_path: Path) -> Iterator[Web]:
    with serving(redis_url, tmp_path) as running:
        yield running


@pytest.fixture
def web_without_redis(tmp_path: Path) -> Iterator[Web]:
    """The web process pointed at a Redis that is not there (with a password in its URL)."""
    with serving(f"redis://:{DEAD_REDIS_PASSWORD}@127.0.0.1:{free_port()}/0", tmp_path) as running:
        yield running


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, int]]:
    """``reactor dev`` with no Redis or App configured, and the banner it printed; stopped
    with Ctrl-C, and whatever is left of its processes killed, however the test ends."""
    port = free_port()
    with background_job("dev", "--port", str(port), "--workers", "1", stdout=subprocess.PIPE,
                        text=True, env=clean_env(), cwd=tmp_path) as tree:
        process = tree.process
        assert process.stdout is not None
        banner = _read_until(_lines(process.stdout), "Press Ctrl-C to stop.")
        yield process, banner, port
        assert_no_failed_jobs(dev_redis_url(banner))  # its worker and the demo's work
        tree.interrupt(signal.SIGINT)


def request_headers(
    length: int, *, signature: str | bytes | None, guid: str | None = None
) -> dict[str, str | bytes]:
    headers: dict[str, str | bytes] = {
        "Host": "127.0.0.1", "Content-Type": "application/json", "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": guid or str(uuid.uuid4()), "Content-Length": str(length),
    }
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return headers


def start_request(port: int, headers: dict[str, str | bytes], first: bytes = b"") -> socket.socket:
    """A connection that has sent the request line, ``headers`` and ``first`` body bytes."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    lines = [f"POST {WEBHOOK_PATH} HTTP/1.1".encode()]
    for name, value in headers.items():
        raw = value if isinstance(value, bytes) else value.encode()
        lines.append(name.encode() + b": " + raw)
    conn.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + first)
    return conn


def answer(conn: socket.socket, *, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body of the response on ``conn``; fails if none comes in time."""
    conn.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"connection closed without an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    while len(body) < int(headers.get("content-length", "0")):
        body += conn.recv(65536)
    return int(status_line.split()[1]), headers, body


def send_body(conn: socket.socket, size: int) -> int:
    """Send up to ``size`` bytes of body; how many were sent before the server hung up."""
    block, sent = b"x" * MIB, 0
    try:
        while sent < size:
            sent += conn.send(block[: size - sent])
    except OSError:
        pass
    return sent


def test_requests_without_a_signature_are_refused_before_their_body(web: Web) -> None:
    """Three connections declaring 20 MiB each with no signature: each is answered 401 before
    any body byte is sent, the connection is closed, and the web process reads none of it
    (counted in bytes read, not as memory: SPEC §7 leaves memory figures to bench/)."""
    assert web.post(PAYLOAD).status_code == 202  # warm: the lazily opened Redis connection
    before = web.bytes_read()
    conns = [start_request(web.port, request_headers(20 * MIB, signature=None)) for _ in range(3)]
    try:
        for conn in conns:
            status, headers, body = answer(conn)
            assert (status, headers["connection"]) == (401, "close")
            assert b"X-Hub-Signature-256 is missing" in body
        assert all(send_body(conn, 20 * MIB) < 20 * MIB for conn in conns)
    finally:
        for conn in conns:
            conn.close()
    read = web.bytes_read() - before
    assert read < MIB, f"the web process read {read} bytes of the refused bodies"
    body = PAYLOAD + b" " * MIB  # the count sees socket reads: an accepted body is counted
    assert web.post(body).status_code == 202
    assert web.bytes_read() - before - read >= len(body)


@pytest.mark.parametrize("signature", [
    "sha256=é".encode() + b"0" * 63,
    b"sha256=\xff\xfe" + b"0" * 62,
    b"sha256=" + b"g" * 64,
    b"sha256=" + b"0" * 63,
    b"sha1=" + b"0" * 40,
    b"sha256 = " + b"0" * 64,
])
def test_a_malformed_signature_is_401_before_the_body_never_a_500(
    web: Web, signature: bytes
) -> None:
    conn = start_request(web.port, request_headers(len(PAYLOAD), signature=signature))
    try:
        status, _, body = answer(conn)
    finally:
        conn.close()
    assert status == 401 and b"malformed" in body
    assert web.post(PAYLOAD).status_code == 202
    assert "Traceback" not in web.log.read_text(errors="replace")


def test_a_body_trickling_in_is_cut_off_at_the_deadline(web: Web) -> None:
    """A signed-looking request whose body comes a byte a second is answered 408 and closed."""
    conn = start_request(web.port, request_headers(1000, signature=sign(b"", SECRET)), b"{")
    deadline = time.monotonic() + BODY_TIMEOUT_S + 10
    try:
        while not select.select([conn], [], [], 1.0)[0]:
            assert time.monotonic() < deadline, "the server still waits for the body"
            conn.send(b" ")
        status, headers, body = answer(conn)
        assert (status, headers["connection"]) == (408, "close") and b"did not arrive" in body
        assert conn.recv(1) == b""
    finally:
        conn.close()


def test_a_chunked_body_over_25_mib_is_413(web: Web) -> None:
    headers = request_headers(0, signature=sign(b"", SECRET))
    del headers["Content-Length"]
    headers["Transfer-Encoding"] = "chunked"
    conn = start_request(web.port, headers)
    chunk = b"%x\r\n" % MIB + b" " * MIB + b"\r\n"
    try:
        for _ in range(MAX_BODY // MIB + 2):
            if select.select([conn], [], [], 0)[0]:
                break
            conn.sendall(chunk)
        status, _, body = answer(conn)
    finally:
        conn.close()
    assert status == 413 and b"25 MiB" in body


def test_readyz_says_only_unavailable(web_without_redis: Web) -> None:
    response = httpx.get(f"http://127.0.0.1:{web_without_redis.port}/readyz", timeout=10)
    assert (response.status_code, response.json()) == (503, {"status": "unavailable"})
    log = web_without_redis.log.read_text(errors="replace")
    assert "not ready" in log and DEAD_REDIS_PASSWORD not in log


def test_reactor_dev_gives_its_redis_a_password_it_never_prints(
    dev: tuple[subprocess.Popen[str], str, int],
) -> None:
    process, banner, port = dev
    assert "full URL in " in banner, banner
    url_file = Path(banner.split("full URL in ")[1].split(")")[0])
    url = url_file.read_text()
    password = urlsplit(url).password
    assert password is not None
    assert len(password) >= 32 and password not in banner
    assert "redis://:***@127.0.0.1:" in banner
    assert stat.S_IMODE(url_file.stat().st_mode) == 0o600
    with redis.Redis(port=urlsplit(url).port or 6379) as unauthenticated:
        with pytest.raises(redis.AuthenticationError):
            unauthenticated.ping()
    with redis.Redis.from_url(url) as authenticated:
        assert authenticated.ping()
    # The children were handed the URL with its password: the web process is ready.
    ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    assert process.poll() is None


REBOUND_HOST = "attacker.example:3000"  # a page elsewhere, its name rebound to 127.0.0.1


@pytest.mark.parametrize("path", ["/", "/metrics"])
def test_a_rebound_name_over_loopback_gets_no_operator_route(web: Web, path: str) -> None:
    url = f"http://127.0.0.1:{web.port}{path}"
    rebound = httpx.get(url, headers={"Host": REBOUND_HOST}, timeout=10)
    assert rebound.status_code == 403 and "DASHBOARD_TOKEN" in rebound.text
    assert httpx.get(url, headers={"Host": f"localhost:{web.port}"}, timeout=10).status_code == 200
    assert httpx.get(url, timeout=10).status_code == 200  # Host: 127.0.0.1:<port>


def test_a_rebound_name_over_loopback_gets_no_setup_page(tmp_path: Path) -> None:
    """``reactor serve`` with no App configured serves ``/setup``, whose page holds the
    ``state`` that completes the registration."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "reactor", "serve", "--port",
                                str(port)], env=clean_env(), cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        wait_for_port(port)
        url = f"http://127.0.0.1:{port}/setup"
        assert httpx.get(url, headers={"Host": REBOUND_HOST}, timeout=10).status_code == 403
        assert httpx.get(url, timeout=10).status_code == 200
    finally:
        stop_group(process)
