"""RQ entry points: the only functions RQ names (its queue, scheduler and failed registry).

- :func:`take_turn` runs a competition's turn (:mod:`reactor.shell.turn`): the web process
  queues one when a delivery arrives for a competition with no turn queued or running.
- :func:`offer` leaves an item for a competition's turn at a scheduled moment — a settle
  re-check, a timeout check, a rate limit's end — and runs the turn when it then owns it.
- :func:`process_delivery` handles a delivery that joins no turn (``installation``,
  ``label``, ``push``, …) in a job of its own: it loads the stored delivery, parses it once
  into a typed event and routes it through :mod:`handlers`. A payload that does not parse, or
  a GitHub answer that retrying cannot change (a 4xx), is audited as rejected and the job
  succeeds; anything else (GitHub unavailable, a bug) fails the job, so RQ retries it and
  finally keeps it, with its reason, in the failed registry.

A rate limit (GitHub's, or the reactor's own budget of content writes) defers the work to the
limit's end with RQ's scheduler; a deferred turn keeps its marker meanwhile, so deliveries
arriving during the limit wait for it and cost no job.

Fairness (SPEC §6): jobs arrive on one queue, in arrival order, and only the worker learns
their installation. Each installation has a limiter (RQ's ``rate_limit``) of
:data:`INSTALLATION_SLOTS`. A job runs at once unless the queue is backed up (it waited
:data:`BACKLOG_S` or more): then only an otherwise idle installation's job runs, and the
others take their installation's slots in turn, at the back of the queue. A flood of one
installation thus costs the jobs behind it a glance at each of its jobs, not the work;
without a backlog nothing changes and the limiter costs nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import orjson
from redis import Redis as SyncRedis
from rq import Queue, Retry, get_current_job
from rq.job import Job, JobStatus
from rq.rate_limit import RateLimit, RateLimitRegistry

import handlers
from reactor.core.errors import RateLimited
from reactor.core.routing import Scope
from reactor.process.settings import Settings
from reactor.shell import catchup, schedule, turn
from reactor.shell.alone import handle_delivery
from reactor.shell.runtime import Runtime
from reactor.store import audit, deliveries, keys, tenants, turns
from reactor.store.counters import observe_latency

log = logging.getLogger(__name__)

# Deliveries of one installation its limiter lets be queued or running at once.
INSTALLATION_SLOTS = 8
# A delivery that waited this long in the queue shows a backlog (the web process's clock
# against the worker's: keep it well above their skew).
BACKLOG_S = 1.0
# How long a turn taken the moment it was queued waits for the rest of its request's
# webhooks (GitHub sends a PUT's labeled and unlabeled together, a few ms apart).
LINGER_S = 0.004

# Take a slot of the installation's limiter for the job running now while fewer than
# ARGV[2] are taken and no job waits for one (or the job holds one already: a retried job).
# KEYS: the limiter's allowed set, waiting set, config hash, and RQ's set of limiters;
# ARGV: slots, the limit now (1: only an otherwise idle installation), timestamp, job id,
# limiter name.
_CLAIM_LUA = """
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then return 1 end
if redis.call('ZCARD', KEYS[2]) > 0 then return 0 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('HSET', KEYS[3], 'concurrency', ARGV[1])
redis.call('SADD', KEYS[4], ARGV[5])
return 1
"""


_runtime: Runtime | None = None


def open_runtime(settings: Settings) -> Runtime:
    """Open this process's runtime (a worker does at start-up), with :mod:`handlers`'
    routers."""
    global _runtime
    _runtime = Runtime(settings, router=handlers.router, turn_router=handlers.turn_router)
    return _runtime


def runtime() -> Runtime:
    """This process's runtime, opened on first use (so a plain ``rq worker`` works too)."""
    return _runtime or open_runtime(Settings.from_env())


def close_runtime() -> None:
    global _runtime
    if _runtime is not None:
        _runtime.close()
        _runtime = None


def process_delivery(guid: str) -> str:
    """Handle the stored delivery ``guid`` alone (returns the outcome), or leave it to its
    installation's limiter in a backlog (see the module docstring)."""
    job = get_current_job()
    if job is None or _waited_s(job) < BACKLOG_S:
        return _handle(guid)
    installation = _installation_of(job.connection, guid)
    if installation is None:
        return _handle(guid)
    return _in_slot(job, installation, partial(_handle, guid), process_in_slot, (guid,))


def process_in_slot(guid: str) -> str:
    """Handle a delivery whose slot came: RQ queued it when a slot of its installation
    freed, and frees that slot when the job ends."""
    return _handle(guid)


def take_turn(scope: str) -> str:
    """Run the competition's turn, as the job the web process (or a turn handing over)
    queued, which owns its marker. A job taken the moment it was queued first lingers a
    few milliseconds (:data:`LINGER_S`): GitHub sends a request's webhooks together, and the
    turn then takes them in one round."""
    job = get_current_job()
    parsed = Scope.loads(scope)
    owner = job.id if job is not None else turns.owner_id(parsed.digest, "direct")
    waited = _waited_s(job) if job is not None else LINGER_S
    if job is None or waited < BACKLOG_S:
        return _turn(parsed, owner, None, linger=max(0.0, LINGER_S - waited))
    run = partial(_turn, parsed, owner, None)
    return _in_slot(job, parsed.installation_id, run, take_turn_in_slot, (scope, owner))


def take_turn_in_slot(scope: str, owner: str) -> str:
    """Run a turn whose slot came (see :func:`process_in_slot`)."""
    return _turn(Scope.loads(scope), owner, None)


