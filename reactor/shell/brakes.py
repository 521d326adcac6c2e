"""R11 in the shell: what a round's actors did, counted against their budget.

Each round counts its changes per actor (:mod:`reactor.store.budgets`): label changes are
moves, an issue opened is an issue, and a comment on an agent issue is a comment. The App's
own account never counts (its writes are its echoes; any other change by its login is an
agent acting with the App's token, still not an agent's budget to spend), nor do
maintainers. Whoever is over a budget of the repository's ``limits`` is an
:class:`~reactor.core.view.Overrun`, which the rules turn into a pause
(:mod:`reactor.core.rules.runaway`).
"""

from __future__ import annotations

from gidgethub.abc import GitHubAPI

from reactor.core.routing import Scope
from reactor.core.view import Change, ChangeKind, Overrun
from reactor.shell import repoconfig
from reactor.shell.context import Context
from reactor.shell.intake import Commented
from reactor.store import budgets

_KINDS = {ChangeKind.LABELED: "moves", ChangeKind.UNLABELED: "moves",
          ChangeKind.OPENED: "issues"}


async def overruns(ctx: Context, gh: GitHubAPI, scope: Scope, changes: list[Change],
                   comments: list[Commented]) -> tuple[Overrun, ...]:
    """Count ``changes`` and ``comments`` (by delivery: a retried round counts nothing twice)
    and name the actors over a budget."""
    done: dict[tuple[str, str], list[str]] = {}
    seen: dict[str, tuple[int, str]] = {}  # where each actor was seen last
    acts = [(c.actor, _KINDS.get(c.kind), c.issue, c.delivery_id) for c in changes]
    acts += [(c.actor, "comments", c.issue, c.delivery) for c in comments]
    for actor, kind, issue, delivery in acts:
        if kind is not None and not ctx.is_self(actor):
            key = (actor.login.casefold(), kind)
            done.setdefault(key, []).append(delivery)
            seen[key[0]] = (issue, delivery)
    if not done:
        return ()
    config, _ = await repoconfig.load(ctx.redis, gh, scope.repo)
    done = {k: n for k, n in done.items() if not config.is_maintainer(k[0])}
    if not done:
        return ()
    limits = config.limits
    counts = await budgets.count(ctx.redis, scope.installation_id, done, limits.windows())
    return tuple(Overrun(actor, kind, count, limits.of(kind).text, *seen[actor])
                 for (actor, kind), count in counts.items() if count > limits.of(kind).limit)

