"""Signed webhook deliveries to every hook URL, in order, with faults on request.

:meth:`Hub.emit` is called while a request changes the world: it freezes the payload into
bytes at once (a payload shows the state at the moment of the change, as GitHub's do) and
queues one delivery per hook URL. One task per hook URL sends them in order after the request
has returned, with GitHub's headers (https://docs.github.com/webhooks/webhook-events-and-payloads#delivery-headers),
records the receiver's status and duration in the delivery log, and never retries a failure
(GitHub does not either; the App's owner redelivers). Each sender keeps its connection alive
and replaces one the receiver has closed (see :mod:`ghsandbox.hookclient`), so a
delivery logged as failed (status 0) is one the receiver could not take on a new connection.
Faults: ``duplicate`` sends a delivery twice with the same GUID, ``reorder`` holds one back
until after the next, ``delay_ms`` waits before each send, ``drop`` records it as failed
(status 0) without sending, ``late_log`` leaves the attempts out of the App's delivery log
until it is cleared.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import random
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from ghsandbox.deliveries import Delivery, DeliveryLog
from ghsandbox.faults import WebhookFaults
from ghsandbox.hookclient import HookConnection, HookError
from ghsandbox.state import World, iso

HOOK_TIMEOUT_S = 10.0  # GitHub gives a receiver ten seconds
REORDER_HOLD_S = 0.5  # how long a held-back delivery waits for one to overtake it
HOOK_ID_BASE = 400_000


def sign(secret: str, body: bytes) -> dict[str, str]:
    """The ``X-Hub-Signature`` (SHA-1) and ``X-Hub-Signature-256`` headers for ``body``."""
    key = secret.encode()
    sha1 = hmac.new(key, body, hashlib.sha1).hexdigest()
    sha256 = hmac.new(key, body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature": f"sha1={sha1}", "X-Hub-Signature-256": f"sha256={sha256}"}


@dataclass
class Hook:
    """One receiver URL with its queue and sending tasks."""

    id: int
    url: str
    concurrency: int = 1
    queue: asyncio.Queue[Delivery] = field(default_factory=asyncio.Queue)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class Hub:
    """Builds, signs, queues and delivers webhooks; owns the delivery log."""

    def __init__(self, *, world: World, app_id: int, secret: str) -> None:
        self.world = world
        self.app_id = app_id
        self.secret = secret
        self.log = DeliveryLog()
        self.faults = WebhookFaults()
        self.hooks: list[Hook] = []
        self.user_agent = f"GitHub-Hookshot/{secrets.token_hex(4)[:7]}"
        self._pending: dict[int, str] = {}  # delivery id -> hook URL, until attempted
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self, urls: list[str]) -> None:
        """Start a sender for each hook URL."""
        for url in urls:
            self.add_hook(url)

    async def stop(self) -> None:
        for hook in self.hooks:
            for task in hook.tasks:
                task.cancel()
        for hook in self.hooks:
            for task in hook.tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.hooks.clear()

    def add_hook(self, url: str, *, concurrency: int = 1) -> Hook:
        """Add a receiver (idempotent per URL); later emits are delivered to it too."""
        for hook in self.hooks:
            if hook.url == url:
                return hook
        hook = Hook(HOOK_ID_BASE + len(self.hooks) + 1, url, concurrency)
        hook.tasks = [asyncio.create_task(self._run(hook)) for _ in range(concurrency)]
        self.hooks.append(hook)
        return hook

    def emit(self, event: str, payload: dict[str, Any]) -> str:
        """Queue ``payload`` as ``event`` to every hook; returns the delivery GUID."""
        guid = str(uuid.uuid4())
        body = orjson.dumps(payload)
        installation = payload.get("installation") or {}
        repository = payload.get("repository") or {}
        for hook in self.hooks:
            headers = {
                "Accept": "*/*",
                "Content-Type": "application/json",
                "User-Agent": self.user_agent,
                "X-GitHub-Delivery": guid,
                "X-GitHub-Event": event,
                "X-GitHub-Hook-ID": str(hook.id),
                "X-GitHub-Hook-Installation-Target-ID": str(self.app_id),
                "X-GitHub-Hook-Installation-Target-Type": "integration",
                **sign(self.secret, body),
            }
            self._enqueue(
                hook,
                Delivery(
                    self.world.next_id("delivery"),
                    guid,
                    event,
                    payload.get("action"),
                    hook.url,
                    installation.get("id"),
                    repository.get("id"),
                    body,
                    headers,
                ),
            )
        return guid

    def redeliver(self, delivery_id: int) -> Delivery | None:
        """Send a logged delivery again: same GUID and body, a new id, ``redelivery: true``."""
        old = self.log.by_id.get(delivery_id)
        hook = next((h for h in self.hooks if old is not None and h.url == old.url), None)
        if old is None or hook is None:
            return None
        new = old.again(self.world.next_id("delivery"), redelivery=True)
        self._enqueue(hook, new)
        return new

    async def drain(self, within_s: float) -> int:
        """Wait until every queued delivery was attempted; returns how many are still pending."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), within_s)
        return len(self._pending)

    def keep_only(self, urls: list[str]) -> None:
        """Stop and forget every hook whose URL is not in ``urls`` (used by reset)."""
        for hook in [h for h in self.hooks if h.url not in urls]:
            for task in hook.tasks:
                task.cancel()
            self.hooks.remove(hook)
            for delivery_id in [i for i, url in self._pending.items() if url == hook.url]:
                del self._pending[delivery_id]
        if not self._pending:
            self._idle.set()

    def _enqueue(self, hook: Hook, delivery: Delivery) -> None:
        self.log.add(delivery)
        self._pending[delivery.id] = hook.url
        self._idle.clear()
        hook.queue.put_nowait(delivery)

    def _done(self, delivery: Delivery) -> None:
        self.log.mark_finished(delivery)
        self._pending.pop(delivery.id, None)
        if not self._pending:
            self._idle.set()

    async def _run(self, hook: Hook) -> None:
        """Send ``hook``'s deliveries in order over one kept-alive connection."""
        connection = HookConnection(hook.url, timeout_s=HOOK_TIMEOUT_S)
        try:
            await self._send_all(hook, connection)
        finally:
            await connection.close()

    async def _send_all(self, hook: Hook, connection: HookConnection) -> None:
        """Take deliveries off the queue and attempt each, applying the reorder fault."""
        held: Delivery | None = None
        while True:
            try:
                timeout = REORDER_HOLD_S if held is not None else None
                delivery = await asyncio.wait_for(hook.queue.get(), timeout)
            except TimeoutError:
                if held is not None:
                    await self._attempt(held, connection)
                held = None
                continue
            if held is None and random.random() < self.faults.reorder:  # noqa: S311
                held = delivery
                continue
            await self._attempt(delivery, connection)
            if held is not None:
                await self._attempt(held, connection)
                held = None

    async def _attempt(self, delivery: Delivery, connection: HookConnection) -> None:
        """Deliver once (twice under the duplicate fault), or record a drop."""
        faults = self.faults
        if faults.delay_ms:
            await asyncio.sleep(faults.delay_ms / 1000)
        if random.random() < faults.drop:  # noqa: S311
            self._record(delivery, 0, "dropped by sandbox fault", 0.0, dropped=True)
            self._done(delivery)
            return
        await self._post(delivery, connection)
        duplicate = None
        if random.random() < faults.duplicate:  # noqa: S311
            duplicate = delivery.again(self.world.next_id("delivery"), redelivery=False)
            self.log.add(duplicate)
            self._pending[duplicate.id] = delivery.url
        self._done(delivery)
        if duplicate is not None:
            await self._post(duplicate, connection)
            self._done(duplicate)

    async def _post(self, delivery: Delivery, connection: HookConnection) -> None:
        started = time.perf_counter()
        try:
            response = await connection.post(delivery.body, delivery.headers)
        except TimeoutError:
            self._record(delivery, 0, "timed out", time.perf_counter() - started)
        except HookError:
            self._record(delivery, 0, "failed to connect to host", time.perf_counter() - started)
        else:
            ok = 200 <= response.status < 300
            status = "OK" if ok else f"Invalid HTTP Response: {response.status}"
            self._record(delivery, response.status, status, time.perf_counter() - started)
            delivery.response_headers = response.headers
            delivery.response_body = response.body[:2048].decode(errors="replace")

    def _record(
        self, delivery: Delivery, code: int, status: str, duration: float, *, dropped: bool = False
    ) -> None:
        delivery.status_code, delivery.status = code, status
        delivery.duration, delivery.dropped = round(duration, 4), dropped
        delivery.delivered_at = iso(self.world.clock())
        if self.faults.late_log:
            self.log.unlisted.add(delivery.id)
