"""R7 cycles: the dependencies between agent issues form no cycle.

Nodes are the agent issues of one competition view still in play (not closed as not planned
or duplicate), and those of the other competitions its dependencies reach (its neighbours),
so a cycle across competitions is seen like any other; only the competition's own issues are
acted on (:attr:`Deps.own`): the others belong to their own competition's turn. An edge
``u → v`` means *u waits for v*; its ``sources`` say why: ``native`` (GitHub lists v among
u's "blocked by" issues,
https://docs.github.com/en/rest/issues/issue-dependencies), ``body`` (u's body says
``depends on #v`` or ``blocked by #v``) or ``stage`` (each issue of stage k waits for every
issue of the nearest earlier stage with issues in its competition, so stages wait
transitively on all earlier ones, as R2 has it). Edges leaving the view, and an issue naming
itself, are ignored. Stage edges only point back, so a cycle through one is an earlier stage
waiting on a later one — a reverse dependency — refused like any cycle.

:func:`refuse` labels the issue whose change closed a cycle ``reactor:blocked``, with one
comment naming it; :func:`sweep` (periodic) breaks a cycle that formed anyway at its
longest-waiting issue — ``status:timeout``, or ``reactor:blocked`` where the lifecycle forbids
that — leaving cycles through a ``reactor:blocked`` or ``timeout`` issue alone (reported or
broken already). Both lift ``reactor:blocked`` where no cycle runs any more.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from operator import attrgetter
from types import MappingProxyType
from typing import Any

import networkx as nx

from reactor.core import comments
from reactor.core.actions import Action, AddLabel, Decision, Note, RemoveLabel, Rule
from reactor.core.config import RepoConfig
from reactor.core.labels import LabelKind, ReactorLabel, Status
from reactor.core.transitions import is_allowed
from reactor.core.view import IssueSnapshot

_REFERENCE = re.compile(r"\b(?:depends\s+on|blocked\s+by)\s*:?\s*#(\d{1,10})\b", re.IGNORECASE)
BLOCKED = ReactorLabel.BLOCKED.value
_NOTHING: Mapping[Any, Any] = MappingProxyType({})
Cycle = tuple[int, ...]  # members in order; the last waits for the first
_STAGE: Callable[[IssueSnapshot], str | None] = attrgetter("stage")
_COMP: Callable[[IssueSnapshot], str | None] = attrgetter("comp")


class Source(StrEnum):
    """Why one issue waits for another."""

    NATIVE = "native"
    BODY = "body"
    STAGE = "stage"


def body_references(body: str) -> dict[int, str]:
    """Issues ``body`` names as ``depends on #N`` / ``blocked by #N`` (any case, several per
    body), each with the first phrase that names it, for quoting."""
    found: dict[int, str] = {}
    for match in _REFERENCE.finditer(body):
        found.setdefault(int(match.group(1)), match.group(0))
    return found


def body_dependencies(body: str) -> frozenset[int]:
    """The issue numbers ``body`` says its issue depends on or is blocked by."""
    return frozenset(body_references(body))


@dataclass(frozen=True, slots=True)
class Trigger:
    """A change that may close a cycle: ``issue`` now waits for ``waits_for``.

    ``waits_for`` None means the change's new edges are unknown (a body edit without the old
    body, an issue just given its ``agent:`` label): any cycle through ``issue`` counts, unless
    it is already ``reactor:blocked``. ``key`` is the change's delivery id."""

    issue: int
    actor: str
    key: str
    waits_for: frozenset[int] | None = None


def body_trigger(issue: int, *, actor: str, key: str, before: str | None,
                 after: str) -> Trigger:
    """An ``issues.opened``/``edited`` change: its new edges are the references ``after``
    adds to ``before`` (``changes.body.from`` of the webhook; ``""`` for an opened issue)."""
    if before is None:
        return Trigger(issue, actor, key)
    return Trigger(issue, actor, key, body_dependencies(after) - body_dependencies(before))


def dependency_trigger(action: str, *, blocked: int, blocking: int, actor: str,
                       key: str) -> Trigger | None:
    """An ``issue_dependencies`` webhook: ``blocked_by_added`` makes ``blocked`` wait for
    ``blocking``. GitHub sends ``blocking_added`` for the same edge to the blocking issue's
    repository, so within one repository it is a twin (and across repositories the edge is
    not in the graph): only ``blocked_by_added`` triggers. Removals trigger nothing; every
    evaluation lifts what no longer holds."""
    if action != "blocked_by_added":
        return None
    return Trigger(blocked, actor, key, frozenset({blocking}))


