"""R8 timeouts in the shell: a check scheduled when an issue enters ``starting`` or
``running``, run when the stage's time is up.

Entering a timed status schedules one RQ job at the deadline (:func:`schedule`), named after
the issue, the status, the moment it was entered and the time it is due, so it is scheduled
once however often the entry is remembered. RQ keeps scheduled jobs in Redis, so they
survive worker restarts and, with Redis's append-only file, Redis restarts; nothing polls.
When the job runs (:func:`check_timeout`), it takes the competition's lease, reads the issue
afresh, and :func:`reactor.rules.timeouts.check` decides: a later move (the reactor
remembers another entry time, or the issue shows another status) makes it do nothing.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta

from redis import Redis as SyncRedis
from rq import Queue

from reactor.actions import Decision
from reactor.context import Context
from reactor.labels import Status
from reactor.rules import timeouts
from reactor.shell import repoconfig
from reactor.shell.apply import Applier
from reactor.shell.audit import record_unprompted
from reactor.shell.burst import Scope
from reactor.shell.reads import one_issue
from reactor.store import keys, locks, memory
from reactor.store.ingest import JOB_RETRY, JOB_TIMEOUT_S
from reactor.view import CompetitionView

log = logging.getLogger(__name__)

RETRY_BUSY = timedelta(seconds=2)
EARLY_BY = timedelta(seconds=1)  # how early RQ's scheduler may run a job
RESULT_TTL_S = 600
FAILURE_TTL_S = 7 * 24 * 3600


def schedule(connection: SyncRedis, scope: Scope, issue: int, status: Status, *,
             entered: datetime, at: datetime) -> None:
    """Check ``issue`` at ``at`` (its deadline in ``status``, entered at ``entered``). RQ's
    scheduler keeps whole seconds and may run a job up to a second early: the check runs a
    second late instead, and reschedules itself if it still comes early."""
    name = f"{scope.key}:{issue}:{status.value}:{entered.isoformat()}:{at.isoformat()}"
    Queue(keys.QUEUE_EVENTS, connection=connection).enqueue_at(
        at + EARLY_BY, "reactor.shell.timers.check_timeout", scope.dumps(), issue, status.value,
        entered.isoformat(),
        job_id=f"timeout-{hashlib.sha256(name.encode()).hexdigest()[:24]}", retry=JOB_RETRY,
        job_timeout=JOB_TIMEOUT_S, result_ttl=RESULT_TTL_S, failure_ttl=FAILURE_TTL_S,
    )


def check_timeout(scope: str, issue: int, status: str, entered: str) -> str:
    """The RQ job: run :func:`check` on this worker's event loop."""
    from reactor.worker import runtime

    current = runtime()
    return current.run(check(current.context, Scope.loads(scope), issue, Status(status),
                             datetime.fromisoformat(entered)))


async def check(ctx: Context, scope: Scope, number: int, status: Status,
                entered: datetime) -> str:
    """Move the issue to ``status:timeout`` if it is still in that entry and its time is
    up; returns what happened (the job's result)."""
    lease = await locks.acquire(ctx.redis, scope.key, guarded=ctx.settings.guards("lease"))
    if lease is None:  # the competition is busy: look again shortly
        schedule(ctx.sync_redis, scope, number, status, entered=entered,
                 at=datetime.now(UTC) + RETRY_BUSY)
        return "busy; checked again shortly"
    try:
        return await _check(ctx, scope, lease, number, status, entered)
    finally:
        await lease.release()


async def _check(ctx: Context, scope: Scope, lease: locks.Lease, number: int, status: Status,
                 entered: datetime) -> str:
    gh = ctx.github.for_installation(scope.installation_id)
    issue = await one_issue(gh, scope.repo, number)
    recalled = (await memory.recall(ctx.redis, scope.repo.id, [number])).get(number)
    if issue is None or recalled is None or recalled.stage is None:
        return "the issue is gone or no longer an agent issue"
    config, _ = await repoconfig.load(ctx.redis, gh, scope.repo)
    remembered = datetime.fromisoformat(recalled.since) if recalled.since else None
    now = datetime.now(UTC)
    due = timeouts.deadline(status, stage=recalled.stage, entered=entered, config=config)
    if due is not None and now < due:  # early (or the limit grew): look again then
        schedule(ctx.sync_redis, scope, number, status, entered=entered, at=due)
        return "not due yet; checked again at the deadline"
    actions = timeouts.check(issue, stage=recalled.stage, status=status, entered=entered,
                             now=now, config=config, remembered=remembered)
    if not actions:
        return "left in time"
    view = CompetitionView(repo=scope.repo.full_name, comp=scope.comp, issues=(issue,),
                           app_login=ctx.app_login)
    decision = Decision(actions=actions, accepted={number: Status.TIMEOUT})
    await Applier(gh, ctx.redis, scope.repo, lease, view, config.maintainers,
                unsafe=ctx.settings.unsafe_disable).apply(decision)
    await memory.remember(ctx.redis, scope.repo.id, statuses={number: Status.TIMEOUT.value},
                          identities={}, entered={number: now.isoformat()})
    await record_unprompted(ctx, scope, decision, event="timer")
    return f"moved #{number} to timeout"
