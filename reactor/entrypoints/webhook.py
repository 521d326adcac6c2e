"""The webhook route: verify → dedupe → store → enqueue → 202.

It is a plain ASGI callable rather than a ``Request`` endpoint: it is the hot path, and it
needs only the raw body and five headers (:class:`reactor.entrypoints.web.WebApp` calls it
before Starlette's middleware and router).

Nothing is buffered for a request that cannot be a delivery: the GitHub headers and the
signature's form are checked before the body is read, and such a request is answered at once
(and its connection closed). A body's first byte must come within :data:`FIRST_BYTE_TIMEOUT_S`
and the whole of it within :data:`BODY_TIMEOUT_S`; the bytes that have *arrived* (never what a
request declares, which costs an attacker nothing) count against :data:`MAX_BUFFERED` shared by
every request in flight and :data:`MAX_BUFFERED_PER_PEER` per client address, and feed the
HMAC of every configured secret as they arrive. Everything the route does after verifying
the signature is one batched Redis step (:mod:`reactor.store.ingest`); the worker does the rest.

See https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.types import Receive, Scope, Send

from reactor.core.errors import StoreUnavailable
from reactor.core.routing import route
from reactor.store.deliveries import Delivery
from reactor.store.ingest import ANSWER_WITHIN_S, Ingest

log = logging.getLogger(__name__)

MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB and does not send larger ones.
MAX_BUFFERED = 64 * 1024 * 1024  # body bytes held at once, across every request
MAX_BUFFERED_PER_PEER = MAX_BODY + 1024 * 1024  # body bytes one client address may hold
BODY_TIMEOUT_S = 10.0  # GitHub gives up on an answer after 10 s: a slower body is no delivery
FIRST_BYTE_TIMEOUT_S = 2.0  # GitHub sends the body right behind its headers
WEBHOOK_PATH = "/api/github/webhooks"
_GUID = re.compile(rb"[A-Za-z0-9][A-Za-z0-9-]{0,99}")
_EVENT = re.compile(rb"[a-z][a-z0-9_]{0,63}")
_SIGNATURE = re.compile(rb"sha256=([0-9a-fA-F]{64})")

# The request's headers by lower-case name, as ASGI gives them: a dict lookup rather than
# Starlette's ``Headers``, which scans and decodes the list on every get (~6 µs a request).
Headers = dict[bytes, bytes]


class Reject(Exception):
    """A delivery the route answers without storing: carries the status and the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class SignatureCheck:
    """``X-Hub-Signature-256`` checked as the body streams in: one HMAC per configured secret.

    ``keys`` are HMAC-SHA256 objects keyed with each secret and fed nothing (copying one skips
    hashing the key again); several secrets allow rotation without downtime. The digests are
    compared in constant time.
    """

    __slots__ = ("_expected", "_macs")

    def __init__(self, expected: bytes, keys: tuple[hmac.HMAC, ...]) -> None:
        self._expected = expected
        self._macs = [key.copy() for key in keys]

    @classmethod
    def from_header(cls, value: bytes | None, keys: tuple[hmac.HMAC, ...]) -> SignatureCheck:
        """The check for the header's ``sha256=<64 hex digits>``; Reject(401) for any other."""
        if not value:
            raise Reject(401, "X-Hub-Signature-256 is missing")
        match = _SIGNATURE.fullmatch(value)
        if match is None:
            raise Reject(401, "X-Hub-Signature-256 is malformed: expected sha256=<64 hex digits>")
        return cls(bytes.fromhex(match.group(1).decode()), keys)

    def update(self, chunk: bytes) -> None:
        for mac in self._macs:
            mac.update(chunk)

    def matches(self) -> bool:
        """True when the body read so far is signed with any of the secrets."""
        return any(hmac.compare_digest(mac.digest(), self._expected) for mac in self._macs)


def hmac_keys(secrets: tuple[bytes, ...]) -> tuple[hmac.HMAC, ...]:
    """An unfed HMAC-SHA256 per webhook secret, for :class:`SignatureCheck` to copy."""
    return tuple(hmac.new(secret, digestmod=hashlib.sha256) for secret in secrets)


class BodyBudget:
    """The body bytes held by every request in flight: at most ``limit`` in all and
    ``per_peer`` per client address.

    A request takes its bytes as they arrive and gives them all back once answered, so a
    request that declares a large ``Content-Length`` and sends nothing holds nothing (it is
    cut off at the first-byte deadline). A chunk over either cap is answered 503: GitHub
    shows the delivery as failed and it can be redelivered.
    """

    def __init__(self, limit: int, per_peer: int) -> None:
        self.limit = limit
        self.per_peer = per_peer
        self.held = 0
        self._peers: dict[str, int] = {}

    def take(self, peer: str, size: int) -> None:
        by_peer = self._peers.get(peer, 0) + size
        if self.held + size > self.limit or by_peer > self.per_peer:
            raise Reject(503, "the reactor is reading too many deliveries now; redeliver later")
        self.held += size
        self._peers[peer] = by_peer

    def give(self, peer: str, size: int) -> None:
        if not size:
            return
        self.held -= size
        left = self._peers[peer] - size
        if left:
            self._peers[peer] = left
        else:
            del self._peers[peer]


