"""The two load generators: ``wrk`` (closed loop, for throughput) and a fixed-rate one.

wrk cannot hold a constant rate and Debian has no ``wrk2``; ``hey`` can (``-q``) but sends the
same headers every time, so every request after the first would take the reactor's cheaper
duplicate path. The fixed rate therefore comes from :func:`fixed_rate`, a small open-loop
client on uvloop: request *i* is due at ``start + i / rate`` whether or not earlier ones have
been answered, and its latency counts from when it was due, so a stalled server cannot hide
behind a waiting client (no coordinated omission). It shares the 2 cores with the server;
its own floor shows in the same figure measured against the bare Starlette endpoint.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import uvloop

from bench._payload import Webhook

WRK_SCRIPT = Path(__file__).with_name("ingest.lua")
PATH = "/api/github/webhooks"


@dataclass(frozen=True, slots=True)
class Latencies:
    """What one load run measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failed: int  # socket errors and non-2xx answers

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def wrk(
    wrk_bin: str, port: int, body_file: Path, webhook: Webhook, *,
    seconds: float, connections: int, threads: int, tag: str,
) -> Latencies:
    """Run wrk with ``ingest.lua`` against ``port`` for ``seconds``."""
    argv = [wrk_bin, "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s",
            "--timeout", "5s", "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{port}{PATH}"]
    env = {**os.environ, "BENCH_BODY": str(body_file), "BENCH_SIGNATURE": webhook.signature,
           "BENCH_TAG": tag}
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=seconds + 30, check=True
    )
    r = json.loads(done.stdout.strip().splitlines()[-1])  # ingest.lua's done() line
    return Latencies(
        requests=r["requests"], seconds=r["duration_us"] / 1e6, p50_ms=r["p50_us"] / 1e3,
        p99_ms=r["p99_us"] / 1e3, failed=r["socket_errors"] + r["non_2xx"],
    )


def fixed_rate(
    port: int, webhook: Webhook, *, rate: int, seconds: float, tag: str, max_connections: int = 64
) -> tuple[Latencies, float]:
    """Send at ``rate``/s for ``seconds``; the latencies and the p99 lag of sends (ms)."""
    return uvloop.run(_fixed_rate(port, webhook, rate, seconds, tag, max_connections))


class _Connections:
    """Keep-alive connections to the server, at most ``limit`` open at once."""

    def __init__(self, port: int, limit: int) -> None:
        self._port = port
        self._free = asyncio.Semaphore(limit)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        async with self._free:
            conn = self._idle.pop() if self._idle else await asyncio.open_connection(
                "127.0.0.1", self._port)
            try:
                yield conn
            except BaseException:
                conn[1].close()
                raise
            self._idle.append(conn)

    async def open(self, count: int) -> None:
        """Connect ``count`` ahead, so the first requests do not pay for a handshake."""
        for _ in range(count):
            self._idle.append(await asyncio.open_connection("127.0.0.1", self._port))

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()


async def _fixed_rate(
    port: int, webhook: Webhook, rate: int, seconds: float, tag: str, limit: int
) -> tuple[Latencies, float]:
    head, tail = _request_parts(port, webhook)
    pool = _Connections(port, limit)
    await pool.open(8)
    latencies: list[float] = []
    lags: list[float] = []
    # perf_counter, not loop.time(): uvloop's clock ticks in whole milliseconds.
    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(int(rate * seconds)):
        due = start + i / rate
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        lags.append(time.perf_counter() - due)
        request = head + f"{tag}-{i}".encode() + tail
        tasks.append(asyncio.create_task(_post(pool, request, due, latencies)))
    outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    pool.close()
    failed = sum(1 for ok in outcomes if ok is not True)
    latencies.sort()
    lags.sort()
    return Latencies(
        requests=len(latencies), seconds=seconds, p50_ms=_percentile(latencies, 0.50) * 1e3,
        p99_ms=_percentile(latencies, 0.99) * 1e3, failed=failed,
    ), _percentile(lags, 0.99) * 1e3


async def _post(pool: _Connections, request: bytes, due: float, latencies: list[float]) -> bool:
    """Send one request; record its latency from ``due`` if it was answered 2xx."""
    async with pool.connection() as (reader, writer):
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(_content_length(head))
    if not head.startswith(b"HTTP/1.1 2"):
        return False
    latencies.append(time.perf_counter() - due)
    return True


def _request_parts(port: int, webhook: Webhook) -> tuple[bytes, bytes]:
    """The request before and after its X-GitHub-Delivery value (the body is signed once)."""
    head = (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\nUser-Agent: GitHub-Hookshot/bench\r\n"
            f"X-GitHub-Event: issues\r\nX-Hub-Signature-256: {webhook.signature}\r\n"
            f"Content-Length: {len(webhook.body)}\r\nX-GitHub-Delivery: ")
    return head.encode(), b"\r\n\r\n" + webhook.body


def _content_length(head: bytes) -> int:
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Agent:
    """One agent's keep-alive HTTP/1.1 connection to the sandbox: a request written as bytes
    and its answer read by ``Content-Length``. The throughput run's agents send thousands of
    requests, and httpx spent about 2 ms of the two shared cores on each event — more than
    the reactor — so what the benchmark measured was its own client."""

    def __init__(self, host: str, port: int, token: str) -> None:  # token "user:<login>"
        self._host, self._port, self._token = host, port, token
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(self, method: str, path: str, body: object) -> bytes:
        """The answer's body; RuntimeError unless it is a 2xx."""
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._streams
        payload = json.dumps(body).encode()
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
                     f"Authorization: token {self._token}\r\n"
                     "Content-Type: application/json\r\n"
                     f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        head = await reader.readuntil(b"\r\n\r\n")
        answer = await reader.readexactly(_content_length(head))
        if not head.startswith(b"HTTP/1.1 2"):
            status = head.split(b"\r\n", 1)[0].decode(errors="replace")
            raise RuntimeError(f"{method} {path}: {status} {answer!r}")
        return answer

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
