"""What the dashboard draws of one repository, bounded, and what it leaves out.

One tenant's data must not make the page (or the web process that draws it) slow for
everyone (SPEC §6), so a repository's issues are grouped once, by competition and stage, and
the drawing is capped:

- the grid: :data:`COMPETITIONS` competitions (those with the newest issues), :data:`COLUMNS`
  stages (the configured ones first) and :data:`PER_CELL` issues per cell (those that want
  attention first: error, timeout, running, starting, idle, then completed, then closed
  ones; newest first);
- the dependency picture: :data:`GRAPH_NODES` issues (those in a cycle first, then the
  grid's in its order) and :data:`GRAPH_EDGES` lines between them.

Everything left out is counted, for the page to say so. Which issues are in a cycle is found
on the whole repository, not only on what is drawn: R7's graph (:mod:`reactor.core.rules.cycles`:
each issue waits for every issue of the nearest earlier stage with issues in its
competition, and for the issues it is recorded as "blocked by") has up to (n/2)² stage edges,
so here each such fan of edges goes through one node per (competition, stage), which keeps
the graph linear in the issues and every cycle a cycle.

Pure: the caller passes what it read; nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING

import networkx as nx

from reactor.ops import svg

if TYPE_CHECKING:
    from reactor.store.memory import Recalled

COMPETITIONS = 12  # grid rows per repository
COLUMNS = 10  # grid columns (stages) per repository
PER_CELL = 12  # issues listed per grid cell
GRAPH_NODES = 48  # issues in the dependency picture
GRAPH_EDGES = 300  # lines in it
_ATTENTION = ("error", "timeout", "running", "starting", "idle")  # then any other, then completed

Groups = dict[str, dict[str, list[int]]]  # competition → stage → issue numbers


def group(issues: Mapping[int, Recalled]) -> Groups:
    """The issues by competition, then stage, in one pass."""
    groups: Groups = {}
    for number, recalled in issues.items():
        groups.setdefault(recalled.comp or "", {}).setdefault(recalled.stage or "", []).append(
            number)
    return groups


@dataclass(frozen=True, slots=True)
class Cell:
    """The issues a grid cell lists (by number) and how many more it holds."""

    numbers: tuple[int, ...]
    more: int = 0


@dataclass(frozen=True, slots=True)
class Row:
    """A competition: a cell per drawn stage; ``elsewhere`` issues are in stages not drawn."""

    comp: str
    cells: tuple[Cell, ...]
    elsewhere: int = 0


@dataclass(frozen=True)
class Grid:
    """Competitions × stages as drawn, and what is left out of it."""

    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    comps_left: int = 0  # competitions not drawn
    issues_left: int = 0  # their issues
    stages_left: int = 0  # stages of the drawn competitions that have no column


def _urgency(issues: Mapping[int, Recalled], closed: Mapping[int, str]
             ) -> Callable[[int], tuple[int, int]]:
    def key(number: int) -> tuple[int, int]:
        status = issues[number].status or ""
        rank = _ATTENTION.index(status) if status in _ATTENTION else (
            len(_ATTENTION) + (status == "completed"))
        return rank + (number in closed) * (len(_ATTENTION) + 2), -number
    return key


def grid(issues: Mapping[int, Recalled], groups: Groups, order: Sequence[str], *,
         closed: Mapping[int, str] | None = None) -> Grid:
    """The grid of ``groups`` (see the module docstring for what it keeps); ``closed``: the
    issues known to be closed (they come last in their cells)."""
    comps = sorted(groups, key=lambda c: -max(chain.from_iterable(groups[c].values())))
    chosen = sorted(comps[:COMPETITIONS])
    used = {stage for comp in chosen for stage in groups[comp]}
    extra = sorted(used - set(order))
    columns = (*order, *extra)[:COLUMNS]
    urgent = _urgency(issues, closed or {})
    rows = []
    for comp in chosen:
        cells = []
        for stage in columns:
            numbers = groups[comp].get(stage, [])
            picked = sorted(numbers, key=urgent)[:PER_CELL]
            cells.append(Cell(tuple(sorted(picked)), len(numbers) - len(picked)))
        elsewhere = sum(len(v) for s, v in groups[comp].items() if s not in columns)
        rows.append(Row(comp, tuple(cells), elsewhere))
    left = comps[COMPETITIONS:]
    return Grid(columns, tuple(rows), len(left),
                sum(len(v) for c in left for v in groups[c].values()),
                len(used - set(columns)))


def earlier_stages(groups: Groups, order: Sequence[str]) -> dict[tuple[str, str], str]:
    """(competition, stage) → the nearest earlier configured stage with issues in that
    competition: the stage R7 makes the stage's issues wait for."""
    found = {}
    for comp, stages in groups.items():
        last = None
        for stage in order:
            if last is not None:
                found[comp, stage] = last
            if stages.get(stage):
                last = stage
    return found