class ReadDeadlines:
    """Cuts off the request bodies whose first byte has not come ``first_byte`` seconds after
    their read began, or whose last has not come within ``timeout``.

    One check a second cancels every overdue read. ``asyncio.timeout`` would arm and close a
    libuv timer per request under uvloop: 14 µs of the route's ~40 µs (the route alone, one
    12 KB delivery, min of 60 runs), where a watched read costs a dict insert and delete.
    """

    def __init__(self, timeout: float, first_byte: float) -> None:
        self.timeout = timeout
        self.first_byte = first_byte
        self._watched: dict[asyncio.Task[Any], float] = {}
        self._cut: set[asyncio.Task[Any]] = set()
        self._sweeping: asyncio.AbstractEventLoop | None = None  # the loop a check is due on

    def watch(self, task: asyncio.Task[Any]) -> None:
        loop = task.get_loop()
        self._watched[task] = loop.time() + self.first_byte
        if self._sweeping is not loop:
            self._sweeping = loop
            loop.call_later(1.0, self._sweep, loop)

    def arrived(self, task: asyncio.Task[Any]) -> None:
        """The body's first bytes came: the whole body now has until ``timeout``."""
        self._watched[task] += self.timeout - self.first_byte

    def forget(self, task: asyncio.Task[Any]) -> None:
        del self._watched[task]

    def was_cut(self, task: asyncio.Task[Any]) -> bool:
        """True when ``task``'s cancellation was this deadline's alone (then it is undone)."""
        if task not in self._cut:
            return False
        self._cut.discard(task)
        return task.uncancel() == 0

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for task, deadline in self._watched.items():
            if deadline <= now and task not in self._cut:
                self._cut.add(task)
                task.cancel()
        if self._watched:
            loop.call_later(1.0, self._sweep, loop)
        else:
            self._sweeping = None


class WebhookRoute:
    """``POST /api/github/webhooks`` as an ASGI app (SPEC §4)."""

    def __init__(
        self, secrets: tuple[bytes, ...], *, max_buffered: int = MAX_BUFFERED,
        max_per_peer: int = MAX_BUFFERED_PER_PEER, body_timeout: float = BODY_TIMEOUT_S,
        first_byte_timeout: float = FIRST_BYTE_TIMEOUT_S,
    ) -> None:
        self._keys = hmac_keys(secrets)
        self._budget = BodyBudget(max_buffered, max_per_peer)
        self._deadlines = ReadDeadlines(body_timeout, first_byte_timeout)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ingest: Ingest = scope["state"]["ingest"]
        arrived = asyncio.get_running_loop().time()
        headers: Headers = dict(scope["headers"])
        client = scope.get("client")
        body = _Body(self._budget, client[0] if client else "")
        try:
            status, answer = await self._handle(headers, receive, body, ingest, arrived)
        except Reject as exc:
            await _send(send, exc.status, {"message": exc.reason}, close=True)
            return
        except Exception:  # answered here: the route runs outside Starlette's error middleware
            guid = _header(headers, b"x-github-delivery")
            log.exception("webhook delivery failed", extra={"delivery": guid})
            await _send(send, 500, {"message": "internal error; redeliver later"}, close=True)
            return
        finally:
            body.release()
        await _send(send, status, answer)

    async def _handle(
        self, headers: Headers, receive: Receive, body: _Body, ingest: Ingest, arrived: float
    ) -> tuple[int, dict[str, Any] | None]:
        event, guid = _delivery_headers(headers)
        check = SignatureCheck.from_header(headers.get(b"x-hub-signature-256"), self._keys)
        _check_declared_size(headers)
        received = await self._read_body(receive, check, body)
        if not check.matches():
            raise Reject(401, "X-Hub-Signature-256 matches no webhook secret")
        # A Redis that does not answer is waited for until GitHub's answer budget (10 s from
        # its request, upload included) is nearly spent: a restart costs no 503.
        return await _accept(headers, event, guid, received, ingest,
                             deadline=arrived + ANSWER_WITHIN_S)

    async def _read_body(self, receive: Receive, check: SignatureCheck, body: _Body) -> bytes:
        """The body, fed to ``check`` as it arrives; Reject(408) unless its first byte comes
        within the first-byte deadline and all of it within the body deadline (a client
        trickling it, or sending none, would otherwise hold a connection for ever)."""
        task = asyncio.current_task()
        assert task is not None  # an ASGI app always runs in a task
        self._deadlines.watch(task)
        try:
            return await body.read(receive, check, lambda: self._deadlines.arrived(task))
        except asyncio.CancelledError:
            if not self._deadlines.was_cut(task):
                raise
            if body.size:
                reason = f"the body did not arrive within {self._deadlines.timeout:g} s"
            else:
                reason = f"no body arrived within {self._deadlines.first_byte:g} s"
            raise Reject(408, reason) from None
        finally:
            self._deadlines.forget(task)


