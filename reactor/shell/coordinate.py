"""The per-competition loop: lease → take the burst → read fresh → evaluate → apply → remember.

Every ``issues`` change is first left in its competition's pending list (a lone issue is its
own scope); whichever worker holds the competition's lease takes the whole burst and decides
once on a fresh read (SPEC §6). A decision whose issue changed under it (:class:`Conflict`) is
taken again on a new read, with backoff and full jitter; past the retry budget the issue gets
``reactor:needs-human``. An ambiguous read (a two-request status change half done) parks the
burst until the settle window ends, then a scheduled job evaluates it again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import orjson
import redis.asyncio
from gidgethub.abc import GitHubAPI
from rq import Queue

from reactor import comments
from reactor.actions import CreateIssue, Decision, Escalate
from reactor.config import RepoConfig
from reactor.context import Context
from reactor.errors import GitHubError, is_transient
from reactor.labels import LabelKind, Status, parse_label
from reactor.model import Actor, Event, Repo
from reactor.rules import evaluate
from reactor.shell import reads, repoconfig
from reactor.shell.apply import Applier, Conflict
from reactor.shell.audit import record_decision, record_problem
from reactor.store import keys, locks, memory
from reactor.view import Change, ChangeKind, CompetitionView

log = logging.getLogger(__name__)

CONFLICT_ATTEMPTS = 5
CONFLICT_BASE_S, CONFLICT_CAP_S = 0.2, 3.2


@dataclass(frozen=True, slots=True)
class Scope:
    """What one lease covers: a competition of a repository, or one issue outside any."""

    repo: Repo
    installation_id: int
    comp: str | None
    issue: int | None = None

    @property
    def key(self) -> str:
        if self.comp:
            return f"{self.repo.id}:comp:{self.comp}"
        return f"{self.repo.id}:issue:{self.issue}"

    def dumps(self) -> str:
        return orjson.dumps({
            "owner": self.repo.owner, "name": self.repo.name, "repo_id": self.repo.id,
            "installation_id": self.installation_id, "comp": self.comp, "issue": self.issue,
        }).decode()

    @classmethod
    def loads(cls, text: str) -> Scope:
        data = orjson.loads(text)
        return cls(Repo(data["owner"], data["name"], data["repo_id"]), data["installation_id"],
                   data["comp"], data["issue"])


async def scope_of(client: redis.asyncio.Redis, event: Event) -> Scope | None:
    """The competition an issue event concerns.

    An issue's competition is the one it was first seen in (R3: it never changes), so both
    halves of a swapped ``comp:`` label are judged together, in the issue's own competition.
    A new issue's competition comes from its payload.
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
    await locks.push_pending(ctx.redis, scope.key, _encode(change))
    await run(ctx, scope)


async def run(ctx: Context, scope: Scope) -> None:
    """Evaluate the scope's pending (and parked) changes for as long as new ones arrive.

    Also the scheduled check's entry point, which finds nothing to do when all went well.
    """
    while True:
        lease = await locks.acquire(ctx.redis, scope.key)
        if lease is None:  # the holder takes our change; a check follows in case it died
            later = datetime.now(UTC) + timedelta(milliseconds=locks.LEASE_TTL_MS + 1000)
            _schedule(ctx, scope, at=later)
            return
        try:
            await _evaluate_pending(ctx, scope, lease)
        finally:
            await lease.release()
        if not await locks.has_pending(ctx.redis, scope.key):
            return  # parked changes wait for their scheduled check or the next change


