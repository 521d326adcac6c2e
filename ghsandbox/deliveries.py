"""The App's webhook delivery log, as ``/app/hook/deliveries`` shows it.

Every attempt to deliver a webhook to a hook URL is one :class:`Delivery` with its own id;
a redelivery is a new attempt with the same GUID (``X-GitHub-Delivery``) and
``redelivery: true`` (https://docs.github.com/rest/apps/webhooks#list-deliveries-for-an-app-webhook).
The log keeps the newest :data:`LOG_SIZE` attempts, as GitHub keeps only recent ones.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

LOG_SIZE = 10_000


@dataclass(slots=True)
class Delivery:
    """One delivery attempt; ``status_code`` is None until it has been made (0: no response)."""

    id: int
    guid: str
    event: str
    action: str | None
    url: str
    installation_id: int | None
    repository_id: int | None
    body: bytes
    headers: dict[str, str]
    redelivery: bool = False
    delivered_at: str = ""
    status_code: int | None = None
    status: str = "pending"
    duration: float = 0.0
    dropped: bool = False
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str | None = None

    def again(self, new_id: int, *, redelivery: bool) -> Delivery:
        """A new, not yet made attempt of the same delivery (same GUID, body and headers)."""
        return replace(
            self,
            id=new_id,
            redelivery=redelivery,
            delivered_at="",
            status_code=None,
            status="pending",
            duration=0.0,
            dropped=False,
            response_headers={},
            response_body=None,
        )

    def item(self) -> dict[str, Any]:
        """The ``hook-delivery-item`` shape of the list route."""
        return {
            "id": self.id,
            "guid": self.guid,
            "delivered_at": self.delivered_at,
            "redelivery": self.redelivery,
            "duration": self.duration,
            "status": self.status,
            "status_code": self.status_code or 0,
            "event": self.event,
            "action": self.action,
            "installation_id": self.installation_id,
            "repository_id": self.repository_id,
            "throttled_at": None,
        }

    def detail(self) -> dict[str, Any]:
        """The ``hook-delivery`` shape, with the request and response as recorded."""
        return {
            **self.item(),
            "url": self.url,
            "request": {"headers": self.headers, "payload": orjson.loads(self.body)},
            "response": {"headers": self.response_headers, "payload": self.response_body},
        }

    def summary(self) -> dict[str, Any]:
        """The ``GET /_sandbox/webhooks`` entry."""
        return {
            "guid": self.guid,
            "event": self.event,
            "action": self.action,
            "url": self.url,
            "status_code": self.status_code,
            "at": self.delivered_at,
            "delivery_id": self.id,
            "redelivery": self.redelivery,
            "dropped": self.dropped,
            "duration": self.duration,
        }


@dataclass
class DeliveryLog:
    """Attempts by id (oldest first), plus the order in which attempts finished, and the
    attempts not in the App's log yet (the ``late_log`` fault)."""

    by_id: OrderedDict[int, Delivery] = field(default_factory=OrderedDict)
    unlisted: set[int] = field(default_factory=set)
    finished: list[Delivery] = field(default_factory=list)
    finished_offset: int = 0

    def add(self, delivery: Delivery) -> None:
        self.by_id[delivery.id] = delivery
        while len(self.by_id) > LOG_SIZE:
            self.unlisted.discard(self.by_id.popitem(last=False)[0])

    def listed(self, delivery_id: int) -> Delivery | None:
        """The attempt ``delivery_id`` if the App's log shows it (made, and not held back)."""
        delivery = self.by_id.get(delivery_id)
        if delivery is None or delivery.status_code is None or delivery_id in self.unlisted:
            return None
        return delivery

    def mark_finished(self, delivery: Delivery) -> None:
        """Record a completed attempt for ``GET /_sandbox/webhooks`` (kept to LOG_SIZE)."""
        self.finished.append(delivery)
        if len(self.finished) > 2 * LOG_SIZE:
            drop = len(self.finished) - LOG_SIZE
            del self.finished[:drop]
            self.finished_offset += drop

    def finished_since(self, since: int) -> list[Delivery]:
        """Attempts finished after the ``since``-th one (counting from the first ever)."""
        return self.finished[max(0, since - self.finished_offset) :]

    def newest_first(self, *, before: int | None, status: str | None) -> list[Delivery]:
        """Made attempts, newest first, older than id ``before``, optionally success/failure."""
        out = []
        for delivery in reversed(self.by_id.values()):
            if delivery.status_code is None or (before is not None and delivery.id >= before):
                continue
            if delivery.id in self.unlisted:
                continue
            ok = 200 <= delivery.status_code < 300
            if (status == "success" and not ok) or (status == "failure" and ok):
                continue
            out.append(delivery)
        return out

    def clear(self) -> None:
        self.by_id.clear()
        self.unlisted.clear()
        self.finished.clear()
        self.finished_offset = 0
