"""A turn's decision on its competition: read fresh → decide (pure rules) → apply → remember.

The competition is read afresh with the reactor's memory of it (:func:`read_view`); a
hand-off a stopped worker began is finished first (its journal, :mod:`reactor.shell.saga`);
the rules decide on the burst of changes (:func:`reactor.core.rules.evaluate`) and the applier
writes the decision as one-label deltas under the lease (:mod:`reactor.shell.apply`). A
decision whose issue changed under it (:class:`Conflict`) is taken again on a new read, with
backoff and full jitter; past the retry budget the issue gets ``reactor:needs-human``. What
the decision leaves to remember is queued for the turn's closing transaction
(:class:`Judgement`), never written half-way.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial

from gidgethub.abc import GitHubAPI

from reactor.core import comments
from reactor.core.actions import CreateIssue, Decision, Escalate, Saga
from reactor.core.config import RepoConfig
from reactor.core.labels import LabelKind, LabelSet, Status
from reactor.core.rally import Rallies, loads
from reactor.core.routing import Scope
from reactor.core.rules import evaluate, pingpong, reads_links, timeouts
from reactor.core.view import Change, CompetitionView, Overrun
from reactor.shell import reads, repoconfig, saga, timers
from reactor.shell.apply import Applier, Conflict
from reactor.shell.context import Context
from reactor.shell.neighbours import with_neighbours
from reactor.shell.records import problem_record, resumed_record
from reactor.store import budgets, locks, memory
from reactor.store.audit import AuditRecord
from reactor.store.turns import Write

log = logging.getLogger(__name__)

CONFLICT_ATTEMPTS = 5
CONFLICT_BASE_S, CONFLICT_CAP_S = 0.2, 3.2


@dataclass
class Judgement:
    """A burst judged: the decision, the changes it judged (the resumed hand-offs' aside),
    the records and memory it leaves for the turn's closing transaction."""

    decision: Decision = field(default_factory=Decision)
    changes: list[Change] = field(default_factory=list)
    records: list[AuditRecord] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)


async def read_view(
    ctx: Context, gh: GitHubAPI, scope: Scope, changes: list[Change], config: RepoConfig, *,
    overruns: tuple[Overrun, ...] = (),
) -> CompetitionView:
    """The competition read afresh, with the reactor's memory of it (nothing written) and the
    burst's ``overruns`` (R11): the "blocked by" links the webhooks recorded only when R7
    needs them for this burst (:func:`reactor.core.rules.reads_links`), revert counts not yet
    (:func:`with_reverts`)."""
    issues = await reads.competition_issues(gh, scope.repo, scope.comp, {c.issue for c in changes})
    numbers = [i.number for i in issues]
    recalled = await memory.recall(ctx.redis, scope.repo.id, numbers)
    view = CompetitionView(
        repo=scope.repo.full_name, comp=scope.comp, issues=issues,
        accepted={n: Status(r.status) for n, r in recalled.items() if r.status},
        competitions={n: r.comp for n, r in recalled.items() if r.comp},
        stages={n: r.stage for n, r in recalled.items() if r.stage},
        app_login=ctx.app_login,
        rallies={n: loads(r.rallies) for n, r in recalled.items() if r.rallies},
        overruns=overruns,
    )
    if not reads_links(changes, view, config, now=datetime.now(UTC)):
        return view
    view = replace(view, native=await memory.dependencies(ctx.redis, scope.repo.id, numbers))
    return await with_neighbours(ctx, gh, view, repo=scope.repo)


async def with_reverts(ctx: Context, scope: Scope, view: CompetitionView, issues: set[int],
                       config: RepoConfig) -> CompetitionView:
    """``view`` with how often the reactor reverted each of ``issues`` lately (the
    revert-war cap: read only when a decision would revert)."""
    window = config.revert_window.total_seconds()
    counts = await memory.revert_counts(ctx.redis, scope.repo.id, sorted(issues),
                                        window_s=window)
    return replace(view, reverts=counts)