async def _unpark(client: redis.asyncio.Redis, scope: Scope) -> None:
    """Parked changes rejoin the burst, before the changes that arrived since."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.lrange(keys.settling(scope.key), 0, -1)
        pipe.delete(keys.settling(scope.key))
        parked, _ = await pipe.execute()
    if parked:
        await client.lpush(keys.pending(scope.key), *reversed(parked))


async def _evaluate_pending(ctx: Context, scope: Scope, lease: locks.Lease) -> None:
    await _unpark(ctx.redis, scope)
    changes = [_decode(raw) for raw in await locks.take_pending(ctx.redis, scope.key)]
    if not changes:
        return
    gh = ctx.github.for_installation(scope.installation_id)
    try:
        config, problem = await repoconfig.load(ctx.redis, gh, scope.repo)
        if problem:
            await record_problem(ctx, scope, problem, changes)
        decision = await _decide_and_apply(ctx, gh, scope, lease, changes, config, problem)
    except GitHubError as exc:
        if not is_transient(exc):  # the burst can never succeed; the next change reads afresh
            await locks.finish_pending(ctx.redis, scope.key)
        raise
    await record_decision(ctx, scope, decision, changes)
    if decision.settle_until is not None:
        await _park(ctx, scope, changes, decision.settle_until)
    await locks.finish_pending(ctx.redis, scope.key)


async def _decide_and_apply(
    ctx: Context, gh: GitHubAPI, scope: Scope, lease: locks.Lease, changes: list[Change],
    config: RepoConfig, problem: str | None,
) -> Decision:
    for attempt in range(CONFLICT_ATTEMPTS):
        view = await _read_view(ctx, gh, scope, changes)
        decision = evaluate(changes, view, config, now=datetime.now(UTC), app_login=ctx.app_login)
        if problem:
            decision = _with_problem_comment(decision, view, problem)
        applier = Applier(gh, ctx.redis, scope.repo, lease, view)
        try:
            await applier.apply(decision)
        except Conflict as conflict:
            log.info("conflict on #%d (attempt %d)", conflict.issue, attempt + 1)
            if attempt + 1 == CONFLICT_ATTEMPTS:
                return await _escalate(applier, config, decision, conflict, changes[-1])
            pause = min(CONFLICT_CAP_S, CONFLICT_BASE_S * 2**attempt)
            await asyncio.sleep(random.uniform(0, pause))  # noqa: S311 - jitter, not secrecy
            continue
        await _remember(ctx.redis, scope, view, decision, applier.created, changes)
        return decision
    raise AssertionError("unreachable")


def _with_problem_comment(decision: Decision, view: CompetitionView, problem: str) -> Decision:
    """Say what is wrong with the config on the newest agent issue, once per config text."""
    agents = [issue.number for issue in view.issues if issue.stage is not None]
    if not agents:
        return decision
    comment = comments.config_problem(issue=max(agents), problem=problem, key=problem)
    return replace(decision, actions=(*decision.actions, comment))


async def _read_view(
    ctx: Context, gh: GitHubAPI, scope: Scope, changes: list[Change]
) -> CompetitionView:
    issues = await reads.competition_issues(gh, scope.repo, scope.comp, {c.issue for c in changes})
    numbers = [i.number for i in issues]
    remembered = await memory.accepted(ctx.redis, scope.repo.id, numbers)
    return CompetitionView(
        repo=scope.repo.full_name, comp=scope.comp, issues=issues,
        accepted={n: Status(status) for n, status in remembered.items()},
        reverts=await memory.revert_counts(ctx.redis, scope.repo.id, numbers),
        competitions=await memory.competitions(ctx.redis, scope.repo.id, numbers),
    )


async def _remember(
    client: redis.asyncio.Redis, scope: Scope, view: CompetitionView, decision: Decision,
    created: dict[str, int], changes: list[Change],
) -> None:
    statuses = {n: s.value for n, s in decision.accepted.items()}
    for action in decision.actions:
        if isinstance(action, CreateIssue) and action.key in created:
            statuses[created[action.key]] = action.status.value
    await memory.set_accepted(client, scope.repo.id, statuses)
    if scope.comp is not None:
        members = [i.number for i in view.issues if i.comp == scope.comp]
        await memory.remember_competition(client, scope.repo.id, members, scope.comp)
    delivery = changes[-1].delivery_id
    for number in decision.reverted:
        await memory.record_revert(client, scope.repo.id, number, delivery=delivery)


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
                      failed_on.view, _checked={conflict.issue})
    await applier.apply(decision)
    return decision


async def _park(ctx: Context, scope: Scope, changes: list[Change], until: datetime) -> None:
    for change in changes:
        await ctx.redis.rpush(keys.settling(scope.key), _encode(change))
    _schedule(ctx, scope, at=until)


def _schedule(ctx: Context, scope: Scope, *, at: datetime) -> None:
    """Run ``reactor.jobs.evaluate_scope`` for the scope at ``at`` (RQ's scheduler)."""
    queue = Queue(keys.QUEUE_EVENTS, connection=ctx.sync_redis)
    slot = int(at.timestamp())
    queue.enqueue_at(
        at, "reactor.jobs.evaluate_scope", scope.dumps(),
        job_id=f"scope-{scope.repo.id}-{(scope.comp or scope.issue)}-{slot}".replace(":", "-"),
        result_ttl=600, failure_ttl=7 * 86400,
    )


def _encode(change: Change) -> bytes:
    return orjson.dumps({
        "kind": change.kind.value, "issue": change.issue, "label": change.label,
        "delivery": change.delivery_id, "at": change.at.isoformat(),
        "actor": {"login": change.actor.login, "id": change.actor.id, "type": change.actor.type},
    })


def _decode(raw: bytes) -> Change:
    data = orjson.loads(raw)
    actor = Actor(data["actor"]["login"], data["actor"]["id"], data["actor"]["type"])
    return Change(ChangeKind(data["kind"]), data["issue"], actor, data["delivery"],
                  datetime.fromisoformat(data["at"]), data["label"])
