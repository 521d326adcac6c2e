"""``reactor reconcile`` and the periodic sweep: every open agent issue read afresh, and
what the rules require of the state repaired (:mod:`reactor.core.rules.reconcile`).

Per installation (suspended ones skipped), per repository in order of id: a paginated
listing of its open issues, oldest first (conditional requests make an unchanged page free);
the agent issues are grouped by competition, and each competition's turn reconciles it. The
sweep lists a window of pages at a time and sweeps its competitions before listing the next,
so a listing longer than its budget is swept over several runs
(:meth:`reactor.shell.budget.Budget.window`); ``reactor reconcile`` lists every page at once.

Each competition's reconcile is made by its turn (:mod:`reactor.shell.repair`), like any
other work on it.

One tenant never stops the others: an error on a repository is reported and the next one
goes on; a rate limit ends that installation's part of the run only. The sweep
(:mod:`reactor.shell.sweep`) also bounds each installation's GitHub calls per run
(:mod:`reactor.shell.budget`) and resumes where the previous run stopped.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gidgethub.abc import GitHubAPI

from reactor.core.errors import Conflict, GitHubError, LeaseLost, RateLimited
from reactor.core.events import parse_issue
from reactor.core.routing import Scope
from reactor.core.rules.repairs import home_comp
from reactor.core.view import IssueSnapshot, Repo
from reactor.github import Installation, list_installations, repo_installation
from reactor.shell import repair, repoconfig, turn
from reactor.shell.budget import Budget, Pass, Position
from reactor.shell.context import Context
from reactor.store import memory, tenants, turns

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
PER_PAGE = 100  # issues per page of a repository's listing (GitHub's most)


@dataclass
class Summary:
    """What a reconcile run saw and repaired, and what it left for the next one."""

    repositories: int = 0
    competitions: int = 0
    issues: int = 0
    busy: int = 0  # competitions skipped because a worker held them: the next run takes them
    actions: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seeded: int = 0
    unsettled: int = 0  # issues changed moments ago: the webhook path judges them
    suspended: int = 0  # installations skipped
    problems: list[str] = field(default_factory=list)  # one line per failed repository
    calls: int = 0  # GitHub calls made by the sweep's metered passes
    stopped: str = ""  # why a sweep stopped early, and where the next run resumes

    def line(self) -> str:
        repaired = ", ".join(f"{n} {kind}" for kind, n in sorted(self.actions.items()))
        extra = [f"{self.busy} busy, left for the next run" if self.busy else "",
                 f"{self.unsettled} changed moments ago, left to the webhooks"
                 if self.unsettled else "",
                 f"{self.suspended} suspended installation(s) skipped" if self.suspended else "",
                 f"{len(self.problems)} failed: {'; '.join(self.problems)}"
                 if self.problems else "",
                 f"{self.calls} GitHub calls" if self.calls else "", self.stopped]
        return (f"{self.repositories} repositories, {self.competitions} competitions, "
                f"{self.issues} open agent issues; memory seeded for {self.seeded}; "
                f"repaired: {repaired or 'nothing'}"
                + "".join(f"; {part}" for part in extra if part))


async def repositories(ctx: Context, only: str | None) -> AsyncIterator[tuple[int, Repo]]:
    """(installation id, repository) of every repository the App is installed on (but
    suspended), or the one named ``owner/name``."""
    async for installation in list_installations(ctx.github.app):
        if installation.suspended:
            continue
        gh = ctx.github.for_installation(installation.id)
        async for repo in installation_repositories(gh, only):
            yield installation.id, repo


async def installation_repositories(gh: GitHubAPI, only: str | None = None
                                    ) -> AsyncIterator[Repo]:
    """The installation's repositories (``gh`` acts as it), or the one named."""
    async for item in gh.getiter("/installation/repositories{?per_page}",
                                 {"per_page": 100}, iterable_key="repositories"):
        repo = Repo(item["owner"]["login"], item["name"], int(item["id"]))
        if only is None or repo.full_name.casefold() == only.casefold():
            yield repo