@dataclass(frozen=True)
class Deps:
    """What R7 reads of one competition: its agent issues (by number), their stage,
    competition and status, GitHub's native "blocked by" lists, and the stage order."""

    issues: Mapping[int, IssueSnapshot]
    stages: Mapping[int, str]
    comps: Mapping[int, str]
    statuses: Mapping[int, Status]
    native: Mapping[int, frozenset[int]]
    order: tuple[str, ...]
    own: frozenset[int] | None = None  # the issues R7 may act on (None: every node)

    @classmethod
    def build(cls, issues: Iterable[IssueSnapshot], config: RepoConfig, *,
              native: Mapping[int, frozenset[int]] = _NOTHING,
              accepted: Mapping[int, Status] = _NOTHING,
              stage_of: Callable[[IssueSnapshot], str | None] = _STAGE,
              comp_of: Callable[[IssueSnapshot], str | None] = _COMP,
              neighbours: Iterable[IssueSnapshot] = ()) -> Deps:
        """Nodes are the issues with a stage that are still in play, ``neighbours`` (other
        competitions' issues, acted on never) included. The status is the one the reactor
        accepted, else the one read; ``stage_of``/``comp_of`` default to the labels (the
        engine passes :class:`~reactor.core.rules._base.Situation`'s). ``native`` holds this
        repository's numbers only: another repository's #5 is not this one's."""
        issues = tuple(issues)
        others = tuple(neighbours)
        nodes = {i.number: i for i in sorted((*issues, *others), key=lambda i: i.number)
                 if not i.dismissed and stage_of(i) is not None}
        stages = {n: s for n, i in nodes.items() if (s := stage_of(i)) is not None}
        comps = {n: c for n, i in nodes.items() if (c := comp_of(i)) is not None}
        statuses = {n: s for n, i in nodes.items() if (s := accepted.get(n) or i.status)}
        own = frozenset(i.number for i in issues) if others else None
        return cls(MappingProxyType(nodes), MappingProxyType(stages), MappingProxyType(comps),
                   MappingProxyType(statuses), native, config.stages, own)

    def acts_on(self, number: int) -> bool:
        """Whether R7 may write to the issue: the competition's own, not a neighbour's."""
        return self.own is None or number in self.own

    def blocked(self, number: int) -> tuple[str, ...]:
        """The exact ``reactor:blocked`` label names on the issue (none, usually one)."""
        return self.issues[number].tags.names(LabelKind.REACTOR, "blocked")

    def index(self, number: int) -> int | None:
        stage = self.stages.get(number)
        return self.order.index(stage) if stage in self.order else None

    @cached_property
    def graph(self) -> nx.DiGraph:
        """The dependency graph (see the module docstring), built once and shared: copy it
        before changing it."""
        g = nx.DiGraph()
        for n in self.issues:
            g.add_node(n, stage=self.stages.get(n), comp=self.comps.get(n),
                       status=self.statuses.get(n), blocked=bool(self.blocked(n)))
        for u, v, source, phrase in sorted(_edges(self)):
            if not g.has_edge(u, v):
                g.add_edge(u, v, sources=(), phrase="")
            g.edges[u, v]["sources"] += (source,)
            g.edges[u, v]["phrase"] = g.edges[u, v]["phrase"] or phrase
        return g


def _edges(deps: Deps) -> Iterator[tuple[int, int, Source, str]]:
    for u, issue in deps.issues.items():
        found = [(v, Source.NATIVE, "") for v in deps.native.get(u, ())]
        found += [(v, Source.BODY, p) for v, p in body_references(issue.body).items()]
        found += [(v, Source.STAGE, "") for v in _earlier(deps, u)]
        yield from ((u, v, s, p) for v, s, p in found if v != u and v in deps.issues)


def _earlier(deps: Deps, number: int) -> tuple[int, ...]:
    """The issues of the nearest earlier stage with any, in ``number``'s competition."""
    index, comp = deps.index(number), deps.comps.get(number)
    for stage in reversed(deps.order[: index or 0]) if comp is not None else ():
        found = tuple(n for n in deps.issues
                      if deps.comps.get(n) == comp and deps.stages.get(n) == stage)
        if found:
            return found
    return ()


def in_cycles(g: nx.DiGraph) -> frozenset[int]:
    """Every issue some cycle runs through (a member of a strongly connected component of
    two or more: the graph has no self-loops)."""
    return frozenset(n for part in nx.strongly_connected_components(g) if len(part) > 1
                     for n in part)


def cycle_through(g: nx.DiGraph, number: int) -> Cycle | None:
    """A shortest cycle through ``number``, starting there; ties go to the lowest next issue."""
    back: dict[int, int] = nx.single_source_shortest_path_length(g.reverse(copy=False), number)
    nexts = sorted((back[s], s) for s in g.successors(number) if s in back)
    return _closing(g, number, nexts[0][1]) if nexts else None