async def judge(ctx: Context, gh: GitHubAPI, scope: Scope, lease: locks.Lease,
                changes: list[Change], journals: list[saga.Journal], *,
                rallies: Mapping[int, Rallies] | None = None,
                overruns: tuple[Overrun, ...] = ()) -> Judgement:
    """Decide on the burst ``changes`` and apply the decision (see the module docstring);
    ``rallies``: the issues' as remembered, which the judged label changes continue (R12);
    ``overruns``: the burst's actors over their budget (R11)."""
    config, problem = await repoconfig.load(ctx.redis, gh, scope.repo)
    judgement = Judgement(changes=changes)
    for attempt in range(CONFLICT_ATTEMPTS):
        view = await read_view(ctx, gh, scope, judgement.changes, config, overruns=overruns)
        for journal in journals:  # a worker died mid-hand-off
            await _applier(ctx, gh, scope, lease, view, config).resume(journal)
            judgement.records.append(resumed_record(scope, journal.saga, journal.done))
            judgement.changes = still_to_judge(judgement.changes, journal.saga)
            view = await read_view(ctx, gh, scope, judgement.changes, config,
                                   overruns=overruns)
        journals = []
        decision = evaluate(judgement.changes, view, config, now=datetime.now(UTC))
        if decision.reverted:  # the revert-war cap may change it: decide knowing the counts
            view = await with_reverts(ctx, scope, view, set(decision.reverted), config)
            decision = evaluate(judgement.changes, view, config, now=datetime.now(UTC))
        applier = _applier(ctx, gh, scope, lease, view, config)
        try:
            await applier.apply(decision)
        except Conflict as conflict:
            log.info("conflict on #%d (attempt %d)", conflict.issue, attempt + 1)
            if attempt + 1 == CONFLICT_ATTEMPTS:
                decision = await _escalate(applier, config, decision, conflict,
                                           judgement.changes[-1])
                break
            pause = min(CONFLICT_CAP_S, CONFLICT_BASE_S * 2**attempt)
            await asyncio.sleep(random.uniform(0, pause))  # noqa: S311 - jitter, not secrecy
            continue
        played = pingpong.play(rallies or {}, [c for c in judgement.changes
                                                if c.issue not in decision.settling])
        played.update({n: {} for n in decision.handed_back})  # a human's: rallies start afresh
        judgement.writes += _remember(ctx, scope, decision, applier, config, played)
        if decision.paused_by is not None and scope.comp is not None:  # R11
            judgement.writes.append(partial(budgets.queue_paused, repo_id=scope.repo.id,
                                            comp=scope.comp, actor=decision.paused_by))
        if decision.resumed and scope.comp is not None:  # the culprit's counts start afresh
            await budgets.resumed(ctx.redis, scope.installation_id, scope.repo.id, scope.comp,
                                  list(config.limits.windows()))
        break
    judgement.decision = decision
    if problem is not None:
        judgement.records += await _report(ctx, gh, scope, problem, judgement.changes)
    return judgement


def _applier(ctx: Context, gh: GitHubAPI, scope: Scope, lease: locks.Lease,
             view: CompetitionView, config: RepoConfig) -> Applier:
    return Applier(gh, ctx.redis, scope.repo, lease, view, config.maintainers,
                   unsafe=ctx.settings.unsafe_disable)


def still_to_judge(changes: list[Change], done: Saga) -> list[Change]:
    """The burst's changes left to judge once a hand-off a dead worker began is carried out:
    not those its completion accounts for (the saga remembered the source ``completed``;
    judged again from there, the agent's moves into it would read as moves out of it)."""
    settled = set(done.settled)
    return [c for c in changes if c.delivery_id not in settled]


def _remember(ctx: Context, scope: Scope, decision: Decision, applier: Applier,
              config: RepoConfig, rallies: Mapping[int, Rallies]) -> list[Write]:
    """What the decision changes in the reactor's memory, the issues' ``rallies`` beside
    (queued for the closing transaction: an issue whose status and identity it remembers
    already is not written again); the timeout checks of the statuses it entered are
    scheduled at once."""
    view = applier.view
    created = applier.created
    statuses = {n: s.value for n, s in decision.accepted.items()
                if n not in applier.failed and view.accepted.get(n) is not s}
    identities = {n: (i.comp, i.stage) for n, i in decision.identities.items()
                  if (view.competitions.get(n), view.stages.get(n)) != (i.comp, i.stage)}
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
    entered = {n: now.isoformat() for n in statuses}
    for number in entered:
        status = Status(statuses[number])
        stage = identities.get(number, (None, view.stages.get(number) or ""))[1] or ""
        deadline = timeouts.deadline(status, stage=stage, entered=now, config=config)
        if deadline is not None:
            timers.schedule(ctx.sync_redis, scope, number, status, entered=now, at=deadline)
    repo, window, stamp = scope.repo.id, config.revert_window.total_seconds(), now.timestamp()
    writes: list[Write] = []
    if statuses or identities or rallies:
        writes.append(partial(memory.queue_remember, repo_id=repo, statuses=statuses,
                              identities=identities, entered=entered, rallies=rallies))
    writes += [partial(memory.queue_revert, repo_id=repo, issue=n, delivery=f"{n}:{stamp}",
                       window_s=window) for n in decision.reverted]
    writes += [partial(memory.queue_forget_reverts, repo_id=repo, issue=n)
               for n in decision.handed_back]
    return writes


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
                  changes: list[Change]) -> list[AuditRecord]:
    """Say once what is wrong with ``.github/reactor.yml``: in the audit log, and in a comment
    on the repository's newest agent issue. Claimed per distinct text; a comment that could
    not be posted leaves the claim free for the next turn."""
    if not await repoconfig.claim_report(ctx.redis, scope.repo, problem.digest):
        return []
    try:
        newest = await reads.newest_agent_issue(gh, scope.repo)
        if newest is not None:
            comment = comments.config_problem(issue=newest, problem=problem.text,
                                              key=problem.digest)
            await Applier.post(gh, ctx.redis, scope.repo, comment, author=ctx.app_login)
    except BaseException:
        await repoconfig.release_report(ctx.redis, scope.repo, problem.digest)
        raise
    return [problem_record(scope, problem.text, changes)]
