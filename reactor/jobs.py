"""RQ entry points. A job carries a delivery id only; everything else is loaded fresh.

A worker loads the stored delivery, parses it once into a typed event and routes it through
:mod:`handlers`. The echo of a write the reactor recorded as expected is set aside (R10). A
payload that does not parse (before routing or in a handler), or a GitHub answer that
retrying cannot change (a 4xx), is audited as rejected and the job succeeds; anything else (GitHub
unavailable, a bug) fails the job, so RQ retries it and finally keeps it, with its reason,
in the failed registry. A rate limit (GitHub's, or the reactor's own budget of content
writes) defers the job to the limit's end with RQ's scheduler.

Fairness (SPEC §6): every delivery arrives on one queue, in arrival order, and only the
worker learns its installation. Each installation has a limiter (RQ's ``rate_limit``) that
lets at most :data:`INSTALLATION_SLOTS` of its deliveries be queued or running and queues each
of the others, at the back, when a slot frees. A delivery is handled at once while its
installation has a free slot and none waiting, except when the queue is backed up (the
delivery waited :data:`BACKLOG_S` or more): then only an otherwise idle installation's is,
and the others go through their limiter. A flood of one installation thus costs the
deliveries behind it a glance at each of its deliveries, not the handling; without a backlog
nothing changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from gidgethub import sansio
from gidgethub.routing import Router
from redis import Redis as SyncRedis
from rq import Queue, Retry, get_current_job
from rq.job import Job, JobStatus
from rq.rate_limit import RateLimit, RateLimitRegistry

import handlers
from reactor.context import Context
from reactor.errors import GitHubError, PayloadError, RateLimited, is_transient
from reactor.metrics import observe_latency
from reactor.model import Event, parse_event
from reactor.store import deliveries, keys, memory
from reactor.store.audit import AuditRecord, Outcome, now_iso

log = logging.getLogger(__name__)

# Deliveries of one installation its limiter lets be queued or running at once.
INSTALLATION_SLOTS = 8
# A delivery that waited this long in the queue shows a backlog (the web process's clock
# against the worker's: keep it well above their skew).
BACKLOG_S = 1.0

# Take a slot of the installation's limiter for the job running now while fewer than
# ARGV[2] are taken and no delivery waits for one (or the job holds one already: a retried
# job). KEYS: the limiter's allowed set, waiting set, config hash, and RQ's set of limiters;
# ARGV: slots, the limit now (slots, or 1 in a backlog), timestamp, job id, limiter name.
_CLAIM_LUA = """
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then return 1 end
if redis.call('ZCARD', KEYS[2]) > 0 then return 0 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('HSET', KEYS[3], 'concurrency', ARGV[1])
redis.call('SADD', KEYS[4], ARGV[5])
return 1
"""


def process_delivery(guid: str) -> str:
    """Handle the stored delivery ``guid`` (the RQ job function; returns the outcome).

    The job handles it in a slot of its installation, or leaves it to the installation's
    limiter, to be handled in its turn (:func:`process_turn`): see the module docstring."""
    job = get_current_job()
    installation = None if job is None else _installation_of(job.connection, guid)
    if job is None or installation is None:
        return _handle(guid)
    turns = RateLimitRegistry(keys.installation_turns(installation), job.connection)
    if not _claim(turns, job.id, backlog=_waited_s(job) >= BACKLOG_S):
        return _wait_turn(job, guid, turns.key)
    try:
        return _handle(guid)
    finally:
        turns.release_and_enqueue(job.id)  # and queue the delivery waiting longest, if any


def process_turn(guid: str) -> str:
    """Handle a delivery whose turn came: RQ queued it when a slot of its installation freed,
    and frees that slot when the job ends."""
    return _handle(guid)


def _handle(guid: str) -> str:
    from reactor.worker import runtime

    current = runtime()
    try:
        outcome = current.run(handle_delivery(current.context, guid)).value
    except RateLimited as exc:
        return _defer(guid, exc)
    # Handled (a deferred delivery is observed when its later job handles it): GET /metrics.
    observe_latency(current.context.sync_redis, guid, now=time.time())
    return outcome


def _installation_of(connection: SyncRedis, guid: str) -> int | None:
    """The installation of a stored delivery; None when it has none or cannot be read (the
    handler then says why, in the audit log)."""
    record = connection.get(keys.delivery(guid))
    if not isinstance(record, bytes):
        return None
    try:
        payload = orjson.loads(deliveries.decode(guid, record).body)
    except ValueError:  # orjson.JSONDecodeError is one
        return None
    installation = payload.get("installation") if isinstance(payload, dict) else None
    found = installation.get("id") if isinstance(installation, dict) else None
    return found if type(found) is int else None


def _waited_s(job: Job) -> float:
    """How long the job waited in the queue before a worker took it."""
    if job.enqueued_at is None:
        return 0.0
    return (datetime.now(UTC) - job.enqueued_at).total_seconds()


def _claim(turns: RateLimitRegistry, job_id: str, *, backlog: bool) -> bool:
    """Whether the running job ``job_id`` took (or holds) a slot of its installation; in a
    backlog, only an otherwise idle installation gives one."""
    claimed = turns.connection.eval(
        _CLAIM_LUA, 4, turns.allowed_key, turns.rate_limited_key, turns.config_key,
        turns.rl_keys_key, INSTALLATION_SLOTS, 1 if backlog else INSTALLATION_SLOTS,
        time.time(), job_id, turns.key,
    )
    return bool(claimed)


def _wait_turn(job: Job, guid: str, name: str) -> str:
    """Leave the delivery to the installation's limiter ``name``, as a job RQ queues (at the
    back) once one of the installation's slots is free: at once, when one is."""
    waiting_since = time.time()
    turn = Queue(job.origin, connection=job.connection).enqueue(
        process_turn, guid, job_id=f"{job.id}-turn", rate_limit=RateLimit(name, INSTALLATION_SLOTS),
        retry=_retry_of(job), job_timeout=job.timeout, result_ttl=job.result_ttl,
        failure_ttl=job.failure_ttl,
    )
    if turn.get_status(refresh=False) == JobStatus.RATE_LIMITED:
        # RQ orders its waiting set by whole seconds; keep the installation's arrival order.
        limiter = RateLimitRegistry(name, job.connection)
        job.connection.zadd(limiter.rate_limited_key, {turn.id: waiting_since}, xx=True)
    log.info("installation busy: waiting for a turn as %s", turn.id, extra={"delivery": guid})
    return f"waiting for a turn as {turn.id}"


