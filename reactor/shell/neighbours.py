"""The other competitions a competition's dependencies reach, read for R7 (SPEC §3).

A dependency may point out of the competition — a "blocked by" link or a ``depends on #N``
in a body naming another competition's issue — and a cycle may come back through it. When
R7 judges, the view is given the issues of every competition its dependencies reach, and of
those theirs, up to :data:`MAX_COMPETITIONS` competitions: each read as the competition's own
turn reads it (one listing by its ``comp:`` label, conditional, so an unchanged one is free),
with the competition and stage the reactor remembers for each issue and its recorded
"blocked by" links. Nothing here is written: the neighbours' issues belong to their own
competition's turn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from gidgethub.abc import GitHubAPI

from reactor.core.rules.cycles import body_dependencies
from reactor.core.view import CompetitionView, IssueSnapshot, Repo
from reactor.shell import reads
from reactor.shell.context import Context
from reactor.store import memory

MAX_COMPETITIONS = 4  # other competitions read to judge one burst's cycles


async def with_neighbours(ctx: Context, gh: GitHubAPI, view: CompetitionView, *,
                          repo: Repo) -> CompetitionView:
    """``view`` with the issues of the competitions its dependencies reach (see above)."""
    seen = {view.comp}
    known = {i.number for i in view.issues}
    native = dict(view.native)
    competitions, stages = dict(view.competitions), dict(view.stages)
    found: list[IssueSnapshot] = []
    reached = _reached(view.issues, native) - known
    while reached and len(seen) <= MAX_COMPETITIONS:
        recalled = await memory.recall(ctx.redis, repo.id, sorted(reached))
        comps = sorted({r.comp for r in recalled.values() if r.comp and r.comp not in seen})
        added: list[IssueSnapshot] = []
        for comp in comps[:MAX_COMPETITIONS + 1 - len(seen)]:
            seen.add(comp)
            added += [i for i in await reads.competition_issues(gh, repo, comp, ())
                      if i.number not in known]
        if not added:
            break
        numbers = [i.number for i in added]
        known.update(numbers)
        for number, r in (await memory.recall(ctx.redis, repo.id, numbers)).items():
            competitions.update({number: r.comp} if r.comp else {})
            stages.update({number: r.stage} if r.stage else {})
        native.update(await memory.dependencies(ctx.redis, repo.id, numbers))
        found += added
        reached = _reached(added, native) - known
    if not found:
        return view
    return replace(view, neighbours=tuple(found), native=native, competitions=competitions,
                   stages=stages)


def _reached(issues: Iterable[IssueSnapshot], native: Mapping[int, frozenset[int]]
             ) -> set[int]:
    """The issues ``issues`` wait for, by a "blocked by" link or a body reference."""
    return {n for i in issues for n in (*native.get(i.number, ()), *body_dependencies(i.body))}