class _Body:
    """One request's body as it arrives: its bytes taken from the budget chunk by chunk, and
    all given back by :meth:`release` once the request is answered."""

    __slots__ = ("_budget", "_peer", "size")

    def __init__(self, budget: BodyBudget, peer: str) -> None:
        self._budget = budget
        self._peer = peer
        self.size = 0  # bytes received, and held from the budget

    async def read(self, receive: Receive, check: SignatureCheck,
                   first: Callable[[], None]) -> bytes:
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Reject(400, "client disconnected before the body was read")
            chunk = message.get("body", b"")
            if chunk:
                if not self.size:
                    first()
                if self.size + len(chunk) > MAX_BODY:  # chunked: a declared one cannot
                    raise Reject(413, "payload is larger than 25 MiB")
                self._budget.take(self._peer, len(chunk))
                self.size += len(chunk)
                check.update(chunk)
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def release(self) -> None:
        self._budget.give(self._peer, self.size)
        self.size = 0


async def _accept(
    headers: Headers, event: str, guid: str, body: bytes, ingest: Ingest,
    *, deadline: float,
) -> tuple[int, dict[str, Any] | None]:
    """Store a verified delivery for its scope's turn (or a job of its own): 202, 200 for a
    duplicate or ``ping``, or 503."""
    payload, parsed = _payload(body, _header(headers, b"content-type"))
    if event == "ping":
        return 200, {"pong": True}
    delivery = Delivery(
        guid=guid, event=event, body=payload, received_at=time.time(),
        hook_id=_header(headers, b"x-github-hook-id"),
        target_type=_header(headers, b"x-github-hook-installation-target-type"),
        target_id=_header(headers, b"x-github-hook-installation-target-id"),
    )
    try:
        accepted = await ingest.accept(delivery, route(event, parsed), deadline=deadline)
    except StoreUnavailable as exc:
        log.warning("delivery refused: %s", exc, extra={"delivery": guid, "event": event})
        reason = "the reactor cannot store deliveries right now; redeliver later"
        raise Reject(503, reason) from None
    if not accepted:
        return 200, {"duplicate": True}
    # No body: GitHub reads only the status, and a body is a second write to the socket
    # in uvicorn (263 → 233 µs of web CPU a request on bench/ingest.py without it).
    return 202, None


def _delivery_headers(headers: Headers) -> tuple[str, str]:
    """``X-GitHub-Event`` and ``X-GitHub-Delivery``, or Reject(400) if missing or malformed."""
    event = _required(headers, b"x-github-event")
    guid = _required(headers, b"x-github-delivery")
    if not _EVENT.fullmatch(event) or not _GUID.fullmatch(guid):
        raise Reject(400, "X-GitHub-Event or X-GitHub-Delivery is malformed")
    return event.decode(), guid.decode()


def _check_declared_size(headers: Headers) -> None:
    """Reject(413) for a ``Content-Length`` over 25 MiB (a chunked body is counted as it
    arrives; the parser vets the header's form)."""
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise Reject(413, "payload is larger than 25 MiB")


def _header(headers: Headers, name: bytes) -> str:
    return headers.get(name, b"").decode("latin-1")


def _required(headers: Headers, name: bytes) -> bytes:
    value = headers.get(name, b"")
    if not value:
        raise Reject(400, f"{name.decode()} header is missing")
    return value


def _payload(body: bytes, content_type: str) -> tuple[bytes, dict[str, Any]]:
    """The JSON payload — the body itself, or its ``payload`` field when form-encoded — and
    the object it holds."""
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
    return body, parsed


async def _send(
    send: Send, status: int, answer: dict[str, Any] | None, *, close: bool = False
) -> None:
    """Answer ``status`` with ``answer`` as JSON, or with no body when it is None.

    ``close`` ends the connection after the answer: a refused request's body may still be
    arriving, and uvicorn would otherwise read and discard all of it to keep the connection.
    """
    body = b"" if answer is None else orjson.dumps(answer)
    headers = [(b"content-length", b"%d" % len(body))]
    if answer is not None:
        headers.append((b"content-type", b"application/json"))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
