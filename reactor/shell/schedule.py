"""Work a turn leaves for later, and the encoding of a change handed on between scopes.

A turn asks RQ's scheduler to come back to its scope — when a settle window ends (a
*wake*), when a stage's time is up (a timeout check, :mod:`reactor.shell.timers`), when a
rate limit ends, or at once in a job of its own (a turn that has run long hands over) — and
the scheduler wakes a scope whose round outlived its lease (its worker died). Each
scheduled job offers its item to the scope's turn (:func:`reactor.store.turns.offer`) and
runs the turn if it then owns it. Job ids derive from a hash of the scope (any competition
name is schedulable, and two scopes never share a job id) and the second the job is due, so
asking twice for the same moment schedules one job.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from redis import Redis as SyncRedis
from rq import Queue

from reactor.core.routing import Scope
from reactor.core.view import Actor, Change, ChangeKind
from reactor.store import keys, turns
from reactor.store.accept import JOB_RETRY, JOB_TIMEOUT_S

OFFER = "reactor.entrypoints.jobs.offer"  # the RQ job that leaves an item for a turn
CHECK_RESULT_TTL_S = 600
CHECK_FAILURE_TTL_S = 7 * 24 * 3600


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


def wake(connection: SyncRedis, scope: Scope, *, at: datetime, why: str) -> str:
    """Come back to the scope at ``at`` (a settle window's end, a lease that may have been
    left by a dead worker, a rate limit's end; at once when ``at`` has come): one job per
    scope and second. Returns the owner id the job takes the turn as."""
    owner = turns.owner_id(scope.digest, f"{why}-{int(at.timestamp())}")
    queue = Queue(keys.QUEUE_EVENTS, connection=connection)
    options = {"job_id": owner, "retry": JOB_RETRY, "job_timeout": JOB_TIMEOUT_S,
               "result_ttl": CHECK_RESULT_TTL_S, "failure_ttl": CHECK_FAILURE_TTL_S}
    if at <= datetime.now(UTC):
        queue.enqueue(OFFER, scope.dumps(), turns.WAKE, owner, **options)
    else:
        queue.enqueue_at(at, OFFER, scope.dumps(), turns.WAKE, owner, **options)
    return owner


def wake_overdue(connection: SyncRedis) -> int:
    """Wake every scope whose round outlived its lease (its worker died mid-round): its items
    wait in flight, and no delivery may come to take them. The scheduler does this every
    tick; returns how many it woke."""
    found = turns.overdue(connection)
    for dumped in found:
        wake(connection, Scope.loads(dumped), at=datetime.now(UTC), why="watchdog")
    return len(found)


def resume_paused(connection: SyncRedis) -> int:
    """Queue the job of every paused turn whose pause is over (the scheduler does this every
    tick); returns how many."""
    found = turns.paused_due(connection)
    for owner, dumped in found:
        hand_over(connection, Scope.loads(dumped), owner)
        turns.resumed(connection, owner, dumped)
    return len(found)


def hand_over(connection: SyncRedis, scope: Scope, owner: str) -> None:
    """Queue the job that carries the scope's turn on as ``owner`` (who holds its marker)."""
    Queue(keys.QUEUE_EVENTS, connection=connection).enqueue(
        "reactor.entrypoints.jobs.take_turn", scope.dumps(), job_id=owner, retry=JOB_RETRY,
        job_timeout=JOB_TIMEOUT_S, result_ttl=0, failure_ttl=CHECK_FAILURE_TTL_S,
    )
