"""The running sandbox: one object holding the world, the hub, limits, faults and logs.

Created by :func:`ghsandbox.app.create_app` and shared by the REST pipeline and the
control routes; the app's lifespan starts and stops the parts that do I/O (the hub's HTTP
client and senders, the state-dir writer).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from ghsandbox.config import DEFAULT_TOKEN_LIFETIME_S, SandboxConfig
from ghsandbox.faults import Faults, RateLimits
from ghsandbox.payloads import Emitter
from ghsandbox.state import World
from ghsandbox.view import View
from ghsandbox.webhooks import Hub

REQUEST_LOG_SIZE = 50_000


def iso_ms(epoch: float) -> str:
    """Epoch seconds as an ISO 8601 UTC time with milliseconds."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
    return f"{seconds}.{int(epoch % 1 * 1000):03d}Z"


@dataclass
class RequestLog:
    """API calls received, oldest first; ``since`` counts from the first call ever made."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    offset: int = 0

    def add(self, method: str, path: str, status: int, actor: str | None, at: float) -> None:
        self.entries.append(
            {"method": method, "path": path, "status": status, "actor": actor, "at": iso_ms(at)}
        )
        if len(self.entries) > 2 * REQUEST_LOG_SIZE:
            drop = len(self.entries) - REQUEST_LOG_SIZE
            del self.entries[:drop]
            self.offset += drop

    def since(self, n: int) -> list[dict[str, Any]]:
        return self.entries[max(0, n - self.offset) :]

    def clear(self) -> None:
        self.entries.clear()
        self.offset = 0


class Sandbox:
    """Everything one sandbox server holds in memory."""

    def __init__(self, config: SandboxConfig, world: World | None = None) -> None:
        self.config = config
        self.public_key: RSAPublicKey = config.public_key()
        self.world = world or World()
        self.hub = Hub(world=self.world, app_id=config.app_id, secret=config.webhook_secret)
        self.limits = RateLimits()
        self.faults = Faults()
        self.requests = RequestLog()
        self.token_lifetime_s: float = DEFAULT_TOKEN_LIFETIME_S
        self.hook_insecure_ssl = "0"  # the App's webhook config (PATCH /app/hook/config)

    @property
    def bot_login(self) -> str:
        return f"{self.config.app_slug}[bot]"

    def view(self, base: str) -> View:
        return View(base, self.world, self.config.app_id, self.config.app_slug)

    def emitter(self, base: str, sender: str) -> Emitter:
        return Emitter(self.view(base), self.hub, sender)

    def set_faults(self, faults: Faults) -> None:
        self.faults = faults
        self.hub.faults = faults.webhooks
        if not faults.webhooks.late_log:
            self.hub.log.unlisted.clear()  # the log catches up
        self.limits.force(faults)

    def reset(self) -> None:
        """Forget every repository, account, token, delivery, request and fault.

        The App's credentials and the hook URLs given at start stay: they are the App's
        configuration, not state.
        """
        self.world.accounts.clear()
        self.world.installations.clear()
        self.world.repos.clear()
        self.world.comments.clear()
        self.world.tokens.clear()
        self.world.counters.clear()
        self.world.hook_urls[:] = list(self.config.webhook_urls)
        self.world.reindex()
        self.world.touch()
        self.hub.log.clear()
        self.limits = RateLimits()
        self.set_faults(Faults())
        self.requests.clear()
        self.token_lifetime_s = DEFAULT_TOKEN_LIFETIME_S
        self.hook_insecure_ssl = "0"
