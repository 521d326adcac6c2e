"""Carrying out hand-offs (R9) as sagas: journaled, resumed after a crash, compensated.

A hand-off's steps — find or create the next issue, label it ``status:starting``, comment on
both, send ``repository_dispatch`` — run under the competition's lease like any write, but
through a journal (:mod:`reactor.shell.saga`): each step done is recorded, so a worker killed
at any step leaves work another worker resumes without repeating done steps. A step GitHub
refuses for good (403 permission removed, 404 repository or issue gone, 410, 422) ends the
saga: the done steps are undone in reverse order (:func:`reactor.core.rules.handoff.undo_steps`)
and the completed issue gets ``reactor:needs-human`` with one comment saying what failed.
Undoing is best effort: what GitHub refuses then is logged, never retried forever.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Protocol

import redis.asyncio

from reactor.core import comments
from reactor.core.actions import Action, CreateIssue, Escalate, Rule, Saga
from reactor.core.errors import Conflict, GitHubError, is_transient
from reactor.core.labels import Status
from reactor.core.rules.handoff import undo_steps
from reactor.core.view import Repo
from reactor.shell import crashpoints
from reactor.shell import saga as journals
from reactor.shell.crashpoints import Point
from reactor.store import memory, turns
from reactor.store.locks import Lease

log = logging.getLogger(__name__)


class Writer(Protocol):
    """What a hand-off writes through: the applier of its decision (reactor/shell/apply.py),
    whose writes are checked against the issue and the lease."""

    redis: redis.asyncio.Redis
    repo: Repo
    lease: Lease
    maintainers: frozenset[str]
    created: dict[str, int]  # creation key -> issue number
    failed: set[int]  # issues a failed hand-off meant to start
    unsafe: frozenset[str]

    async def step(self, action: Action) -> None:
        """One write of a hand-off's step (its precondition read first)."""

    async def perform(self, action: Action) -> None:
        """One write, as it is (undoing a step, escalating)."""


def _journal(applier: Writer) -> redis.asyncio.Redis | None:
    """Where the journal is kept: Redis, or nowhere with ``UNSAFE_DISABLE=journal``."""
    return None if "journal" in applier.unsafe else applier.redis


async def carry_out(applier: Writer, saga: Saga) -> bool:
    """Run ``saga`` from its journal; False when it failed for good and was undone."""
    journal = await journals.begin(_journal(applier), applier.lease.scope, saga)
    return await resume(applier, journal)


async def resume(applier: Writer, journal: journals.Journal) -> bool:
    """Run the steps of ``journal`` not done yet; False when one failed for good."""
    applier.created.update(dict(journal.created))
    steps = journal.saga.steps
    for index in range(journal.done, len(steps)):
        try:
            await applier.step(steps[index])
        except Conflict:
            if index == 0:  # nothing done: the plan is stale, the caller decides again
                await journals.finish(_journal(applier), journal)
            raise
        except GitHubError as exc:
            if is_transient(exc):
                raise  # the journal stays: the next evaluation resumes here
            await _compensate(applier, journal, index, exc)
            await journals.finish(_journal(applier), journal)
            return False
        crashpoints.reached(Point.AFTER_STEP, index)  # the next worker repeats the step
        journal = await journals.advance(_journal(applier), journal, done=index + 1,
                                         created=applier.created)
    await _remember(applier, journal.saga)
    await journals.finish(_journal(applier), journal)
    crashpoints.reached(Point.AFTER_HANDOFF)
    return True


async def _remember(applier: Writer, saga: Saga) -> None:
    """The saga's effect, remembered as soon as it is done: the source completed, the issue
    it started in ``starting``, and the changes the completion accounts for judged. Were the
    decision's memory lost after the saga (the job retried, the worker killed), the
    completion would otherwise be judged — and handed off — again, re-running a next stage
    that may have finished meanwhile; and the agent's moves into ``completed``, judged again
    from it, would read as moves out of it."""
    started = _touched(saga, applier.created)
    statuses = {saga.source: Status.COMPLETED.value,
                **{n: Status.STARTING.value for n in started}}
    now = datetime.now(UTC).isoformat()
    await memory.remember(applier.redis, applier.repo.id, statuses=statuses, identities={},
                          entered={n: now for n in started})
    await turns.mark_judged(applier.redis, applier.lease.scope, list(saga.settled))


async def _compensate(applier: Writer, journal: journals.Journal, failed: int,
                      exc: GitHubError) -> None:
    """Undo the done steps in reverse, then hand the completed issue to a human."""
    saga = journal.saga
    log.warning("hand-off from #%d failed for good at step %d: %s", saga.source, failed, exc)
    for step in undo_steps(saga.steps[:failed], applier.created):
        await _best_effort(applier, step)
    maintainers = tuple(sorted(applier.maintainers))
    problem = f"{type(saga.steps[failed]).__name__} answered {exc.status}: {exc}"
    await _best_effort(applier, Escalate(saga.source, maintainers, Rule.R9, problem))
    await _best_effort(applier, comments.handoff_failed(
        issue=saga.source, problem=problem, maintainers=maintainers, key=saga.key))
    applier.failed.update(_touched(saga, applier.created))


async def _best_effort(applier: Writer, step: Action) -> None:
    try:
        await applier.perform(step)
    except GitHubError as exc:
        log.warning("could not %s: %s", type(step).__name__, exc)


def _touched(saga: Saga, created: dict[str, int]) -> set[int]:
    """The issues a saga meant to start (their accepted status must not be recorded)."""
    numbers = {getattr(s, "issue", None) for s in saga.steps} - {None, saga.source}
    numbers |= {created[s.key] for s in saga.steps if isinstance(s, CreateIssue)
                and s.key in created}
    return {n for n in numbers if isinstance(n, int)}
