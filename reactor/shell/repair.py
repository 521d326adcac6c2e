"""A competition's reconcile, made by its turn: every issue read afresh, what the rules require
of the state repaired (:func:`reactor.core.rules.reconcile.reconcile`).

``reactor reconcile`` and the sweep leave a reconcile request (an ``r`` item) for the
competition's turn (:mod:`reactor.shell.reconciler`); the round that takes it, after judging
whatever deliveries it took, reads the competition again with its native "blocked by" links
(the sweep is where they are checked against what the webhooks said, as far as its budget of
GitHub calls allows, resuming after the issue where the last run stopped), decides, applies
under the round's lease — hand-offs as sagas — and leaves what to remember to the round's
closing transaction; each issue in ``starting`` or ``running`` gets its timeout check
(re)scheduled. Everything is audited under the event ``reconcile``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from gidgethub.abc import GitHubAPI

from reactor.core.actions import Decision
from reactor.core.config import RepoConfig
from reactor.core.labels import Status
from reactor.core.routing import Scope
from reactor.core.rules import timeouts
from reactor.core.rules.reconcile import reconcile
from reactor.core.view import CompetitionView
from reactor.shell import reads, repoconfig, timers
from reactor.shell.apply import Applier
from reactor.shell.budget import MIN_READS, Budget, Metered
from reactor.shell.context import Context
from reactor.shell.neighbours import with_neighbours
from reactor.store import locks, memory
from reactor.store.turns import Write

# GitHub calls a reconcile left for a turn in another process may make (the sweep's own
# budget stays with the sweep): a turn never spends a tenant's calls unbounded.
CALLS = 60


@dataclass
class Request:
    """What a reconcile asks of the turn: issues of the competition that may have lost its
    label (``also``), the GitHub API object its calls are charged to and its budget (None:
    the turn's, metered against :data:`CALLS`), and the issue after which ``blocked_by``
    reads resume."""

    gh: GitHubAPI | None = None
    budget: Budget = field(default_factory=lambda: Budget(CALLS))
    also: tuple[int, ...] = ()
    after: int = 0


@dataclass
class Repaired:
    """A reconcile made: its decision, the issues it knew nothing of before, the issue after
    which its ``blocked_by`` reads stopped for want of budget (None: all read), and what
    it leaves to remember."""

    decision: Decision
    seeded: int
    unread: int | None
    writes: list[Write]


async def repair(ctx: Context, gh: GitHubAPI, scope: Scope, lease: locks.Lease,
                 request: Request) -> Repaired:
    """Reconcile the competition under the round's lease (see the module docstring)."""
    gh = request.gh or Metered(gh, request.budget)
    config, _ = await repoconfig.load(ctx.redis, gh, scope.repo)
    view, entered, unread = await _read(ctx, gh, scope, request)
    decision = reconcile(view, config, now=datetime.now(UTC), entered=entered)
    applier = Applier(gh, ctx.redis, scope.repo, lease, view, config.maintainers,
                      unsafe=ctx.settings.unsafe_disable)
    await applier.apply(decision)
    seeded = len(set(decision.accepted) - set(view.accepted))
    return Repaired(decision, seeded, unread,
                    _remember(ctx, scope, view, decision, config, entered))


async def _read(ctx: Context, gh: GitHubAPI, scope: Scope, request: Request
                ) -> tuple[CompetitionView, dict[int, datetime], int | None]:
    issues = await reads.competition_issues(gh, scope.repo, scope.comp, request.also)
    numbers = [i.number for i in issues]
    recalled = await memory.recall(ctx.redis, scope.repo.id, numbers)
    native = dict(await memory.dependencies(ctx.redis, scope.repo.id, numbers))
    waiting = [i.number for i in issues if i.is_open and i.stage is not None
               and i.number > request.after]
    unread = await _read_links(ctx, gh, scope, waiting, native, request.budget)
    view = CompetitionView(
        repo=scope.repo.full_name, comp=scope.comp, issues=issues,
        accepted={n: Status(r.status) for n, r in recalled.items() if r.status},
        competitions={n: r.comp for n, r in recalled.items() if r.comp},
        stages={n: r.stage for n, r in recalled.items() if r.stage},
        app_login=ctx.app_login, native=native)
    view = await with_neighbours(ctx, gh, view, repo=scope.repo)
    entered = {n: datetime.fromisoformat(r.since) for n, r in recalled.items() if r.since}
    return view, entered, unread


async def _read_links(ctx: Context, gh: GitHubAPI, scope: Scope, numbers: Iterable[int],
                      native: dict[int, frozenset[int]], budget: Budget) -> int | None:
    """GitHub's "blocked by" links of ``numbers`` read afresh into ``native`` (replacing
    what the webhooks recorded), while the budget allows (at least :data:`MIN_READS`);
    the issue after which reads stopped, or None when all were read."""
    for count, number in enumerate(numbers):
        if count >= MIN_READS and not budget.allows():
            return number - 1  # the next run reads from ``number`` on
        native[number] = await reads.blocked_by(gh, scope.repo, number)
        await memory.set_dependencies(ctx.redis, scope.repo.id, number, native[number])
    return None


def _remember(ctx: Context, scope: Scope, view: CompetitionView, decision: Decision,
              config: RepoConfig, entered: dict[int, datetime]) -> list[Write]:
    """What to remember (queued for the round's close); timeout checks scheduled at once."""
    now = datetime.now(UTC)
    statuses = {n: s.value for n, s in decision.accepted.items()}
    identities = {n: (i.comp, i.stage) for n, i in decision.identities.items()}
    fresh = {n: now.isoformat() for n, s in decision.accepted.items()
             if view.accepted.get(n) is not s}
    for issue in view.issues:
        status = decision.accepted.get(issue.number) or view.accepted.get(issue.number)
        stage = identities.get(issue.number, ("", ""))[1]
        since = now if issue.number in fresh else entered.get(issue.number, now)
        due = timeouts.deadline(status, stage=stage, entered=since, config=config) \
            if status is not None and issue.is_open else None
        if status is not None and due is not None:
            timers.schedule(ctx.sync_redis, scope, issue.number, status, entered=since,
                            at=max(due, now))
    return [partial(memory.queue_remember, repo_id=scope.repo.id, statuses=statuses,
                    identities=identities, entered=fresh)]
