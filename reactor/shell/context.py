"""What a handler is given: the clients of one worker process, opened once at start-up
(:mod:`reactor.shell.runtime`), and the routers its deliveries go through (:mod:`handlers`,
given by the entry point: the shell never imports them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import redis.asyncio
from gidgethub.routing import Router
from redis import Redis as SyncRedis

from reactor.core.events import Event
from reactor.core.view import Actor
from reactor.github import GitHubClient
from reactor.github.metrics import CallCounter
from reactor.process.settings import Settings
from reactor.store.audit import Outcome, for_event
from reactor.store.counters import AuditLog


@dataclass(frozen=True)
class Context:
    settings: Settings
    redis: redis.asyncio.Redis
    sync_redis: SyncRedis  # for RQ, which schedules jobs through a synchronous client
    audit_log: AuditLog
    github: GitHubClient
    app_login: str  # "<app-slug>[bot]": the account the reactor's own writes come from
    router: Router  # a delivery handled in a job of its own (installation, label, push, …)
    turn_router: Router  # the deliveries a competition's turn judges (issues, dependencies)
    calls: CallCounter | None = None  # GitHub calls counted for /metrics, written on close

    def is_self(self, actor: Actor | None) -> bool:
        """True for the App's own account (R10). Other bots are agents, not the reactor."""
        return actor is not None and actor.type == "Bot" and actor.login == self.app_login

    async def audit(
        self, event: Event, outcome: Outcome, *, now: datetime | None = None,
        rule: str = "", detail: str = "",
    ) -> None:
        await self.audit_log.record(for_event(event, outcome, now=now, rule=rule, detail=detail))

    async def aclose(self) -> None:
        if self.calls is not None:
            await self.calls.drain()
        await self.github.aclose()
        await self.redis.aclose()
        self.sync_redis.close()
