"""The periodic sweep: reconcile over every installation, one bounded job each (SPEC §6).

Every :data:`SWEEP_EVERY` the scheduler enqueues the fan-out (:func:`fan_out`) on the sweep
queue (``reactor-sweep``, which workers take only when no webhook waits). It lists the App's
installations (one App call per hundred), skips the suspended ones, and enqueues one job per
installation on the same queue — starting from a different installation each period — with
the id ``sweep-<installation>-<period>``, once per period (a marker set ``NX``), so a fan-out
retried or run twice never sweeps an installation twice in one period.

Each installation's job (:func:`sweep`):

- reads the installation (one App call) and ends at once when it is suspended or gone;
- runs alone (a lock per installation: a slow run and the next period's never overlap);
- spends at most :data:`CALLS_PER_RUN` GitHub calls — listings, config reads, ``blocked_by``
  reads, writes (:mod:`reactor.shell.budget`) — from where the previous run stopped (its
  cursor in Redis), so an installation's sweep spends about :data:`CALLS_PER_HOUR` an hour.
  When the budget is spent it stops, the cursor says where, and the next run goes on from
  there; a run that gets through the last repository clears it;
- ends early on a rate limit, with the cursor at the competition it was on, and says so;
- reports an error on one repository and goes on with the next.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta

from rq import Queue, Retry

from reactor.core.errors import GitHubError
from reactor.github import Installation, list_installations
from reactor.github.app import parse_installation
from reactor.shell import reconciler
from reactor.shell.budget import Budget, Pass, Position
from reactor.shell.context import Context
from reactor.store import keys

log = logging.getLogger(__name__)

SWEEP_EVERY = timedelta(minutes=10)
# An installation's GitHub calls per hour for its sweep: a fifth of the 5,000 an hour GitHub
# gives the smallest installation, so its webhooks keep the rest. A run (at most one per
# period, never two at once) spends its period's share: 166 calls.
CALLS_PER_HOUR = 1000
CALLS_PER_RUN = int(CALLS_PER_HOUR * (SWEEP_EVERY / timedelta(hours=1)))
JOB_TIMEOUT = timedelta(minutes=15)
FAN_OUT_TIMEOUT = timedelta(minutes=5)
CURSOR_TTL_S = 7 * 24 * 3600
# An installation's sweep that fails (Redis restarting, GitHub away) is tried again within
# its period, from the cursor the last finished run left.
RETRY = Retry(max=2, interval=[30, 120])
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def period_of(now: datetime) -> int:
    return int(now.timestamp() // SWEEP_EVERY.total_seconds())


async def fan_out(ctx: Context, *, now: datetime | None = None) -> str:
    """Enqueue this period's sweep of every installation that is not suspended."""
    period = period_of(now or datetime.now(UTC))
    found = sorted([i async for i in list_installations(ctx.github.app)], key=lambda i: i.id)
    turn = period % len(found) if found else 0
    queue = Queue(keys.QUEUE_SWEEP, connection=ctx.sync_redis)
    ttl = int(SWEEP_EVERY.total_seconds())
    enqueued, suspended = 0, 0
    for installation in found[turn:] + found[:turn]:
        if installation.suspended:
            suspended += 1
            log.info("sweep: installation %d (%s) is suspended: skipped", installation.id,
                     installation.account)
        elif ctx.sync_redis.set(keys.sweep_queued(installation.id, period),
                                "1", nx=True, ex=ttl):
            queue.enqueue("reactor.entrypoints.jobs.sweep_installation", installation.id,
                          job_id=f"sweep-{installation.id}-{period}",
                          job_timeout=int(JOB_TIMEOUT.total_seconds()), result_ttl=ttl * 6,
                          failure_ttl=7 * 24 * 3600, retry=RETRY)
            enqueued += 1
    return (f"{enqueued} installation sweep(s) enqueued; {suspended} suspended "
            f"installation(s) skipped")


async def sweep(ctx: Context, installation_id: int, *, budget: int | None = None) -> str:
    """One installation's sweep, within ``budget`` calls; its summary line."""
    who = f"installation {installation_id}"
    try:
        installation = parse_installation(await ctx.github.app.getitem(
            "/app/installations/{installation_id}", {"installation_id": installation_id}))
    except GitHubError as exc:
        return _said(f"{who}: not swept ({exc})")
    who += f" ({installation.account})"
    if installation.suspended:
        return _said(f"{who} is suspended: not swept")
    lock, mine = keys.sweep_running(installation_id), secrets.token_hex(8)
    if not await ctx.redis.set(lock, mine, nx=True, ex=int(JOB_TIMEOUT.total_seconds())):
        return _said(f"{who}: another sweep of it is running")
    try:
        summary = await _run(ctx, installation, Budget(budget or CALLS_PER_RUN))
    finally:
        await ctx.redis.eval(_RELEASE, 1, lock, mine)
    return _said(f"{who}: {summary.line()}")


async def _run(ctx: Context, installation: Installation, budget: Budget) -> reconciler.Summary:
    cursor = keys.sweep_cursor(installation.id)
    raw = await ctx.redis.get(cursor)
    start = Position.loads(raw) if raw is not None else None
    sweep = Pass.metered(installation.id, ctx.github.for_installation(installation.id), budget,
                         start)
    summary = reconciler.Summary()
    finished = await reconciler.sweep_installation(ctx, sweep, summary,
                                                   installation=installation)
    summary.calls = budget.spent
    resume = sweep.stopped or (sweep.at if sweep.limited is not None else None)
    if sweep.stopped is not None:
        summary.stopped = (f"budget of {budget.limit} GitHub calls spent ({budget.spent}): "
                           f"the next run resumes at {_where(sweep.stopped)}")
    if resume is not None:
        await ctx.redis.set(cursor, resume.dumps(), ex=CURSOR_TTL_S)
    elif finished:
        await ctx.redis.delete(cursor)
    return summary


def _where(position: Position) -> str:
    where = f"repository id {position.repo_id}"
    if position.page > 1:
        where += f", listing page {position.page}"
    if position.comp:
        where += f", competition {position.comp}"
    if position.after:
        where += f" after issue #{position.after}"
    return where


def _said(line: str) -> str:
    log.info("sweep: %s", line)
    return line