def _closing(g: nx.DiGraph, u: int, v: int) -> Cycle | None:
    """The cycle the edge ``u → v`` closes (a shortest path back from v), or None."""
    if not g.has_edge(u, v) or not nx.has_path(g, v, u):
        return None
    path: list[int] = nx.shortest_path(g, v, u)
    return (u, *path[:-1])


def _pairs(members: Cycle) -> Iterator[tuple[int, int]]:
    return zip(members, (*members[1:], members[0]), strict=True)


def refuse(deps: Deps, triggers: Sequence[Trigger]) -> Decision:
    """R7 on a burst's changes: each issue whose change closed a cycle (or a reverse
    dependency) is refused — ``reactor:blocked`` and one comment — and labels no cycle
    justifies any more are lifted."""
    actions: list[Action] = []
    notes: list[Note] = []
    refused: set[int] = set()
    for trigger in triggers:
        found = None if trigger.issue in refused else closes(deps, trigger)
        if found is not None:
            refused.add(trigger.issue)
            actions += _refusal(deps, trigger, found)
            notes.append(Note(Rule.R7, trigger.issue, f"refused: closes {_text(found)}"))
    return Decision(actions=(*actions, *_lifts(deps)), notes=tuple(notes))


def closes(deps: Deps, trigger: Trigger) -> Cycle | None:
    """The cycle ``trigger``'s change closed, starting at its issue (a shortest one), or None."""
    g, issue = deps.graph, trigger.issue
    if issue not in g:
        return None
    if trigger.waits_for is None:
        return None if deps.blocked(issue) else cycle_through(g, issue)
    found = [c for v in sorted(trigger.waits_for) if (c := _closing(g, issue, v))]
    return min(found, key=len, default=None)


def _refusal(deps: Deps, trigger: Trigger, members: Cycle) -> list[Action]:
    issue = trigger.issue
    label = [] if deps.blocked(issue) else [
        AddLabel(issue, BLOCKED, Rule.R7, f"closes the dependency cycle {_text(members)}")]
    return [*label, comments.cycle(
        issue=issue, members=members, links=_links(deps, members),
        reverse=_reverse(deps, members), actor=trigger.actor, key=trigger.key)]


def _lifts(deps: Deps) -> list[Action]:
    cyclic = in_cycles(deps.graph)
    return [RemoveLabel(n, name, Rule.R7, f"no dependency cycle runs through #{n} any more")
            for n in deps.issues if n not in cyclic and deps.acts_on(n)
            for name in deps.blocked(n)]


@dataclass(frozen=True, slots=True)
class Break:
    """The periodic check's choice: ``issue`` (waiting since ``since``) breaks ``members``."""

    issue: int
    members: Cycle
    since: datetime

    @property
    def key(self) -> str:
        """Stable across retries of one check; new when the cycle forms again later."""
        return f"cycle:{'-'.join(map(str, sorted(self.members)))}:{self.since.isoformat()}"


def sweep(deps: Deps, *, entered: Mapping[int, datetime]) -> Decision:
    """The periodic R7 check: break every cycle not yet reported or broken, each at its
    longest-waiting issue (``entered``: when each issue entered its status; an issue with no
    record counts from its creation; ties go to the lowest number), and lift stale labels."""
    actions: list[Action] = []
    accepted: dict[int, Status] = {}
    for chosen in breaks(deps, entered):
        status = deps.statuses.get(chosen.issue)
        moved = status is not None and is_allowed(status, Status.TIMEOUT)
        actions += _break_actions(deps, chosen, status, moved=moved)
        if moved:
            accepted[chosen.issue] = Status.TIMEOUT
    notes = tuple(Note(Rule.R7, n, f"cycle broken at #{n}") for n in accepted)
    return Decision(actions=(*actions, *_lifts(deps)), accepted=MappingProxyType(accepted),
                    notes=notes)


def breaks(deps: Deps, entered: Mapping[int, datetime]) -> list[Break]:
    """Greedy: take the live graph (no ``reactor:blocked`` or ``timeout`` issue); while it has
    a cycle, pick the longest-waiting issue the competition owns of the lowest-numbered knot
    (strongly connected component), name a shortest cycle through it, and take it out. A knot
    of neighbours only is their own competition's to break."""
    def since(n: int) -> datetime:
        return entered.get(n, deps.issues[n].created_at)

    live = nx.DiGraph(deps.graph.subgraph(n for n in deps.graph if not _settled(deps, n)))
    found = []
    while parts := [p for p in nx.strongly_connected_components(live) if len(p) > 1]:
        knot = min(parts, key=min)
        owned = [n for n in knot if deps.acts_on(n)]
        if not owned:
            live.remove_nodes_from(knot)
            continue
        chosen = min(owned, key=lambda n: (since(n), n))
        members = cycle_through(live, chosen)
        assert members is not None  # every member of a knot lies on a cycle
        found.append(Break(chosen, members, since(chosen)))
        live.remove_node(chosen)
    return found


