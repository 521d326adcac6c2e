"""What a turn's items come to: the changes to judge, and a record for every other delivery.

A round takes its deliveries' stored records in one ``MGET``, parses each once into a typed event
and routes it through the turn's router (``ctx.turn_router``: :mod:`handlers`) with an
:class:`Intake` that collects what the handlers find: a change for the rules (``judge``) or a
delivery that needs nothing (``observe``). A payload that does not parse is recorded as rejected;
the echo of a write the reactor recorded as expected just before making it is set aside (R10).
Changes handed on from another scope arrive whole (``m:`` items).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import orjson
from gidgethub import sansio

from reactor.core.errors import PayloadError
from reactor.core.events import Event, parse_event
from reactor.core.routing import Scope
from reactor.core.view import Actor, Change
from reactor.shell import schedule
from reactor.shell.context import Context
from reactor.shell.records import change_record
from reactor.store import deliveries, keys, memory
from reactor.store.audit import AuditRecord, Outcome, for_event, rejected_payload


class Intake(Protocol):
    """Where a handler leaves what it found in a delivery."""

    async def observe(self, event: Event, *, detail: str) -> None:
        """The delivery needs nothing from the rules: audit it."""

    async def judge(self, event: Event, change: Change) -> None:
        """The delivery's change is for the rules of its competition."""

    async def comment(self, event: Event) -> None:
        """A comment on an agent issue: audited, and counted against its author's budget."""


@dataclass(frozen=True, slots=True)
class Commented:
    """A comment a round took in (R11 counts it): who wrote it, on which issue, in which
    delivery."""

    actor: Actor
    issue: int
    delivery: str


@dataclass
class Taken:
    """A round's deliveries, as the handlers left them: the changes to judge, a record of
    every other delivery, the events of the deliveries that came in this round, and the
    comments among them."""

    changes: list[Change] = field(default_factory=list)
    events: dict[str, Event] = field(default_factory=dict)
    records: list[AuditRecord] = field(default_factory=list)
    comments: list[Commented] = field(default_factory=list)

    async def observe(self, event: Event, *, detail: str) -> None:
        self.records.append(for_event(event, Outcome.OBSERVED, detail=detail))
        self.events[event.delivery_id] = event

    async def judge(self, event: Event, change: Change) -> None:
        self.changes.append(change)
        self.events[change.delivery_id] = event

    async def comment(self, event: Event) -> None:
        await self.observe(event, detail="a comment on an agent issue")
        if event.sender is not None and event.issue is not None:
            self.comments.append(Commented(event.sender, event.issue, event.delivery_id))


async def take_in(ctx: Context, items: Iterable[str]) -> Taken:
    """The changes and records of a round's ``d:`` and ``m:`` items."""
    taken = Taken()
    guids = []
    for item in items:
        if item.startswith("d:"):
            guids.append(item[2:])
        elif item.startswith("m:"):
            taken.changes.append(schedule.decode(item.split(":", 2)[2].encode()))
    found = await _stored(ctx, guids, taken)
    echoes = await _echoes(ctx, [event for event, _ in found if ctx.is_self(event.sender)])
    for event, raw in found:
        if event.delivery_id in echoes:
            taken.records.append(for_event(event, Outcome.SKIPPED, rule="R10",
                                           detail="the reactor's own write"))
        else:
            await _route(ctx, event, raw, taken)
    return taken


SETTLED = ("settled by the hand-off its completion started; the round that carried it out "
           "ended before recording this delivery")


async def settled(ctx: Context, scope: Scope, items: Iterable[str]) -> list[AuditRecord]:
    """Records for the deliveries of ``items`` that a hand-off settled in a round that ended
    (its worker killed, an error) before its closing transaction recorded them: they are
    judged, so no round takes them in again, and this is the only record they get."""
    records: list[AuditRecord] = []
    guids = []
    for item in items:
        if item.startswith("d:"):
            guids.append(item[2:])
        elif item.startswith("m:"):
            change = schedule.decode(item.split(":", 2)[2].encode())
            records.append(change_record(scope, [change], outcome=Outcome.APPLIED, rule="R9",
                                         issue=change.issue, detail=SETTLED))
    unread = Taken()
    records += [for_event(event, Outcome.APPLIED, rule="R9", detail=SETTLED)
                for event, _ in await _stored(ctx, guids, unread)]
    return records + unread.records  # those that could not be read, as rejected


async def _stored(ctx: Context, guids: list[str], taken: Taken
                  ) -> list[tuple[Event, sansio.Event]]:
    """The stored deliveries ``guids``, read in one ``MGET`` and parsed; a rejection is
    recorded in ``taken`` for each that cannot be read."""
    if not guids:
        return []
    stored: list[bytes | None] = await ctx.redis.mget(  # type: ignore[assignment]
        [keys.delivery(guid) for guid in guids])
    parsed = [_parsed(guid, record, taken) for guid, record in zip(guids, stored, strict=True)]
    return [pair for pair in parsed if pair is not None]


def _parsed(guid: str, record: bytes | None, taken: Taken) -> tuple[Event, sansio.Event] | None:
    """The delivery's event, typed and as the router sees it; None, with a rejection
    recorded, when it cannot be read."""
    if record is None:
        taken.records.append(rejected_payload(guid, "issues", None,
                                              "the stored delivery is gone (expired)"))
        return None
    name, payload = "issues", None
    try:
        delivery = deliveries.decode(guid, record)
        name = delivery.event
        payload = orjson.loads(delivery.body)
        event = parse_event(name, guid, payload, received_at=delivery.received_at)
    except (ValueError, PayloadError) as exc:  # orjson.JSONDecodeError is a ValueError
        taken.records.append(rejected_payload(guid, name, payload, str(exc)))
        return None
    return event, sansio.Event(payload, event=name, delivery_id=guid)


async def _route(ctx: Context, event: Event, raw: sansio.Event, taken: Taken) -> None:
    router = ctx.turn_router
    if not router.fetch(raw):
        taken.records.append(for_event(event, Outcome.IGNORED))
        return
    try:
        await router.dispatch(raw, event, ctx, taken)
    except PayloadError as exc:  # a field only the handler reads is malformed
        taken.records.append(for_event(event, Outcome.REJECTED, detail=str(exc)))


async def _echoes(ctx: Context, events: list[Event]) -> set[str]:
    """The deliveries among ``events`` that echo a write the reactor recorded as expected
    just before making it (R10). Only those are set aside: an agent acting with the App's
    own token (common with ``actions/create-github-app-token``) is judged like any actor.
    The echoes of an issue the reactor creates are expected by its creation key, as its
    number is not known before."""
    found = set()
    for event in events:
        if event.repo is None or event.issue is None or event.action is None:
            continue
        echo = f"{event.action}:{event.label.casefold()}" if event.label else event.action
        targets: list[int | str] = [event.issue]
        if event.issue_creation_key is not None:
            targets.append(f"create:{event.issue_creation_key}")
        for target in targets:
            if await memory.consume_expectation(ctx.redis, event.repo.id, target, echo,
                                                delivery=event.delivery_id):
                found.add(event.delivery_id)
                break
    return found