async def run(ctx: Context, *, only: str | None = None,
              progress: Progress = lambda line: None) -> Summary:
    """Reconcile every repository (or the one named), with no bound on GitHub calls
    (``reactor reconcile``); ``progress`` hears one line per repository and per problem."""
    summary = Summary()
    async for installation in _installations(ctx, only):
        if installation.suspended:
            summary.suspended += 1
            progress(f"installation {installation.id} ({installation.account}) is suspended: "
                     f"skipped")
            continue
        sweep = Pass(installation.id, ctx.github.for_installation(installation.id), Budget())
        await sweep_installation(ctx, sweep, summary, installation=installation, only=only,
                                 progress=progress)
    return summary


async def _installations(ctx: Context, only: str | None) -> AsyncIterator[Installation]:
    """Every installation of the App, or the one holding the repository named (none when
    the App is not installed there)."""
    if only is None:
        async for installation in list_installations(ctx.github.app):
            yield installation
        return
    owner, _, name = only.partition("/")
    try:
        yield await repo_installation(ctx.github.app, owner, name)
    except GitHubError as exc:
        if exc.status != 404:
            raise


async def sweep_installation(ctx: Context, sweep: Pass, summary: Summary, *,
                             installation: Installation | None = None,
                             only: str | None = None,
                             progress: Progress = lambda line: None) -> bool:
    """One installation's repositories, from where ``sweep.start`` says; whether it got
    through all of them. A rate limit (``sweep.limited``) or an error listing its
    repositories ends its part, said in ``summary.problems``; an error on one repository is
    said there too, and the next repository goes on."""
    who = f"installation {sweep.installation_id}" + (
        f" ({installation.account})" if installation is not None else "")
    try:
        repos = sorted([r async for r in installation_repositories(sweep.gh, only)],
                       key=lambda r: r.id)
        await tenants.index(ctx.redis, sweep.installation_id, repos)
        for repo in repos:
            if sweep.start is not None and sweep.start.passed(repo.id):
                continue
            if not sweep.budget.allows():
                sweep.stopped = Position(repo.id)
                return False
            await _repository(ctx, sweep, repo, summary, progress)
            if sweep.stopped is not None:
                return False
    except RateLimited as exc:
        sweep.limited = exc.retry_at
        _problem(summary, progress, f"{who}: rate limited until "
                 f"{exc.retry_at.isoformat(timespec='seconds')}; its sweep stopped early and "
                 f"goes on at the next run")
        return False
    except GitHubError as exc:
        _problem(summary, progress, f"{who}: {exc}")
        return False
    return True


async def _repository(ctx: Context, sweep: Pass, repo: Repo, summary: Summary,
                      progress: Progress) -> None:
    summary.repositories += 1
    try:
        await reconcile_repo(ctx, sweep, repo, summary)
    except RateLimited:
        raise
    except GitHubError as exc:
        _problem(summary, progress, f"{repo.full_name}: {exc}")
        return
    progress(f"{repo.full_name}: {summary.line()}")


def _problem(summary: Summary, progress: Progress, line: str) -> None:
    log.warning("reconcile: %s", line)
    summary.problems.append(line)
    progress(line)


async def reconcile_repo(ctx: Context, sweep: Pass, repo: Repo, summary: Summary) -> None:
    """Every competition of the repository with open agent issues, a window of its listing
    at a time (:meth:`reactor.shell.budget.Budget.window`), from where ``sweep.start``
    says; stops (``sweep.stopped``) when the budget is spent."""
    config, _ = await repoconfig.load(ctx.redis, sweep.gh, repo)
    page = sweep.start.first_page(repo.id) if sweep.start is not None else 1
    window = sweep.budget.window()
    while True:
        sweep.at = Position(repo.id, page=page)
        listed = await _open_issues(sweep, repo, page, window)
        if listed is None:  # the budget ran out while listing: the next run lists it again
            sweep.stopped = Position(repo.id, page=page)
            return
        issues, ended = listed
        groups = await _agent_issues(ctx, repo, issues)
        summary.issues += sum(len(group) for group in groups.values())
        await _competitions(ctx, sweep, repo, config, groups, page, summary)
        if ended or window is None or sweep.stopped is not None:
            return
        page += window