def _retry_of(job: Job) -> Retry | None:
    """The retries ``job`` has left, for the job that carries its work on."""
    if not job.retries_left:
        return None
    return Retry(max=job.retries_left, interval=job.retry_intervals or 0)


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
    try:
        current.run(coordinate.run(current.context, coordinate.Scope.loads(scope)))
    except RateLimited as exc:
        job = get_current_job()
        if job is None:
            raise
        name = job.id.partition("-after-")[0]
        return _schedule_again(exc, evaluate_scope, scope, name=name, job=job)
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
    """Re-enqueue the delivery for when the installation's rate limit resets (it then takes
    a slot of its installation, or waits its turn, like a new delivery)."""
    job = get_current_job()
    if job is None:
        raise exc
    return _schedule_again(exc, process_delivery, guid, name=guid, job=job)


def _schedule_again(
    exc: RateLimited, func: Callable[[str], str], argument: str, *, name: str, job: Job
) -> str:
    """Run ``func(argument)`` again at ``exc.retry_at`` (RQ's scheduler), as job
    ``<name>-after-<epoch>``: deferring twice to one moment schedules one job."""
    stamp = int(exc.retry_at.timestamp())
    Queue(job.origin, connection=job.connection).enqueue_at(
        exc.retry_at, func, argument, job_id=f"{name}-after-{stamp}", retry=_retry_of(job),
        job_timeout=job.timeout, result_ttl=job.result_ttl, failure_ttl=job.failure_ttl,
    )
    wait = (exc.retry_at - datetime.now(UTC)).total_seconds()
    log.info("rate limited: deferred %.0fs", wait, extra={"delivery": name})
    return f"deferred until {exc.retry_at.isoformat()}"
