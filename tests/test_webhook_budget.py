"""The webhook route's body budget against hostile peers, on the real web process.

Issue 17's first finding: requests that only *declare* a large body must hold nothing, so
that a stranger cannot make the route refuse GitHub. What is held is what has arrived, one
client address holds at most a little over one maximal delivery, and a body's first byte has
a short deadline.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from reactor.entrypoints.webhook import (
    FIRST_BYTE_TIMEOUT_S,
    MAX_BODY,
    MAX_BUFFERED_PER_PEER,
    BodyBudget,
    Reject,
)
from tests.conftest import sign
from tests.test_security_edge import (
    MIB,
    PAYLOAD,
    SECRET,
    Web,
    answer,
    request_headers,
    send_body,
    start_request,
)
from tests.test_security_edge import web as web

pytestmark = pytest.mark.slow


def test_the_budget_counts_bytes_per_peer_and_in_all() -> None:
    budget = BodyBudget(limit=10, per_peer=6)
    budget.take("a", 6)
    with pytest.raises(Reject) as refused:
        budget.take("a", 1)
    assert refused.value.status == 503
    budget.take("b", 4)
    with pytest.raises(Reject):
        budget.take("c", 1)  # 10 held in all
    budget.give("a", 6)
    budget.take("c", 5)
    budget.give("b", 4)
    budget.give("c", 5)
    assert budget.held == 0


def connect(port: int, headers: dict[str, str | bytes], *, source: str) -> socket.socket:
    """A connection from the address ``source`` that has sent a request's head."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    lines = [b"POST /api/github/webhooks HTTP/1.1"]
    lines += [name.encode() + b": " + (value if isinstance(value, bytes) else value.encode())
              for name, value in headers.items()]
    conn.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
    return conn


@contextmanager
def hanging(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that each declare a third of the 64 MiB buffer budget as their
    body, well signed in form, and send only their head."""
    signature = sign(b"", SECRET)
    conns = [connect(port, request_headers(22369621, signature=signature), source="127.0.0.1")
             for _ in range(count)]
    try:
        yield conns
    finally:
        for conn in conns:
            conn.close()


def test_requests_that_declare_big_bodies_and_send_none_cannot_block_github(web: Web) -> None:
    """The issue's attack: requests declare a third of the budget each and send nothing
    (three used to hold all of it). A signed
    delivery meanwhile is answered 202, and each hanging request is cut off with 408 once
    its first-byte deadline passes (a check a second: within FIRST_BYTE_TIMEOUT_S + 1 s)."""
    assert web.post(PAYLOAD).status_code == 202  # warm: the lazily opened Redis connection
    with hanging(web.port, 6) as conns:
        for _ in range(5):
            assert web.post(PAYLOAD).status_code == 202
        for conn in conns:
            status, headers, body = answer(conn, timeout=FIRST_BYTE_TIMEOUT_S + 10)
            assert (status, headers["connection"]) == (408, "close")
            assert b"no body arrived" in body
    assert web.post(PAYLOAD).status_code == 202


def test_one_peer_holds_at_most_a_little_over_one_maximal_body(web: Web) -> None:
    """A peer that has sent 20 MiB of one body may not send 10 MiB of another (503, it can
    redeliver), while another address's delivery — and a small one of the same peer's, which
    fits beside the 20 MiB — is answered 202."""
    signature = sign(b"", SECRET)
    first = start_request(web.port, request_headers(MAX_BODY, signature=signature))
    second = None
    try:
        assert send_body(first, 20 * MIB) == 20 * MIB
        time.sleep(0.5)  # the web process has read what was sent
        second = start_request(web.port, request_headers(MAX_BODY, signature=signature))
        send_body(second, 10 * MIB)
        status, _, body = answer(second)
        assert status == 503 and b"redeliver" in body
        assert 20 * MIB + 10 * MIB > MAX_BUFFERED_PER_PEER
        assert web.post(PAYLOAD).status_code == 202
    finally:
        first.close()
        if second is not None:
            second.close()


def test_bodies_that_arrived_are_capped_in_all(web: Web) -> None:
    """Three addresses each send 22 MiB of a body: the bytes held in all reach the 64 MiB
    cap, so the third is answered 503 when its bytes would pass it; once the first two are
    answered (their bodies are not signed: 401), a delivery is taken again."""
    signature = sign(b"", SECRET)
    conns = []
    try:
        for n in (2, 3, 4):
            head = request_headers(22 * MIB, signature=signature)
            conns.append(connect(web.port, head, source=f"127.0.0.{n}"))
        for conn in conns[:2]:
            assert send_body(conn, 22 * MIB - 1) == 22 * MIB - 1  # all but the last byte
        time.sleep(0.5)
        send_body(conns[2], 22 * MIB)
        status, _, body = answer(conns[2])
        assert status == 503 and b"redeliver" in body
        for conn in conns[:2]:
            conn.sendall(b"x")
            assert answer(conn)[0] == 401
        assert web.post(PAYLOAD).status_code == 202
    finally:
        for conn in conns:
            conn.close()
