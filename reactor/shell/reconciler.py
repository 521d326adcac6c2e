"""``reactor reconcile`` and the periodic sweep: every open agent issue read afresh, and
what the rules require of the state repaired (:mod:`reactor.rules.reconcile`).

Per repository: one paginated listing of its open issues (conditional requests make an
unchanged page free); the agent issues are grouped by competition; each competition is
judged under its lease, like a burst, with its native "blocked by" links read afresh (the
sweep is where they are checked against what the webhooks said). The decision is applied as
any other — hand-offs as sagas — and remembered; each issue in ``starting`` or ``running``
gets its timeout check (re)scheduled. Everything is audited under the event ``reconcile``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gidgethub.abc import GitHubAPI

from reactor.actions import Decision
from reactor.context import Context
from reactor.github import list_installations
from reactor.labels import Status
from reactor.model import Repo, parse_issue
from reactor.rules import timeouts
from reactor.rules.reconcile import reconcile
from reactor.shell import reads, repoconfig, timers
from reactor.shell.apply import Applier
from reactor.shell.audit import record_unprompted
from reactor.shell.burst import Scope
from reactor.store import locks, memory
from reactor.view import CompetitionView, IssueSnapshot

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class Summary:
    """What a reconcile run saw and repaired."""

    repositories: int = 0
    competitions: int = 0
    issues: int = 0
    busy: int = 0  # competitions skipped because a worker held them: the next run takes them
    actions: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seeded: int = 0

    def line(self) -> str:
        repaired = ", ".join(f"{n} {kind}" for kind, n in sorted(self.actions.items()))
        busy = f"; {self.busy} busy, left for the next run" if self.busy else ""
        return (f"{self.repositories} repositories, {self.competitions} competitions, "
                f"{self.issues} open agent issues; memory seeded for {self.seeded}; "
                f"repaired: {repaired or 'nothing'}{busy}")


async def repositories(ctx: Context, only: str | None) -> AsyncIterator[tuple[int, Repo]]:
    """(installation id, repository) of every repository the App is installed on, or the
    one named ``owner/name``."""
    async for installation in list_installations(ctx.github.app):
        gh = ctx.github.for_installation(installation.id)
        async for item in gh.getiter("/installation/repositories{?per_page}",
                                     {"per_page": 100}, iterable_key="repositories"):
            repo = Repo(item["owner"]["login"], item["name"], int(item["id"]))
            if only is None or repo.full_name.casefold() == only.casefold():
                yield installation.id, repo


async def run(ctx: Context, *, only: str | None = None,
              progress: Progress = lambda line: None) -> Summary:
    """Reconcile every repository (or the one named); ``progress`` hears one line each."""
    summary = Summary()
    async for installation_id, repo in repositories(ctx, only):
        summary.repositories += 1
        await reconcile_repo(ctx, installation_id, repo, summary)
        progress(f"{repo.full_name}: {summary.line()}")
    return summary


async def reconcile_repo(ctx: Context, installation_id: int, repo: Repo,
                         summary: Summary) -> None:
    gh = ctx.github.for_installation(installation_id)
    config, _ = await repoconfig.load(ctx.redis, gh, repo)
    issues = await _open_agent_issues(gh, repo)
    remembered = await memory.recall(ctx.redis, repo.id, [i.number for i in issues])
    groups: dict[str | None, list[IssueSnapshot]] = defaultdict(list)
    for issue in issues:
        groups[remembered.get(issue.number, memory.Recalled()).comp or issue.comp].append(issue)
    summary.issues += len(issues)
    for comp in sorted(c for c in groups if c is not None):
        summary.competitions += 1
        await reconcile_competition(ctx, Scope(repo, installation_id, comp), config, summary)


async def _open_agent_issues(gh: GitHubAPI, repo: Repo) -> list[IssueSnapshot]:
    url = f"/repos/{repo.full_name}/issues{{?state,per_page}}"
    found = []
    async for item in gh.getiter(url, {"state": "open", "per_page": 100}):
        if "pull_request" not in item:
            issue = parse_issue(item)
            if issue.stage is not None:
                found.append(issue)
    return found


async def reconcile_competition(ctx: Context, scope: Scope, config: Any,
                                summary: Summary) -> None:
    lease = await locks.acquire(ctx.redis, scope.key, guarded=ctx.settings.guards("lease"))
    if lease is None:
        summary.busy += 1
        return
    try:
        gh = ctx.github.for_installation(scope.installation_id)
        view, entered = await _read(ctx, gh, scope)
        decision = reconcile(view, config, now=datetime.now(UTC), entered=entered)
        applier = Applier(gh, ctx.redis, scope.repo, lease, view, config.maintainers,
                unsafe=ctx.settings.unsafe_disable)
        await applier.apply(decision)
        await _remember(ctx, scope, view, decision, config, entered)
        await record_unprompted(ctx, scope, decision, event="reconcile")
    finally:
        await lease.release()
    summary.seeded += len(set(decision.accepted) - set(view.accepted))
    for action in decision.actions:
        summary.actions[type(action).__name__] += 1


async def _read(ctx: Context, gh: GitHubAPI, scope: Scope
                ) -> tuple[CompetitionView, dict[int, datetime]]:
    issues = await reads.competition_issues(gh, scope.repo, scope.comp, ())
    numbers = [i.number for i in issues]
    recalled = await memory.recall(ctx.redis, scope.repo.id, numbers)
    native = {}
    for issue in issues:
        if issue.is_open and issue.stage is not None:
            native[issue.number] = await reads.blocked_by(gh, scope.repo, issue.number)
            await memory.set_dependencies(ctx.redis, scope.repo.id, issue.number,
                                          native[issue.number])
    view = CompetitionView(
        repo=scope.repo.full_name, comp=scope.comp, issues=issues,
        accepted={n: Status(r.status) for n, r in recalled.items() if r.status},
        competitions={n: r.comp for n, r in recalled.items() if r.comp},
        stages={n: r.stage for n, r in recalled.items() if r.stage},
        app_login=ctx.app_login, native=native)
    entered = {n: datetime.fromisoformat(r.since) for n, r in recalled.items() if r.since}
    return view, entered


async def _remember(ctx: Context, scope: Scope, view: CompetitionView, decision: Decision,
                    config: Any, entered: dict[int, datetime]) -> None:
    now = datetime.now(UTC)
    statuses = {n: s.value for n, s in decision.accepted.items()}
    identities = {n: (i.comp, i.stage) for n, i in decision.identities.items()}
    fresh = {n: now.isoformat() for n, s in decision.accepted.items()
             if view.accepted.get(n) is not s}
    await memory.remember(ctx.redis, scope.repo.id, statuses=statuses, identities=identities,
                          entered=fresh)
    for issue in view.issues:
        status = decision.accepted.get(issue.number) or view.accepted.get(issue.number)
        stage = identities.get(issue.number, ("", ""))[1]
        since = now if issue.number in fresh else entered.get(issue.number, now)
        due = timeouts.deadline(status, stage=stage, entered=since, config=config) \
            if status is not None and issue.is_open else None
        if status is not None and due is not None:
            timers.schedule(ctx.sync_redis, scope, issue.number, status, entered=since,
                            at=max(due, now))


def sweep_job() -> str:
    """The periodic sweep (an RQ job on its own queue): reconcile every repository."""
    from reactor.worker import runtime

    current = runtime()
    return current.run(run(current.context)).line()