def cyclic(issues: Mapping[int, Recalled], groups: Groups, order: Sequence[str],
           native: Mapping[int, frozenset[int]]) -> frozenset[int]:
    """Every issue a cycle of R7's graph runs through, found in time linear in the issues
    and the recorded links: each issue waits for one hub per (competition, stage), which
    waits for that stage's issues. A cycle through a hub enters it from a later stage and
    leaves to an earlier one, so it holds two issues at least: no cycle is made or lost."""
    earlier = earlier_stages(groups, order)
    g = nx.DiGraph()
    hubs = set()
    for number, recalled in issues.items():
        g.add_node(number)
        comp = recalled.comp or ""
        waited = earlier.get((comp, recalled.stage or ""))
        if waited is not None:
            hubs.add((comp, waited))
            g.add_edge(number, ("hub", comp, waited))
        g.add_edges_from((number, v) for v in native.get(number, ()) if v != number
                         and v in issues)
    for comp, stage in hubs:
        g.add_edges_from((("hub", comp, stage), v) for v in groups[comp][stage])
    return frozenset(n for part in nx.strongly_connected_components(g) if len(part) > 1
                     for n in part if isinstance(n, int))


@dataclass(frozen=True)
class Picture:
    """The dependency picture's issues and lines, and how many of each are left out."""

    nodes: tuple[svg.Node, ...]
    edges: tuple[svg.Edge, ...]
    nodes_left: int = 0
    edges_left: int = 0


def picture(issues: Mapping[int, Recalled], groups: Groups, drawn: Grid, *,
            order: Sequence[str], native: Mapping[int, frozenset[int]],
            link: Callable[[int], str | None], closed: Mapping[int, str] | None = None
            ) -> Picture:
    """The picture's issues (those in a cycle first, then the grid's) and R7's edges
    between them, with the cycles of the whole repository marked and the issues known to
    be ``closed`` (how) drawn so."""
    closed = closed or {}
    in_cycle = cyclic(issues, groups, order, native)
    listed = (n for row in drawn.rows for cell in row.cells for n in cell.numbers)
    chosen = list(dict.fromkeys(chain(sorted(in_cycle), listed)))[:GRAPH_NODES]
    earlier = earlier_stages(groups, order)
    edges = list(_edges(issues, chosen, earlier, native))
    nodes = tuple(svg.Node(n, issues[n].stage or "?", issues[n].comp or "?",
                           _status(issues[n].status), n in in_cycle, link(n), closed.get(n))
                  for n in chosen)
    return Picture(nodes, tuple(edges[:GRAPH_EDGES]), len(issues) - len(chosen),
                   max(0, len(edges) - GRAPH_EDGES))


def _edges(issues: Mapping[int, Recalled], chosen: Sequence[int],
           earlier: Mapping[tuple[str, str], str],
           native: Mapping[int, frozenset[int]]) -> list[svg.Edge]:
    """R7's edges between ``chosen`` issues: ``native`` first where both hold."""
    among = set(chosen)
    found = []
    for u in sorted(among):
        recalled = issues[u]
        stage = earlier.get((recalled.comp or "", recalled.stage or ""))
        waits = {v: ["native"] for v in native.get(u, ()) if v in among and v != u}
        for v in among:
            if stage is not None and issues[v].comp == recalled.comp and issues[v].stage == stage:
                waits.setdefault(v, []).append("stage")
        found += [svg.Edge(u, v, tuple(waits[v])) for v in sorted(waits)]
    return found


def _status(status: str | None) -> str | None:
    return status if status in svg.STATUS_COLOURS else None
