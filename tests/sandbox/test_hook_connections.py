"""Webhook connections: kept alive, reopened when the receiver closed them, never lost.

Receivers close idle kept-alive connections (uvicorn after 5 s by default). A webhook sent
after such a pause must reach the receiver on a new connection, and a delivery is logged as
failed (status 0) only when the receiver really could not take it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

import h11
import pytest

from ghsandbox.config import SandboxConfig
from ghsandbox.hookclient import HookConnection, HookError, StaleConnection
from ghsandbox.testing import loopback_socket, run_receiver, run_sandbox


def test_a_webhook_after_the_receiver_closed_the_idle_connection_arrives(
    base_config: SandboxConfig,
) -> None:
    with (
        run_receiver(keep_alive_s=1) as receiver,
        run_sandbox(replace(base_config, webhook_urls=(receiver.url,))) as sandbox,
        sandbox.client() as client,
    ):
        client.create_repo("acme", "widgets")
        assert client.drain() == 0 and len(receiver.received) == 1
        assert receiver.open_connections() == 1  # the sender kept its connection alive
        receiver.wait_until_idle()  # uvicorn closed it after its keep-alive timeout
        client.as_user("alice", "POST", "/repos/acme/widgets/issues", json={"title": "t"})
        assert client.drain() == 0
        assert [w.event for w in receiver.received] == ["installation", "issues"]
        assert [w["status_code"] for w in client.webhooks()] == [200, 200]


def test_a_receiver_that_cannot_be_reached_is_logged_as_failed(
    base_config: SandboxConfig,
) -> None:
    with loopback_socket() as unused:  # bound but never listening: connections are refused
        url = f"http://127.0.0.1:{unused.getsockname()[1]}/hook"
        with run_sandbox(replace(base_config, webhook_urls=(url,))) as sandbox:
            with sandbox.client() as client:
                client.create_repo("acme", "widgets")
                assert client.drain() == 0
                assert [w["status_code"] for w in client.webhooks()] == [0]


@dataclass
class RawReceiver:
    """An HTTP/1.1 receiver on plain asyncio streams that misbehaves as a test chooses.

    Each connection answers its first ``answers`` requests (all when None), then reads the
    next one and closes without answering; with ``close_when_idle`` it closes each connection
    right after an answer, as a server whose keep-alive timeout passed does.
    """

    answers: int | None = None
    close_when_idle: bool = False
    requests: list[int] = field(default_factory=list)  # the connection number of each request
    connections: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number, conn, answered = self.connections, h11.Connection(h11.SERVER), 0
        try:
            while await _read_request(conn, reader):
                self.requests.append(number)
                if self.answers is not None and answered >= self.answers:
                    break
                writer.write(_answer(conn))
                await writer.drain()
                answered += 1
                if self.close_when_idle:
                    break
                conn.start_next_cycle()
        finally:
            writer.close()


async def _read_request(conn: h11.Connection, reader: asyncio.StreamReader) -> bool:
    """Read one whole request; False when the client closed the connection first."""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
        elif isinstance(event, h11.EndOfMessage):
            return True
        elif isinstance(event, h11.ConnectionClosed):
            return False


def _answer(conn: h11.Connection) -> bytes:
    head = conn.send(h11.Response(status_code=200, headers=[("Content-Length", "2")])) or b""
    return head + (conn.send(h11.Data(data=b"{}")) or b"") + (conn.send(h11.EndOfMessage()) or b"")


@contextlib.asynccontextmanager
async def raw_receiver(receiver: RawReceiver) -> AsyncIterator[str]:
    server = await asyncio.start_server(receiver.serve, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"


async def _post_twice(connection: HookConnection) -> list[int]:
    statuses = []
    for _ in range(2):
        statuses.append((await connection.post(b"{}", {"X-GitHub-Delivery": "g"})).status)
    return statuses


async def test_a_connection_is_kept_alive_between_deliveries() -> None:
    receiver = RawReceiver()
    async with raw_receiver(receiver) as url:
        connection = HookConnection(url, timeout_s=10)
        assert await _post_twice(connection) == [200, 200]
        await connection.close()
    assert receiver.requests == [1, 1] and connection.connects == 1


async def test_a_connection_idle_for_the_expiry_is_replaced_before_sending() -> None:
    now = [0.0]
    receiver = RawReceiver()
    async with raw_receiver(receiver) as url:
        connection = HookConnection(url, timeout_s=10, idle_expiry_s=1.0, clock=lambda: now[0])
        assert (await connection.post(b"{}", {})).status == 200
        now[0] += 1.0
        assert (await connection.post(b"{}", {})).status == 200
        await connection.close()
    assert receiver.requests == [1, 2]


async def test_a_connection_the_receiver_closed_is_replaced() -> None:
    receiver = RawReceiver(close_when_idle=True)
    async with raw_receiver(receiver) as url:
        connection = HookConnection(url, timeout_s=10, idle_expiry_s=3600)
        assert await _post_twice(connection) == [200, 200]
        await connection.close()
    assert receiver.requests == [1, 2]


async def test_a_reused_connection_closed_before_answering_is_retried_once_on_a_new_one() -> None:
    receiver = RawReceiver(answers=1)  # the second request on a connection meets a close
    async with raw_receiver(receiver) as url:
        connection = HookConnection(url, timeout_s=10, idle_expiry_s=3600)
        assert await _post_twice(connection) == [200, 200]
        await connection.close()
    assert receiver.requests == [1, 1, 2] and connection.connects == 2


async def test_a_new_connection_closed_before_answering_fails_without_a_retry() -> None:
    receiver = RawReceiver(answers=0)
    async with raw_receiver(receiver) as url:
        connection = HookConnection(url, timeout_s=10)
        with pytest.raises(HookError) as raised:
            await connection.post(b"{}", {})
    assert not isinstance(raised.value, StaleConnection)
    assert receiver.requests == [1] and connection.connects == 1
