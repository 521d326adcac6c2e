"""The per-competition loop: lease → take the burst → read fresh → evaluate → apply → remember.

Every ``issues`` change is first left in its competition's pending list (a lone issue is its
own scope); whichever worker holds the competition's lease takes the whole burst and decides
once on a fresh read (SPEC §6). A decision whose issue changed under it (:class:`Conflict`) is
taken again on a new read, with backoff and full jitter; past the retry budget the issue gets
``reactor:needs-human``. A burst that cannot be judged yet (a two-request status change half
done, webhooks still on their way) is parked until its settle window ends, then a scheduled
job evaluates it again. Each delivery is judged once per scope: a retried job's change is
recognised and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime, timedelta

import redis.asyncio
from gidgethub.abc import GitHubAPI
from rq import get_current_job

from reactor import comments
from reactor.actions import CreateIssue, Decision, Escalate, Saga
from reactor.config import RepoConfig
from reactor.context import Context
from reactor.errors import GitHubError, is_transient
from reactor.labels import LabelKind, LabelSet, Status, parse_label
from reactor.model import Event
from reactor.rules import evaluate, timeouts
from reactor.shell import burst, reads, repoconfig, saga, timers
from reactor.shell.apply import Applier, Conflict
from reactor.shell.audit import record_decision, record_problem, record_resumed
from reactor.shell.burst import Scope
from reactor.store import keys, locks, memory
from reactor.view import Change, CompetitionView

log = logging.getLogger(__name__)

CONFLICT_ATTEMPTS = 5
CONFLICT_BASE_S, CONFLICT_CAP_S = 0.2, 3.2
# A busy lease's holder takes the changes left for it; this check only covers a holder that
# died (its lease expires after locks.LEASE_TTL_MS).
CHECK_AFTER = timedelta(seconds=2)
SETTLE_RECHECK_MIN = timedelta(milliseconds=500)  # a parked burst is never re-checked at once

__all__ = ["Scope", "read_view", "run", "scope_of", "submit"]


async def scope_of(client: redis.asyncio.Redis, event: Event) -> Scope | None:
    """The competition an issue event concerns.

    An issue's competition is the one the reactor remembers for it (R3: it never changes
    unless a maintainer moves the issue), so both halves of a swapped ``comp:`` label are
    judged together, in the issue's own competition. A new issue's competition comes from
    its payload.
    """
    if event.repo is None or event.installation_id is None or event.issue is None:
        return None
    comp = await memory.competition_of(client, event.repo.id, event.issue)
    changed = parse_label(event.label) if event.label else None
    if comp is None and changed is not None and changed.kind is LabelKind.COMP:
        # The label lost was its own; of the labels it has, one just added is not.
        lost = event.action == "unlabeled"
        comp = changed.value if lost else min(event.comps - {changed.value}, default=changed.value)
    elif comp is None:
        comp = min(event.comps, default=None)
    return Scope(event.repo, event.installation_id, comp, None if comp else event.issue)


async def submit(ctx: Context, scope: Scope, change: Change) -> None:
    """Leave ``change`` for the competition, then evaluate it unless another worker is."""
    await locks.push_pending(ctx.redis, scope.key, burst.encode(change))
    await run(ctx, scope)


async def run(ctx: Context, scope: Scope) -> None:
    """Evaluate the scope's pending (and parked) changes for as long as new ones arrive.

    Also the scheduled check's entry point, which finds nothing to do when all went well.
    """
    while True:
        lease = await locks.acquire(ctx.redis, scope.key, guarded=ctx.settings.guards("lease"))
        if lease is None:  # the holder takes our change; a check follows in case it died
            burst.schedule(ctx.sync_redis, scope, at=datetime.now(UTC) + CHECK_AFTER,
                           kind="check")
            return
        try:
            await _evaluate_pending(ctx, scope, lease)
        finally:
            await lease.release()
        if not await locks.has_pending(ctx.redis, scope.key):
            return  # parked changes wait for their scheduled check or the next change


async def _take(ctx: Context, scope: Scope) -> list[Change]:
    """The burst: parked and pending changes, each delivery once, none judged before."""
    await burst.unpark(ctx.redis, scope)
    unique = {c.delivery_id: c for c in map(burst.decode,
                                            await locks.take_pending(ctx.redis, scope.key))}
    done = await locks.judged(ctx.redis, scope.key, list(unique))
    return [c for guid, c in unique.items() if guid not in done]


async def _evaluate_pending(ctx: Context, scope: Scope, lease: locks.Lease) -> None:
    changes = await _take(ctx, scope)
    if not changes:
        await locks.finish_pending(ctx.redis, scope.key)
        return
    gh = ctx.github.for_installation(scope.installation_id)
    try:
        config, problem = await repoconfig.load(ctx.redis, gh, scope.repo)
        decision = await _decide_and_apply(ctx, gh, scope, lease, changes, config)
        if problem is not None:
            await _report(ctx, gh, scope, problem, changes)
    except GitHubError as exc:
        if not is_transient(exc):  # the burst can never succeed; the next change reads afresh
            await locks.finish_pending(ctx.redis, scope.key)
        raise
    await record_decision(ctx, scope, decision, changes)
    parked = [c for c in changes if c.issue in decision.settling]
    if decision.settle_until is not None:
        await burst.park(ctx.redis, scope, parked)
        at = max(decision.settle_until, datetime.now(UTC) + SETTLE_RECHECK_MIN)
        burst.schedule(ctx.sync_redis, scope, at=at, kind="settle")
    await locks.mark_judged(ctx.redis, scope.key,
                            [c.delivery_id for c in changes if c not in parked])
    await _send_moved(ctx, scope, decision, changes)
    await locks.finish_pending(ctx.redis, scope.key)


async def _decide_and_apply(
    ctx: Context, gh: GitHubAPI, scope: Scope, lease: locks.Lease, changes: list[Change],
    config: RepoConfig,
) -> Decision:
    for attempt in range(CONFLICT_ATTEMPTS):
        view = await read_view(ctx, gh, scope, changes, config)
        for journal in await saga.pending(ctx.redis, scope.key):  # a worker died mid-hand-off
            await Applier(gh, ctx.redis, scope.repo, lease, view, config.maintainers,
                          unsafe=ctx.settings.unsafe_disable).resume(journal)
            await record_resumed(ctx, scope, journal.saga.source, journal.done,
                                 len(journal.saga.steps))
            changes = still_to_judge(changes, journal.saga)
            view = await read_view(ctx, gh, scope, changes, config)
        decision = evaluate(changes, view, config, now=datetime.now(UTC),
                            backlog=await _backlog(ctx))
        applier = Applier(gh, ctx.redis, scope.repo, lease, view, config.maintainers,
                          unsafe=ctx.settings.unsafe_disable)
        try:
            await applier.apply(decision)
        except Conflict as conflict:
            log.info("conflict on #%d (attempt %d)", conflict.issue, attempt + 1)
            if attempt + 1 == CONFLICT_ATTEMPTS:
                return await _escalate(applier, config, decision, conflict, changes[-1])
            pause = min(CONFLICT_CAP_S, CONFLICT_BASE_S * 2**attempt)
            await asyncio.sleep(random.uniform(0, pause))  # noqa: S311 - jitter, not secrecy
            continue
        await _remember(ctx, scope, decision, applier, config)
        return decision
    raise AssertionError("unreachable")


def still_to_judge(changes: list[Change], done: Saga) -> list[Change]:
    """The burst's changes left to judge once a hand-off a dead worker began is carried out:
    not those its completion accounts for (the saga remembered the source ``completed``;
    judged again from there, the agent's moves into it would read as moves out of it)."""
    settled = set(done.settled)
    return [c for c in changes if c.delivery_id not in settled]


# Jobs that carry no delivery — re-checks of a scope, timeout checks, the catch-up — hold no
# change a burst could lack; counting them, two parked scopes kept each other waiting.
_NO_DELIVERY = (b"settle-", b"check-", b"timeout-", b"catchup-")
_QUEUE_LOOK = 64  # queued jobs looked at; a longer queue is a backlog whatever it holds


async def _backlog(ctx: Context) -> bool:
    """Whether deliveries still wait to be handled — in the events queue, taken by another
    worker that has not left its change yet, or held back by an installation's limiter — so
    the burst being judged may lack some of its changes. A delivery the burst lacks is never
    judged missing: a verdict that is not plainly valid waits for the queue
    (reactor.rules._base.Situation.settle_until)."""
    connection = ctx.redis
    async with connection.pipeline(transaction=False) as pipe:
        pipe.lrange(f"rq:queue:{keys.QUEUE_EVENTS}", 0, _QUEUE_LOOK)
        pipe.zrange(f"rq:wip:{keys.QUEUE_EVENTS}", 0, -1)  # RQ's started registry
        pipe.smembers("rq:rl-keys")
        queued, started, limiters = await pipe.execute()
    current = get_current_job()
    own = f"{current.id}:".encode() if current is not None else None
    deliveries = [job for job in [*queued, *started] if not job.startswith(_NO_DELIVERY)
                  and (own is None or not job.startswith(own))]
    if deliveries or len(queued) > _QUEUE_LOOK:
        return True
    async with connection.pipeline(transaction=False) as pipe:
        for name in limiters:
            pipe.zcard(f"rq:rl:{name.decode() if isinstance(name, bytes) else name}:rate_limited")
        held = await pipe.execute()
    return any(held)


async def read_view(
    ctx: Context, gh: GitHubAPI, scope: Scope, changes: list[Change], config: RepoConfig,
) -> CompetitionView:
    """The competition read afresh, with the reactor's memory of it (nothing written)."""
    issues = await reads.competition_issues(gh, scope.repo, scope.comp, {c.issue for c in changes})
    numbers = [i.number for i in issues]
    recalled = await memory.recall(ctx.redis, scope.repo.id, numbers)
    window = config.revert_window.total_seconds()
    return CompetitionView(
        repo=scope.repo.full_name, comp=scope.comp, issues=issues,
        accepted={n: Status(r.status) for n, r in recalled.items() if r.status},
        reverts=await memory.revert_counts(ctx.redis, scope.repo.id, numbers, window_s=window),
        competitions={n: r.comp for n, r in recalled.items() if r.comp},
        stages={n: r.stage for n, r in recalled.items() if r.stage},
        app_login=ctx.app_login,
        native=await memory.dependencies(ctx.redis, scope.repo.id, numbers),
    )


async def _remember(
    ctx: Context, scope: Scope, decision: Decision, applier: Applier, config: RepoConfig,
) -> None:
    created = applier.created
    statuses = {n: s.value for n, s in decision.accepted.items() if n not in applier.failed}
    identities = {n: (i.comp, i.stage) for n, i in decision.identities.items()}
    for action in decision.actions:
        if isinstance(action, CreateIssue) and action.key in created:
            number = created[action.key]
            if number in applier.failed:
                continue
            statuses[number] = action.status.value
            tags = LabelSet.parse(action.labels)
            comps, stages = tags.values(LabelKind.COMP), tags.values(LabelKind.AGENT)
            identities[number] = (next(iter(comps)), next(iter(stages)))
    now = datetime.now(UTC)
    entered = {n: now.isoformat() for n, s in statuses.items()
               if applier.view.accepted.get(n) is not Status(s)}
    await memory.remember(ctx.redis, scope.repo.id, statuses=statuses, identities=identities,
                          entered=entered)
    for number in entered:
        status = Status(statuses[number])
        stage = identities.get(number, ("", ""))[1]
        deadline = timeouts.deadline(status, stage=stage, entered=now, config=config)
        if deadline is not None:
            timers.schedule(ctx.sync_redis, scope, number, status, entered=now, at=deadline)
    window = config.revert_window.total_seconds()
    for number in decision.reverted:
        await memory.record_revert(ctx.redis, scope.repo.id, number,
                                   delivery=f"{number}:{datetime.now(UTC).timestamp()}",
                                   window_s=window)
    for number in decision.handed_back:
        await memory.forget_reverts(ctx.redis, scope.repo.id, number)


async def _escalate(
    failed_on: Applier, config: RepoConfig, failed: Decision, conflict: Conflict, last: Change
) -> Decision:
    """The issue kept changing under the reactor: hand it to a human, once."""
    rule = failed.actions[0].rule
    reason = f"#{conflict.issue} kept changing while the reactor acted on it"
    maintainers = tuple(config.maintainers)
    decision = Decision(actions=(
        Escalate(conflict.issue, maintainers, rule, reason),
        comments.conflict(issue=conflict.issue, rule=rule, maintainers=maintainers,
                          key=last.delivery_id),
    ))
    # The conflicting issue is written to as it is now: no further precondition read.
    applier = Applier(failed_on.gh, failed_on.redis, failed_on.repo, failed_on.lease,
                      failed_on.view, failed_on.maintainers, unsafe=failed_on.unsafe,
                      _checked={conflict.issue})
    await applier.apply(decision)
    return decision


async def _report(ctx: Context, gh: GitHubAPI, scope: Scope, problem: repoconfig.ConfigProblem,
                  changes: list[Change]) -> None:
    """Say once what is wrong with ``.github/reactor.yml``: in the audit log, and in a comment
    on the repository's newest agent issue. Claimed per distinct text; a comment that could
    not be posted leaves the claim free for the next evaluation."""
    if not await repoconfig.claim_report(ctx.redis, scope.repo, problem.digest):
        return
    try:
        newest = await reads.newest_agent_issue(gh, scope.repo)
        if newest is not None:
            comment = comments.config_problem(issue=newest, problem=problem.text,
                                              key=problem.digest)
            await Applier.post(gh, ctx.redis, scope.repo, comment, author=ctx.app_login)
    except BaseException:
        await repoconfig.release_report(ctx.redis, scope.repo, problem.digest)
        raise
    await record_problem(ctx, scope, problem.text, changes)


async def _send_moved(ctx: Context, scope: Scope, decision: Decision,
                      changes: list[Change]) -> None:
    """A maintainer moved an issue to another competition: judge it there too."""
    for number, comp in decision.moved.items():
        target = Scope(scope.repo, scope.installation_id, comp)
        for change in (c for c in changes if c.issue == number):
            await locks.push_pending(ctx.redis, target.key, burst.encode(change))
        burst.schedule(ctx.sync_redis, target, at=datetime.now(UTC), kind="check")
