"""A competition's burst of changes in Redis: the scope, the changes' encoding, parking a
burst for the settle window, and the scheduled checks that pick it up again.

A scope is what one lease covers: a competition of a repository, or one issue outside any.
Scheduled checks are RQ jobs whose ids derive from a hash of the scope, so any competition
name (spaces, dots, any script) is schedulable, and two scopes never share a job id; a check
rescheduled for the same scope replaces the earlier one rather than piling up.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import orjson
import redis.asyncio
from redis import Redis as SyncRedis
from rq import Queue

from reactor.model import Actor, Repo
from reactor.store import keys
from reactor.store.ingest import JOB_RETRY, JOB_TIMEOUT_S
from reactor.view import Change, ChangeKind

CHECK_RESULT_TTL_S = 600
CHECK_FAILURE_TTL_S = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Scope:
    """What one lease covers: a competition of a repository, or one issue outside any."""

    repo: Repo
    installation_id: int
    comp: str | None
    issue: int | None = None

    @property
    def key(self) -> str:
        if self.comp:
            return f"{self.repo.id}:comp:{self.comp}"
        return f"{self.repo.id}:issue:{self.issue}"

    @property
    def digest(self) -> str:
        """A short hash of :attr:`key`: safe in job ids whatever the competition's name."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:20]

    def dumps(self) -> str:
        return orjson.dumps({
            "owner": self.repo.owner, "name": self.repo.name, "repo_id": self.repo.id,
            "installation_id": self.installation_id, "comp": self.comp, "issue": self.issue,
        }).decode()

    @classmethod
    def loads(cls, text: str) -> Scope:
        data = orjson.loads(text)
        return cls(Repo(data["owner"], data["name"], data["repo_id"]), data["installation_id"],
                   data["comp"], data["issue"])


def encode(change: Change) -> bytes:
    return orjson.dumps({
        "kind": change.kind.value, "issue": change.issue, "label": change.label,
        "delivery": change.delivery_id, "at": change.at.isoformat(),
        "actor": {"login": change.actor.login, "id": change.actor.id, "type": change.actor.type},
        "shown": None if change.shown is None else sorted(change.shown),
        "other": change.other,
        "opened_with": None if change.opened_with is None else sorted(change.opened_with),
    })


def decode(raw: bytes) -> Change:
    data = orjson.loads(raw)
    actor = Actor(data["actor"]["login"], data["actor"]["id"], data["actor"]["type"])
    shown, opened_with = data.get("shown"), data.get("opened_with")
    return Change(ChangeKind(data["kind"]), data["issue"], actor, data["delivery"],
                  datetime.fromisoformat(data["at"]), data["label"],
                  None if shown is None else frozenset(shown), data.get("other"),
                  None if opened_with is None else frozenset(opened_with))


async def park(client: redis.asyncio.Redis, scope: Scope, changes: list[Change]) -> None:
    """Keep ``changes`` aside until the settle window ends (see :func:`unpark`)."""
    if changes:
        async with client.pipeline(transaction=True) as pipe:
            pipe.rpush(keys.settling(scope.key), *(encode(c) for c in changes))
            pipe.expire(keys.settling(scope.key), keys.SCOPE_TTL_S)
            await pipe.execute()


async def unpark(client: redis.asyncio.Redis, scope: Scope) -> None:
    """Parked changes rejoin the burst, before the changes that arrived since."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.lrange(keys.settling(scope.key), 0, -1)
        pipe.delete(keys.settling(scope.key))
        parked, _ = await pipe.execute()
    if parked:
        await client.lpush(keys.pending(scope.key), *reversed(parked))


def schedule(connection: SyncRedis, scope: Scope, *, at: datetime, kind: str) -> None:
    """Run ``reactor.jobs.evaluate_scope`` for the scope at ``at`` (RQ's scheduler), retried
    like a delivery when GitHub fails it.

    ``kind`` is ``check`` (one per scope: a later call moves it) or ``settle`` (one per scope
    and second, so two settle windows never cancel each other)."""
    suffix = f"-{int(at.timestamp())}" if kind == "settle" else ""
    Queue(keys.QUEUE_EVENTS, connection=connection).enqueue_at(
        at, "reactor.jobs.evaluate_scope", scope.dumps(),
        job_id=f"{kind}-{scope.digest}{suffix}", retry=JOB_RETRY, job_timeout=JOB_TIMEOUT_S,
        result_ttl=CHECK_RESULT_TTL_S, failure_ttl=CHECK_FAILURE_TTL_S,
    )