def offer(scope: str, item: str, owner: str) -> str:
    """Leave ``item`` for the competition's turn (a scheduled job: a settle re-check, a
    timeout check, a rate limit's end), and run the turn when it then owns it."""
    return _turn(Scope.loads(scope), owner, item)


def _turn(scope: Scope, owner: str, item: str | None, *, linger: float = 0.0) -> str:
    current = runtime()
    ctx = current.context
    # The installation's index of its repositories, for an uninstall that lists none (once a
    # day per process and repository: most turns cost no command for it).
    current.run(tenants.note(ctx.redis, scope.installation_id, scope.repo))
    try:
        if item is None:
            report = current.run(turn.take(ctx, scope, owner=owner, linger=linger))
        else:
            found = current.run(turn.submit(ctx, scope, item, owner=owner))
            if found is None:
                return "left for the turn in progress"
            report = found
    except RateLimited as exc:
        return _defer_turn(scope, exc)
    if report.busy:
        return "the competition's lease is held; checked again when it ends"
    return f"{report.rounds} round(s)"


def _defer_turn(scope: Scope, exc: RateLimited) -> str:
    """Come back to the turn at the limit's end; its marker is kept for that job meanwhile,
    so what arrives during the limit waits for it and costs no job."""
    ctx = runtime().context
    owner = schedule.wake(ctx.sync_redis, scope, at=exc.retry_at, why="ratelimit")
    ctx.sync_redis.set(keys.turn(scope.key), owner,
                       ex=max(1, int((exc.retry_at - datetime.now(UTC)).total_seconds()))
                       + turns.QUEUED_TTL_S)
    log.info("rate limited: turn deferred until %s", exc.retry_at.isoformat(),
             extra={"scope": scope.key})
    return f"deferred until {exc.retry_at.isoformat()}"


def _in_slot(job: Job, installation: int, run: Callable[[], str],
             later: Callable[..., str], args: tuple[str, ...]) -> str:
    """Run ``run`` in a slot of the installation's limiter when an otherwise idle
    installation gives one, else leave ``later(*args)`` to the limiter: RQ queues it (at
    the back) once one of the installation's slots is free."""
    slots = RateLimitRegistry(keys.installation_turns(installation), job.connection)
    if not _claim(slots, job.id):
        return _wait_slot(job, slots.key, later, args)
    try:
        return run()
    finally:
        slots.release_and_enqueue(job.id)  # and queue the job waiting longest, if any


def _handle(guid: str) -> str:
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


def _claim(slots: RateLimitRegistry, job_id: str) -> bool:
    """Whether the running job ``job_id`` took (or holds) a slot of its installation: in a
    backlog, only an otherwise idle installation gives one."""
    claimed = slots.connection.eval(
        _CLAIM_LUA, 4, slots.allowed_key, slots.rate_limited_key, slots.config_key,
        slots.rl_keys_key, INSTALLATION_SLOTS, 1, time.time(), job_id, slots.key,
    )
    return bool(claimed)


def _wait_slot(job: Job, name: str, later: Callable[..., str], args: tuple[str, ...]) -> str:
    """Leave ``later(*args)`` to the installation's limiter ``name``, as a job RQ queues (at
    the back) once one of the installation's slots is free: at once, when one is."""
    waiting_since = time.time()
    waiting = Queue(job.origin, connection=job.connection).enqueue(
        later, *args, job_id=f"{job.id}-slot", rate_limit=RateLimit(name, INSTALLATION_SLOTS),
        retry=_retry_of(job), job_timeout=job.timeout, result_ttl=job.result_ttl,
        failure_ttl=job.failure_ttl,
    )
    if waiting.get_status(refresh=False) == JobStatus.RATE_LIMITED:
        # RQ orders its waiting set by whole seconds; keep the installation's arrival order.
        limiter = RateLimitRegistry(name, job.connection)
        job.connection.zadd(limiter.rate_limited_key, {waiting.id: waiting_since}, xx=True)
    log.info("installation busy: waiting for a slot as %s", waiting.id, extra={"job": job.id})
    return f"waiting for a slot as {waiting.id}"


def _retry_of(job: Job) -> Retry | None:
    """The retries ``job`` has left, for the job that carries its work on."""
    if not job.retries_left:
        return None
    return Retry(max=job.retries_left, interval=job.retry_intervals or 0)


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


def sweep() -> str:
    """The periodic sweep: one :func:`sweep_installation` job per installation."""
    from reactor.shell import sweep as sweeping
    current = runtime()
    return current.run(sweeping.fan_out(current.context))


def sweep_installation(installation_id: int, budget: int | None = None) -> str:
    """One installation's sweep: at most ``budget`` GitHub calls (default
    :data:`reactor.shell.sweep.CALLS_PER_RUN`), from where the last run stopped. Returns its
    summary line."""
    from reactor.shell import sweep as sweeping
    current = runtime()
    return current.run(sweeping.sweep(current.context, installation_id, budget=budget))


def trim_audit() -> str:
    """The hourly trim of the audit log (:func:`reactor.store.audit.trim`)."""
    current = runtime()
    gone = current.run(audit.trim(current.context.redis, now=datetime.now(UTC)))
    return f"{gone} audit record(s) older than {audit.MAX_AGE.days} days dropped"


def catch_up() -> str:
    """The periodic catch-up (:mod:`reactor.shell.catchup`): one run in this worker."""
    current = runtime()
    ctx = current.context
    return current.run(catchup.run_once(ctx.github.app, ctx.redis, now=datetime.now(UTC)))