async def _competitions(ctx: Context, sweep: Pass, repo: Repo, config: Any,
                        groups: dict[str, list[IssueSnapshot]], page: int,
                        summary: Summary) -> None:
    """The competitions found in the window that begins at listing page ``page``, in order
    of name, from where ``sweep.start`` says."""
    for comp in sorted(groups):
        start = sweep.start
        if start is not None and start.passed(repo.id, comp, page=page):
            continue
        if not sweep.budget.allows():
            sweep.stopped = Position(repo.id, comp, page=page)
            return
        after = start.resume_after(repo.id, comp, page=page) if start is not None else 0
        sweep.at = Position(repo.id, comp, after, page)
        summary.competitions += 1
        scope = Scope(repo, sweep.installation_id, comp)
        try:
            unread = await reconcile_competition(ctx, scope, config, summary, sweep=sweep,
                                                 also=[i.number for i in groups[comp]])
        except (Conflict, LeaseLost) as exc:  # changed under it, or its lease lapsed
            log.info("reconcile %s %s: %s; left for the next run", repo.full_name, comp, exc)
            summary.busy += 1
            continue
        except RateLimited:
            raise
        except GitHubError as exc:  # the repository's other competitions go on
            _problem(summary, lambda line: None, f"{repo.full_name} {comp}: {exc}")
            continue
        if unread is not None:
            sweep.stopped = Position(repo.id, comp, unread, page)
            return


async def _open_issues(sweep: Pass, repo: Repo, first: int, window: int | None
                       ) -> tuple[list[IssueSnapshot], bool] | None:
    """The repository's open issues on ``window`` listing pages from page ``first`` (None:
    every page), oldest first, and whether the listing ends there; None when the budget
    ran out first. A page is read only while the budget allows it."""
    url = f"/repos/{repo.full_name}/issues{{?state,sort,direction,per_page,page}}"
    found: list[IssueSnapshot] = []
    pages = itertools.count(first) if window is None else range(first, first + window)
    for page in pages:
        if not sweep.budget.allows():
            return None
        items: Any = await sweep.gh.getitem(url, {"state": "open", "sort": "created",
                                                  "direction": "asc", "per_page": PER_PAGE,
                                                  "page": page})
        items = items if isinstance(items, list) else []
        found += [parse_issue(item) for item in items if "pull_request" not in item]
        if len(items) < PER_PAGE:
            return found, True
    return found, False


async def _agent_issues(ctx: Context, repo: Repo, issues: list[IssueSnapshot]
                        ) -> dict[str, list[IssueSnapshot]]:
    """The agent issues among ``issues`` (by label, or by what the reactor remembers), by
    the competition whose reconcile judges each."""
    remembered = await memory.recall(ctx.redis, repo.id, [i.number for i in issues])
    groups: dict[str, list[IssueSnapshot]] = defaultdict(list)
    for issue in issues:
        recalled = remembered.get(issue.number, memory.Recalled())
        comp = home_comp(issue, recalled.comp)
        if (issue.stages or recalled.stage) and comp is not None:
            groups[comp].append(issue)
    return groups


async def reconcile_competition(ctx: Context, scope: Scope, config: Any, summary: Summary,
                                *, sweep: Pass, also: Iterable[int] = ()) -> int | None:
    """Leave a reconcile for the competition's turn and make it here, in the turn, when this
    caller then owns it (``also``: issues of it that may have lost its label); a turn queued
    or running elsewhere makes it instead. Returns the issue after which its ``blocked_by``
    reads stopped for want of budget, or None once all were read."""
    after = sweep.at.after if sweep.at is not None else 0
    request = repair.Request(gh=sweep.gh, budget=sweep.budget, also=tuple(also), after=after)
    owner = turns.owner_id(scope.digest, f"reconcile-{secrets.token_hex(6)}")
    report = await turn.submit(ctx, scope, turns.RECONCILE, owner=owner, request=request)
    if report is None or report.busy or report.repaired is None:
        summary.busy += 1  # the turn in progress (or the next) makes it
        return None
    repaired: repair.Repaired = report.repaired
    summary.seeded += repaired.seeded
    summary.unsettled += len(repaired.decision.settling)
    for action in repaired.decision.actions:
        summary.actions[type(action).__name__] += 1
    return repaired.unread
