"""The hand-off saga's journal in Redis (R9): which steps of a hand-off are done.

Before its first step, a hand-off's steps are written down (:func:`begin`); after each step
succeeds the journal moves on (:func:`advance`), with the issues created so far. A worker
killed at any step leaves the journal behind; whoever next holds the competition's lease
resumes it (:func:`pending`) from the first step not done, so no step is repeated beyond the
one in flight when the worker died — and each step is safe to repeat (a label added twice
is one label, a comment and an issue are claimed by their markers). The journal is
forgotten once the saga ends, compensated or not.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import orjson
import redis.asyncio

from reactor.core.actions import (
    Action,
    AddLabel,
    AddSubIssue,
    CloseIssue,
    CloseReason,
    Comment,
    CreateIssue,
    Dispatch,
    Escalate,
    LinkBlockedBy,
    RemoveLabel,
    ReopenIssue,
    Rule,
    Saga,
)
from reactor.core.labels import Status
from reactor.store import keys

JOURNAL_TTL_S = 7 * 24 * 3600
_KINDS: dict[str, type[Any]] = {cls.__name__: cls for cls in (
    AddLabel, RemoveLabel, Comment, CreateIssue, CloseIssue, ReopenIssue, Dispatch, Escalate,
    LinkBlockedBy, AddSubIssue)}


@dataclass(frozen=True, slots=True)
class Journal:
    """A saga in progress: its plan, how many steps are done, the issues it created."""

    scope: str
    saga: Saga
    done: int = 0
    created: tuple[tuple[str, int], ...] = ()


def encode_action(action: Action) -> dict[str, Any]:
    values = {f.name: getattr(action, f.name) for f in fields(action)}
    return {"kind": type(action).__name__, **values}


def decode_action(data: dict[str, Any]) -> Action:
    cls = _KINDS[data["kind"]]
    values = {k: v for k, v in data.items() if k != "kind"}
    values["rule"] = Rule(values["rule"])
    if "labels" in values:
        values["labels"] = tuple(values["labels"])
    if cls is CreateIssue:
        values["status"] = Status(values["status"])
    if cls is CloseIssue:
        values["state_reason"] = CloseReason(values["state_reason"])
    if cls is Dispatch:
        values["client_payload"] = tuple(tuple(pair) for pair in values["client_payload"])
    if cls is Escalate:
        values["mentions"] = tuple(values["mentions"])
    action: Action = cls(**values)
    return action


def _dumps(journal: Journal) -> bytes:
    return orjson.dumps({
        "source": journal.saga.source, "key": journal.saga.key, "done": journal.done,
        "settled": list(journal.saga.settled),
        "steps": [encode_action(step) for step in journal.saga.steps],
        "created": [list(pair) for pair in journal.created],
    })


def loads(scope: str, raw: bytes) -> Journal:
    """A journal as Redis keeps it."""
    data = orjson.loads(raw)
    saga = Saga(data["source"], data["key"], tuple(decode_action(s) for s in data["steps"]),
                tuple(data.get("settled", ())))
    return Journal(scope, saga, data["done"], tuple((k, n) for k, n in data["created"]))


async def begin(client: redis.asyncio.Redis | None, scope: str, saga: Saga) -> Journal:
    """Write the saga down before its first step (or find it, when it was begun before).
    With no client (``UNSAFE_DISABLE=journal``) nothing is written, here and below."""
    journal = Journal(scope, saga)
    if client is None:
        return journal
    field = saga.key
    async with client.pipeline(transaction=True) as pipe:
        pipe.hsetnx(keys.sagas(scope), field, _dumps(journal))
        pipe.hget(keys.sagas(scope), field)
        pipe.expire(keys.sagas(scope), JOURNAL_TTL_S)
        _, raw, _ = await pipe.execute()
    return loads(scope, raw)


async def advance(client: redis.asyncio.Redis | None, journal: Journal, *, done: int,
                  created: dict[str, int]) -> Journal:
    """Record that the first ``done`` steps are done."""
    moved = Journal(journal.scope, journal.saga, done, tuple(sorted(created.items())))
    if client is not None:
        await client.hset(keys.sagas(journal.scope), journal.saga.key, _dumps(moved))
    return moved


async def finish(client: redis.asyncio.Redis | None, journal: Journal) -> None:
    if client is not None:
        await client.hdel(keys.sagas(journal.scope), journal.saga.key)


async def pending(client: redis.asyncio.Redis, scope: str) -> list[Journal]:
    """Sagas of the scope a worker began and did not finish."""
    found = await client.hgetall(keys.sagas(scope))
    return [loads(scope, raw if isinstance(raw, bytes) else raw.encode())
            for raw in found.values()]
