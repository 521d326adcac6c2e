"""R11 in the shell: what a round's actors did, counted against their budget.

Each round counts its changes per actor (:mod:`reactor.store.budgets`): label changes are
moves, an issue opened is an issue, and a comment on an agent issue is a comment. The App's
own account never counts (its writes are its echoes; any other change by its login is an
agent acting with the App's token, still not an agent's budget to spend), nor do
maintainers. Each counts as of when the web process received its webhook (a change's
``at``; for a comment, the head of its delivery record, all read in one round trip), not
when the round judges it. Whoever is over a budget of the repository's ``limits`` is an
:class:`~reactor.core.view.Overrun`, which the rules turn into a pause
(:mod:`reactor.core.rules.runaway`).
"""

from __future__ import annotations

from gidgethub.abc import GitHubAPI

from reactor.core.routing import Scope
from reactor.core.view import Actor, Change, ChangeKind, Overrun
from reactor.shell import repoconfig
from reactor.shell.context import Context
from reactor.shell.intake import Commented
from reactor.store import budgets, deliveries

_KINDS = {ChangeKind.LABELED: "moves", ChangeKind.UNLABELED: "moves",
          ChangeKind.OPENED: "issues"}


Done = dict[tuple[str, str], dict[str, float | None]]  # (actor, kind) → delivery → when


async def overruns(ctx: Context, gh: GitHubAPI, scope: Scope, changes: list[Change],
                   comments: list[Commented]) -> tuple[Overrun, ...]:
    """Count ``changes`` and ``comments`` (by delivery: a retried round counts nothing twice)
    and name the actors over a budget."""
    done, seen = _done(ctx, changes, comments)
    if not done:
        return ()
    config, _ = await repoconfig.load(ctx.redis, gh, scope.repo)
    done = {k: n for k, n in done.items() if not config.is_maintainer(k[0])}
    if not done:
        return ()
    await _comment_times(ctx, done)
    limits = config.limits
    counts = await budgets.count(ctx.redis, scope.installation_id, done, limits.windows())
    return tuple(Overrun(actor, kind, count, limits.of(kind).text, *seen[actor])
                 for (actor, kind), count in counts.items() if count > limits.of(kind).limit)


def _done(ctx: Context, changes: list[Change], comments: list[Commented]
          ) -> tuple[Done, dict[str, tuple[int, str]]]:
    """What each actor did (the App's account aside), and where each was seen last."""
    done: Done = {}
    seen: dict[str, tuple[int, str]] = {}
    acts: list[tuple[Actor, str | None, int, str, float | None]] = [
        (c.actor, _KINDS.get(c.kind), c.issue, c.delivery_id, c.at.timestamp())
        for c in changes]
    acts += [(c.actor, "comments", c.issue, c.delivery, None) for c in comments]
    for actor, kind, issue, delivery, at in acts:
        if kind is not None and not ctx.is_self(actor):
            key = (actor.login.casefold(), kind)
            done.setdefault(key, {})[delivery] = at
            seen[key[0]] = (issue, delivery)
    return done, seen


async def _comment_times(ctx: Context, done: Done) -> None:
    """When each comment of ``done`` arrived, from the head of its delivery record (a comment
    carries no time of its own); one that cannot be read counts as now."""
    counted = [times for (_, kind), times in done.items() if kind == "comments"]
    guids = [guid for times in counted for guid in times]
    if guids:
        arrived = await deliveries.arrivals(ctx.redis, guids)
        for times in counted:
            times.update({guid: arrived.get(guid) for guid in times})
