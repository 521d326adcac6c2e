"""The competition's turn: the one unit of work that judges a competition (SPEC §6).

Every path that acts on a competition leaves an item for its turn
(:mod:`reactor.store.turns`) — a delivery as the web process stores it, a settle re-check, a
timeout check, a reconcile request, a change handed on from another competition, a replayed
delivery — and whoever then owns the turn runs it (:func:`take`). A turn works in rounds:
each takes *every* item waiting at once under the competition's lease, reads GitHub once,
decides once with the pure rules, applies, and closes with one transaction that remembers,
audits and releases (:func:`round_of`). Items that arrive meanwhile wait for the next round,
which starts at once; when nothing waits, the turn ends. A turn that keeps finding work for
:data:`MAX_TURN_S` hands over to a job at the back of the queue, so a busy competition never
holds a worker from the others.

Bounded promptness: a change waits at most for its settle window (the rules' bound,
:meth:`reactor.core.rules._base.Situation.settle_until`) — the turn that parks it schedules a
re-check at the window's end, and any round in between judges it with whatever arrived.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from reactor.core.actions import Decision
from reactor.core.events import Event
from reactor.core.rally import Rallies, loads
from reactor.core.routing import Scope, competition_in
from reactor.core.rules import inert, pingpong
from reactor.core.view import Change
from reactor.shell import brakes, decide, intake, repair, saga, schedule, timers
from reactor.shell.context import Context
from reactor.shell.records import decision_records, unprompted_records
from reactor.store import counters, keys, memory, turns
from reactor.store.audit import AuditRecord, Outcome

log = logging.getLogger(__name__)

MAX_TURN_S = 5.0  # rounds one job runs before it hands the turn over to a new job
# A busy competition reads GitHub at most once every ROUND_GAP_S, after FREE_ROUNDS reads in
# a row (a request's webhooks, a move made in two requests): a burst spread over time costs
# a read per gap, not one per round, and the worker is free while the turn waits.
ROUND_GAP_S = 0.75
FREE_ROUNDS = 2
LEASE_RECHECK = timedelta(milliseconds=500)  # past a busy lease's end, in case its holder died
SETTLE_RECHECK_MIN = timedelta(milliseconds=200)  # a parked burst is never re-checked at once


@dataclass
class Report:
    """What a turn did: its rounds, the decisions taken, the reconcile it made, and whether
    another held the lease (the caller's item is then left for that holder)."""

    rounds: int = 0
    decisions: list[Decision] = field(default_factory=list)
    repaired: repair.Repaired | None = None
    busy: bool = False


async def scope_of(ctx: Context, event: Event) -> Scope | None:
    """The scope whose turn judges an event's change: the competition the reactor remembers
    for its issue, else the one its payload names (reactor/core/routing.py)."""
    if event.repo is None or event.installation_id is None or event.issue is None:
        return None
    comp = await memory.competition_of(ctx.redis, event.repo.id, event.issue)
    comp = comp or competition_in(frozenset(event.issue_labels), changed=event.label,
                                  action=event.action)
    return Scope(event.repo, event.installation_id, comp, None if comp else event.issue)


async def submit(ctx: Context, scope: Scope, item: str, *, owner: str,
                 request: repair.Request | None = None) -> Report | None:
    """Leave ``item`` for the scope's turn and run the turn here if this caller now owns it
    (``request``: how it makes a reconcile the item asks for); None when a turn already
    queued or running takes the item."""
    if not await turns.offer(ctx.redis, scope, item, owner=owner):
        return None
    return await take(ctx, scope, owner=owner, request=request)


async def take(ctx: Context, scope: Scope, *, owner: str,
               request: repair.Request | None = None, linger: float = 0.0) -> Report:
    """Run the scope's turn as ``owner`` (who holds its marker): rounds until nothing waits,
    the first after ``linger`` seconds (to take a request's webhooks together). A round due
    within :data:`ROUND_GAP_S` of reads in a row is not run here: the turn is paused, and a
    job the scheduler queues when the gap ends goes on with it."""
    report = Report()
    request = request or repair.Request()
    if linger > 0:
        await asyncio.sleep(linger)
    started, gap_ms = time.monotonic(), int(ROUND_GAP_S * 1000)
    while True:
        wait_ms, streak = await turns.read_pace(ctx.redis, scope.key, gap_ms=gap_ms,
                                                free=FREE_ROUNDS)
        if wait_ms > 0:  # the scheduler queues the job that goes on then
            successor = turns.owner_id(scope.digest, f"paced-{secrets.token_hex(6)}")
            await turns.pause(ctx.redis, scope, owner=successor, for_ms=wait_ms)
            return report
        read_before = len(report.decisions)
        taken = await turns.begin(ctx.redis, scope, owner=owner,
                                  guarded=ctx.settings.guards("lease"))
        if taken is None:
            await _lease_busy(ctx, scope)
            report.busy = True
            return report
        report.rounds += 1
        try:
            commit = await round_of(ctx, scope, taken, report, request)
        except BaseException:
            await turns.release(ctx.redis, taken)
            raise
        if len(report.decisions) > read_before:  # it read GitHub
            commit.writes.append(partial(turns.queue_read, scope=scope.key, streak=streak + 1,
                                         gap_ms=gap_ms))
        if not await turns.finish(ctx.redis, taken, commit):
            return report
        if time.monotonic() - started > MAX_TURN_S:
            successor = turns.owner_id(scope.digest, f"next-{taken.lease.fence}")
            await turns.hand_over(ctx.redis, scope.key, owner=successor)
            schedule.hand_over(ctx.sync_redis, scope, successor)
            return report


async def _lease_busy(ctx: Context, scope: Scope) -> None:
    """Another holds the lease and takes what waits; should it have died, its lease ends
    by itself, and a re-check comes then."""
    left_ms = max(0, await ctx.redis.pttl(keys.lease(scope.key)))
    at = datetime.now(UTC) + timedelta(milliseconds=left_ms) + LEASE_RECHECK
    schedule.wake(ctx.sync_redis, scope, at=at, why="lease")


async def round_of(ctx: Context, scope: Scope, taken: turns.Taken, report: Report,
                   request: repair.Request) -> turns.Commit:
    """One round: every item taken, judged at once; what it leaves to write at its close."""
    fresh = [item for item in taken.items if item not in taken.judged]
    delivered = await intake.take_in(ctx, fresh)
    changes, strays, rallies = await _own(ctx, scope, delivered.changes)
    records: list[AuditRecord] = list(delivered.records)
    commit = turns.Commit()
    gh = ctx.github.for_installation(scope.installation_id)
    journals = [saga.loads(scope.key, raw) for raw in taken.journals]
    # Judged, yet in flight: the round that judged them never closed. A journal still in
    # progress names its own (the resumed hand-off's record); the rest get one here.
    resumed = {guid for journal in journals for guid in journal.saga.settled}
    records += await intake.settled(
        ctx, scope, [i for i in taken.judged if turns.guid_of(i) not in resumed])
    carried = {turns.guid_of(item) for item in taken.carried}  # counted when they came
    overruns = await brakes.overruns(ctx, gh, scope,
                                     [c for c in changes if c.delivery_id not in carried],
                                     delivered.comments)
    settling: set[str] = set()
    if journals or overruns or _loopy(rallies, changes) or not all(inert(c) for c in changes):
        judgement = await decide.judge(ctx, gh, scope, taken.lease, changes, journals,
                                       rallies=rallies, overruns=overruns)
        decision = judgement.decision
        report.decisions.append(decision)
        records += judgement.records + [
            r for r in decision_records(scope, decision, judgement.changes)
            if r.outcome != Outcome.PARKED.value or r.delivery not in carried]  # said before
        commit.writes += judgement.writes
        settling = {c.delivery_id for c in judgement.changes if c.issue in decision.settling}
        if decision.settle_until is not None:
            at = max(decision.settle_until, datetime.now(UTC) + SETTLE_RECHECK_MIN)
            schedule.wake(ctx.sync_redis, scope, at=at, why="settle")
        await _hand_on_moved(ctx, scope, decision, judgement.changes)
    elif changes:  # nothing a rule reads changed: no read, nothing to decide
        records += decision_records(scope, Decision(), changes)
        played = pingpong.play(rallies, changes)  # the judgement remembers them otherwise
        if played:
            commit.writes.append(partial(memory.queue_remember, repo_id=scope.repo.id,
                                         statuses={}, identities={}, rallies=played))
    for item in fresh:
        if item.startswith("t:"):
            decision, writes = await timers.check(ctx, gh, scope, taken.lease,
                                                  timers.Timer.parse(item))
            records += unprompted_records(scope, decision, event="timer")
            commit.writes += writes
    if turns.RECONCILE in fresh and scope.comp is not None:
        report.repaired = await repair.repair(ctx, gh, scope, taken.lease, request)
        records += unprompted_records(scope, report.repaired.decision, event="reconcile")
        commit.writes += report.repaired.writes
    commit.parked = [i for i in fresh if turns.guid_of(i) in settling]
    commit.judged = [guid for i in fresh if i.startswith("m:") and (guid := turns.guid_of(i))
                     is not None and guid not in settling and guid not in strays]
    commit.writes.append(lambda pipe: counters.queue_records(pipe, records))
    judged = sum(1 for i in fresh if (guid := turns.guid_of(i)) is not None
                 and guid not in settling and guid not in strays)
    commit.writes.append(lambda pipe: counters.queue_round(pipe, judged))
    latencies = _latencies(delivered, changes, settling)
    commit.writes.append(lambda pipe: counters.queue_latencies(pipe, latencies))
    return commit


def _loopy(rallies: Mapping[int, Rallies], changes: list[Change]) -> bool:
    """Whether a change took a rally to a second undo in a row (R12 may then stop a loop):
    the round is judged, even when no rule reads the label."""
    for number, after in pingpong.play(rallies, changes).items():
        before = rallies.get(number, {})
        if any(len(r.undos) > 1 and r != before.get(name) for name, r in after.items()):
            return True
    return False


async def _own(ctx: Context, scope: Scope, changes: list[Change]
               ) -> tuple[list[Change], set[str], dict[int, Rallies]]:
    """The changes this scope judges, the deliveries of those it hands on, and the rallies
    remembered for their issues (R12): an issue's competition is the one the reactor
    remembers for it (R3: it never changes unless a maintainer moves it), which a payload
    alone cannot tell (reactor/core/routing.py)."""
    if not changes:
        return [], set(), {}
    issues = sorted({c.issue for c in changes})
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for number in issues:
            pipe.hmget(keys.issue(scope.repo.id, number), "comp", memory.RALLIES)
        found = await pipe.execute()
    remembered = {n: c.decode() for n, (c, _) in zip(issues, found, strict=True)
                  if c is not None}
    rallies: dict[int, Rallies] = {n: loads(r.decode())
                                   for n, (_, r) in zip(issues, found, strict=True) if r}
    own, strays = [], set()
    for change in changes:
        comp = remembered.get(change.issue)
        if comp is None or comp == scope.comp:
            own.append(change)
        else:
            await _hand_on(ctx, scope.moved_to(comp), change)
            strays.add(change.delivery_id)
    return own, strays, rallies


async def _hand_on(ctx: Context, target: Scope, change: Change) -> None:
    """Leave ``change`` for ``target``'s turn, queuing that turn if none is queued."""
    item = turns.moved_item(change.delivery_id, schedule.encode(change))
    owner = turns.owner_id(target.digest, f"from-{change.delivery_id}")
    if await turns.offer(ctx.redis, target, item, owner=owner):
        schedule.hand_over(ctx.sync_redis, target, owner)


async def _hand_on_moved(ctx: Context, scope: Scope, decision: Decision,
                         changes: list[Change]) -> None:
    """A maintainer moved an issue to another competition: judge it there too."""
    for number, comp in decision.moved.items():
        for change in (c for c in changes if c.issue == number):
            await _hand_on(ctx, scope.moved_to(comp), change)


def _latencies(delivered: intake.Taken, changes: list[Change], settling: set[str]
               ) -> list[float]:
    """Each delivery judged in this round: seconds from its arrival until now."""
    now = time.time()
    arrived = {guid: event.received_at for guid, event in delivered.events.items()}
    arrived.update({c.delivery_id: c.at.timestamp() for c in changes
                    if c.delivery_id not in arrived})
    return [now - at for guid, at in arrived.items() if at and guid not in settling]


