"""A delivery handled in a job of its own: one whose payload names no competition's turn.

Such a delivery (``installation``, ``label``, ``push``, …) is loaded, parsed once into a typed
event and routed through ``ctx.router`` (:mod:`handlers`). A payload that does not parse, or a
GitHub answer that retrying cannot change (a 4xx), is audited as rejected; anything else
(GitHub unavailable, a bug) raises, so RQ retries the job. A change found on the way goes to
its competition's turn (:class:`Alone`).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from gidgethub import sansio

from reactor.core.errors import GitHubError, PayloadError, is_transient
from reactor.core.events import Event, parse_event
from reactor.core.routing import TURN_EVENTS, route
from reactor.core.view import Change
from reactor.shell import schedule, turn
from reactor.shell.context import Context
from reactor.store import deliveries, turns
from reactor.store.audit import Outcome, rejected_payload


@dataclass
class Alone:
    """The intake of a delivery handled in a job of its own (one whose payload names no
    scope): what needs nothing is audited at once; a change goes to its competition's turn."""

    ctx: Context

    async def observe(self, event: Event, *, detail: str) -> None:
        await self.ctx.audit(event, Outcome.OBSERVED, detail=detail)

    async def judge(self, event: Event, change: Change) -> None:
        scope = await turn.scope_of(self.ctx, event)
        if scope is None:
            await self.observe(event, detail="no repository or installation to act on")
            return
        item = turns.moved_item(change.delivery_id, schedule.encode(change))
        await turn.submit(self.ctx, scope, item,
                          owner=turns.owner_id(scope.digest, change.delivery_id))


async def handle_delivery(ctx: Context, guid: str) -> Outcome:
    """Load, parse, route and audit one delivery handled alone; returns what happened to it.
    A delivery of an event that joins a turn (queued before routing existed, or replayed) is
    handed to its competition's turn instead."""
    delivery = await deliveries.load(ctx.redis, guid)
    payload: object = None
    try:
        payload = orjson.loads(delivery.body)
        event = parse_event(delivery.event, guid, payload, received_at=delivery.received_at)
    except (orjson.JSONDecodeError, PayloadError) as exc:
        await ctx.audit_log.record(rejected_payload(guid, delivery.event, payload, str(exc)))
        return Outcome.REJECTED
    scope = route(delivery.event, payload)
    if scope is not None:  # queued before routing existed, or replayed: its turn judges it
        await turn.submit(ctx, scope, turns.delivery_item(guid),
                          owner=turns.owner_id(scope.digest, guid))
        return Outcome.OBSERVED
    raw = sansio.Event(payload, event=delivery.event, delivery_id=guid)
    joins_a_turn = delivery.event in TURN_EVENTS
    router = ctx.turn_router if joins_a_turn else ctx.router
    if not router.fetch(raw):
        await ctx.audit(event, Outcome.IGNORED)
        return Outcome.IGNORED
    try:
        if joins_a_turn:
            await router.dispatch(raw, event, ctx, Alone(ctx))
        else:
            await router.dispatch(raw, event, ctx)
    except PayloadError as exc:
        # A field only the handler reads is malformed: retrying cannot change the payload.
        await ctx.audit(event, Outcome.REJECTED, detail=str(exc))
        return Outcome.REJECTED
    except GitHubError as exc:
        if is_transient(exc):
            raise  # RQ retries the job; a rate limit defers it
        await ctx.audit(event, Outcome.REJECTED, detail=f"GitHub refused: {exc}")
        return Outcome.REJECTED
    return Outcome.OBSERVED
