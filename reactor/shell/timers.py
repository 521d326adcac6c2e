"""R8 timeouts in the shell: a check scheduled when an issue enters ``starting`` or
``running``, made by the competition's turn when the stage's time is up.

Entering a timed status schedules one RQ job at the deadline (:func:`schedule`), named after
the issue, the status, the moment it was entered and the time it is due, so it is scheduled
once however often the entry is remembered. RQ keeps scheduled jobs in Redis, so they
survive worker restarts and, with Redis's append-only file, Redis restarts; nothing polls.
When the job runs it leaves a timeout check (``t:`` item) for the competition's turn; the
turn reads the issue afresh and :func:`reactor.core.rules.timeouts.check` decides
(:func:`check`): a later move (the reactor remembers another entry time, or the issue shows
another status) makes it do nothing.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gidgethub.abc import GitHubAPI
from redis import Redis as SyncRedis
from rq import Queue

from reactor.core.actions import Decision
from reactor.core.labels import Status
from reactor.core.routing import Scope
from reactor.core.rules import timeouts
from reactor.core.view import CompetitionView
from reactor.shell import repoconfig
from reactor.shell.apply import Applier
from reactor.shell.context import Context
from reactor.shell.reads import one_issue
from reactor.store import keys, locks, memory, turns
from reactor.store.accept import JOB_RETRY, JOB_TIMEOUT_S
from reactor.store.turns import Write

log = logging.getLogger(__name__)

EARLY_BY = timedelta(seconds=1)  # how early RQ's scheduler may run a job
RESULT_TTL_S = 600
FAILURE_TTL_S = 7 * 24 * 3600


def schedule(connection: SyncRedis, scope: Scope, issue: int, status: Status, *,
             entered: datetime, at: datetime) -> None:
    """Check ``issue`` at ``at`` (its deadline in ``status``, entered at ``entered``). RQ's
    scheduler keeps whole seconds and may run a job up to a second early: the check runs a
    second late instead, and reschedules itself if it still comes early."""
    name = f"{scope.key}:{issue}:{status.value}:{entered.isoformat()}:{at.isoformat()}"
    job_id = f"timeout-{hashlib.sha256(name.encode()).hexdigest()[:24]}"
    item = Timer(issue, status, entered).item
    Queue(keys.QUEUE_EVENTS, connection=connection).enqueue_at(
        at + EARLY_BY, "reactor.entrypoints.jobs.offer", scope.dumps(), item, job_id, job_id=job_id,
        retry=JOB_RETRY, job_timeout=JOB_TIMEOUT_S, result_ttl=RESULT_TTL_S,
        failure_ttl=FAILURE_TTL_S,
    )


@dataclass(frozen=True, slots=True)
class Timer:
    """A timeout check a turn makes: ``issue`` in ``status`` since ``entered``."""

    issue: int
    status: Status
    entered: datetime

    @property
    def item(self) -> str:
        return turns.timer_item(self.issue, self.status.value, self.entered.isoformat())

    @classmethod
    def parse(cls, item: str) -> Timer:
        _, issue, status, entered = item.split(":", 3)
        return cls(int(issue), Status(status), datetime.fromisoformat(entered))


async def check(ctx: Context, gh: GitHubAPI, scope: Scope, lease: locks.Lease, timer: Timer
                ) -> tuple[Decision, list[Write]]:
    """Move the issue to ``status:timeout`` if it is still in that entry and its time is
    up; returns the decision applied and what to remember."""
    number, status, entered = timer.issue, timer.status, timer.entered
    issue = await one_issue(gh, scope.repo, number)
    recalled = (await memory.recall(ctx.redis, scope.repo.id, [number])).get(number)
    if issue is None or recalled is None or recalled.stage is None:
        return Decision(), []
    config, _ = await repoconfig.load(ctx.redis, gh, scope.repo)
    remembered = datetime.fromisoformat(recalled.since) if recalled.since else None
    now = datetime.now(UTC)
    due = timeouts.deadline(status, stage=recalled.stage, entered=entered, config=config)
    if due is not None and now < due:  # early (or the limit grew): look again then
        schedule(ctx.sync_redis, scope, number, status, entered=entered, at=due)
        return Decision(), []
    actions = timeouts.check(issue, stage=recalled.stage, status=status, entered=entered,
                             now=now, config=config, remembered=remembered)
    if not actions:
        return Decision(), []
    view = CompetitionView(repo=scope.repo.full_name, comp=scope.comp, issues=(issue,),
                           app_login=ctx.app_login)
    decision = Decision(actions=actions, accepted={number: Status.TIMEOUT})
    await Applier(gh, ctx.redis, scope.repo, lease, view, config.maintainers,
                  unsafe=ctx.settings.unsafe_disable).apply(decision)
    repo, moment = scope.repo.id, now.isoformat()
    return decision, [lambda pipe: memory.queue_remember(
        pipe, repo, statuses={number: Status.TIMEOUT.value}, identities={},
        entered={number: moment})]