def _settled(deps: Deps, number: int) -> bool:
    return bool(deps.blocked(number)) or deps.statuses.get(number) is Status.TIMEOUT


def _break_actions(deps: Deps, chosen: Break, status: Status | None, *,
                   moved: bool) -> list[Action]:
    n, reason = chosen.issue, f"breaks the dependency cycle {_text(chosen.members)}"
    if moved:
        labels: list[Action] = [RemoveLabel(n, item.name, Rule.R7, reason)
                                for item in deps.issues[n].tags.of(LabelKind.STATUS)]
        labels.append(AddLabel(n, Status.TIMEOUT.label, Rule.R7, reason))
    else:
        labels = [AddLabel(n, BLOCKED, Rule.R7, reason)]
    return [*labels, comments.cycle_broken(
        issue=n, members=chosen.members, links=_links(deps, chosen.members),
        reverse=_reverse(deps, chosen.members), status=_plain(status),
        since=chosen.since, moved=moved, key=chosen.key)]


def _text(members: Cycle) -> str:
    return " → ".join(f"#{n}" for n in (*members, members[0]))


def _links(deps: Deps, members: Cycle) -> list[str]:
    lines = []
    for u, v in _pairs(members):
        data = deps.graph.edges[u, v]
        order = ((deps.comps[u], deps.stages[u], deps.stages[v])
                 if Source.STAGE in data["sources"] else None)
        lines.append(comments.dependency_link(
            waiter=u, waited=v, native=Source.NATIVE in data["sources"],
            phrase=data["phrase"] or None, order=order))
    return lines


def _reverse(deps: Deps, members: Cycle) -> str | None:
    """The sentence for the cycle's first edge from an earlier stage to a later one of the
    same competition, if it has one."""
    for u, v in _pairs(members):
        iu, iv, comp = deps.index(u), deps.index(v), deps.comps.get(u)
        if iu is not None and iv is not None and iu < iv and comp == deps.comps.get(v):
            return comments.reverse_dependency(waiter=u, stage=deps.stages[u], waited=v,
                                               later=deps.stages[v], comp=comp or "")
    return None


def to_json(g: nx.DiGraph) -> dict[str, list[dict[str, Any]]]:
    """The graph as JSON-ready data (for ``reactor graph`` and the dashboard): nodes with
    stage, competition, status, ``blocked`` and ``in_cycle``; edges with their sources and
    the body phrase that made them."""
    cyclic = in_cycles(g)
    nodes = [{"number": n, "stage": g.nodes[n]["stage"], "comp": g.nodes[n]["comp"],
              "status": _plain(g.nodes[n]["status"]), "blocked": g.nodes[n]["blocked"],
              "in_cycle": n in cyclic} for n in sorted(g.nodes)]
    edges = [{"from": u, "to": v, "sources": [str(s) for s in g.edges[u, v]["sources"]],
              "phrase": g.edges[u, v]["phrase"]} for u, v in sorted(g.edges)]
    return {"nodes": nodes, "edges": edges}


_STYLES = {Source.NATIVE: "solid", Source.BODY: "dashed", Source.STAGE: "dotted"}


def to_dot(g: nx.DiGraph) -> str:
    """Graphviz DOT text: ``u -> v`` when u waits for v, drawn solid (native), dashed (body)
    or dotted (stage order only); issues in a cycle are red, ``reactor:blocked`` ones bold."""
    cyclic = in_cycles(g)
    lines = ["digraph dependencies {", "  rankdir=LR;", "  node [shape=box];"]
    for n in sorted(g.nodes):
        data = g.nodes[n]
        label = "\\n".join(_dot_text(part) for part in (
            f"#{n}", f"{data['comp'] or '?'} / {data['stage']}", _plain(data["status"]) or "?"))
        look = (' color="red"' if n in cyclic else "") + (" style=bold" if data["blocked"] else "")
        lines.append(f'  {n} [label="{label}"{look}];')
    for u, v in sorted(g.edges):
        sources = g.edges[u, v]["sources"]
        style = next(_STYLES[s] for s in Source if s in sources)  # the strongest source
        lines.append(f'  {u} -> {v} [label="{",".join(sources)}" style={style}];')
    return "\n".join([*lines, "}"]) + "\n"


def _plain(status: Status | None) -> str | None:
    return None if status is None else str(status)


def _dot_text(text: str) -> str:
    """User text (competition and stage names) made safe inside a DOT double-quoted string."""
    return " ".join(text.split()).replace("\\", "\\\\").replace('"', '\\"')
