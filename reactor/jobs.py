"""RQ entry points. A job carries a delivery id only; everything else is loaded fresh.

A worker loads the stored delivery, parses it once into a typed event and routes it through
:mod:`handlers`. The echo of a write the reactor recorded as expected is set aside (R10). A
payload that does not parse (before routing or in a handler), or a GitHub answer that
retrying cannot change (a 4xx), is audited as rejected and the job succeeds; anything else (GitHub
unavailable, a bug) fails the job, so RQ retries it and finally keeps it, with its reason,
in the failed registry.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson
from gidgethub import sansio
from gidgethub.routing import Router
from rq import Queue, get_current_job

import handlers
from reactor.context import Context
from reactor.errors import GitHubError, PayloadError, RateLimited, is_transient
from reactor.model import Event, parse_event
from reactor.store import deliveries, memory
from reactor.store.audit import AuditRecord, Outcome, now_iso

log = logging.getLogger(__name__)


def process_delivery(guid: str) -> str:
    """Handle the stored delivery ``guid`` (the RQ job function; returns the outcome)."""
    from reactor.worker import runtime

    current = runtime()
    try:
        return current.run(handle_delivery(current.context, guid)).value
    except RateLimited as exc:
        return _defer(guid, exc)


async def handle_delivery(ctx: Context, guid: str, *, router: Router = handlers.router) -> Outcome:
    """Load, parse, route and audit one delivery; returns what happened to it."""
    delivery = await deliveries.load(ctx.redis, guid)
    try:
        payload = orjson.loads(delivery.body)
        event = parse_event(delivery.event, guid, payload, received_at=delivery.received_at)
    except (orjson.JSONDecodeError, PayloadError) as exc:
        await ctx.audit_log.record(AuditRecord(
            at=now_iso(), delivery=guid, event=delivery.event, outcome=Outcome.REJECTED.value,
            detail=str(exc),
        ))
        return Outcome.REJECTED
    if ctx.is_self(event.sender) and await _consume_echo(ctx, event):
        await ctx.audit(event, Outcome.SKIPPED, rule="R10", detail="the reactor's own write")
        return Outcome.SKIPPED
    raw = sansio.Event(payload, event=delivery.event, delivery_id=guid)
    if not router.fetch(raw):
        await ctx.audit(event, Outcome.IGNORED)
        return Outcome.IGNORED
    try:
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


def evaluate_scope(scope: str) -> str:
    """Evaluate a competition's parked or stranded changes (a scheduled RQ job)."""
    from reactor.shell import coordinate
    from reactor.worker import runtime

    current = runtime()
    current.run(coordinate.run(current.context, coordinate.Scope.loads(scope)))
    return "evaluated"


async def _consume_echo(ctx: Context, event: Event) -> bool:
    """Whether the reactor recorded this change as expected just before making it (R10).

    Only such echoes are set aside: an agent acting with the App's own token (common with
    ``actions/create-github-app-token``) is judged like any actor. The echoes of an issue the
    reactor creates are expected by its creation key, as its number is not known before."""
    if event.repo is None or event.issue is None or event.action is None:
        return False
    echo = f"{event.action}:{event.label.casefold()}" if event.label else event.action
    targets: list[int | str] = [event.issue]
    if event.issue_creation_key is not None:
        targets.append(f"create:{event.issue_creation_key}")
    for target in targets:
        if await memory.consume_expectation(ctx.redis, event.repo.id, target, echo,
                                            delivery=event.delivery_id):
            return True
    return False


def _defer(guid: str, exc: RateLimited) -> str:
    """Re-enqueue the delivery for when the installation's rate limit resets."""
    job = get_current_job()
    if job is None:
        raise exc
    queue = Queue(job.origin, connection=job.connection)
    stamp = int(exc.retry_at.timestamp())
    queue.enqueue_at(
        exc.retry_at, process_delivery, guid, job_id=f"{guid}-after-{stamp}",
        result_ttl=job.result_ttl, failure_ttl=job.failure_ttl,
    )
    wait = (exc.retry_at - datetime.now(UTC)).total_seconds()
    log.info("rate limited: deferred %.0fs", wait, extra={"delivery": guid})
    return f"deferred until {exc.retry_at.isoformat()}"
