"""``reactor graph --repo O/R [--format dot|svg|json]``: the dependency graph of a repository's
competitions, as rule R7 sees it (:mod:`reactor.core.rules.cycles`).

Everything is read afresh through the App: the competitions from the repository's ``comp:``
labels, each competition's issues with one listing (:func:`reactor.shell.reads.competition_issues`),
GitHub's native "blocked by" links of each open agent issue, and ``.github/reactor.yml`` for
the stage order. The status of each issue is the one the reactor accepted (its memory in
Redis), else the one its labels show, as the rules judge it. An edge ``u -> v`` means *u waits
for v*; issues in a cycle are drawn red.

``dot`` prints Graphviz text, ``json`` one JSON document (nodes and edges), ``svg`` the
picture the dashboard shows (:mod:`reactor.ops.svg`: stages as columns, competitions as lanes,
each issue linked to GitHub), drawn here without Graphviz.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from reactor.core.terminal import json_document, printable
from reactor.ops.commands.status import app_context, locate_repo, progress, repo_name
from reactor.process.settings import Settings

if TYPE_CHECKING:  # the GitHub client and networkx are imported when the command runs
    import networkx as nx
    from gidgethub.abc import GitHubAPI

    from reactor.core.view import IssueSnapshot, Repo

FORMATS = ("dot", "svg", "json")


@dataclass(frozen=True)
class Drawing:
    """What the picture needs: the repository (as GitHub spells it, and its web address),
    its stage order and the dependency graph."""

    repo: str
    html_url: str | None
    stages: tuple[str, ...]
    graph: nx.DiGraph

    def link(self, number: int) -> str | None:
        """The issue's page on GitHub (None when the repository's address is unknown)."""
        return f"{self.html_url}/issues/{number}" if self.html_url else None


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``graph`` to ``reactor``'s subcommands."""
    about = "print the dependency graph of a repository's competitions (rule R7)"
    parser = subparsers.add_parser("graph", help=about, description=about)
    parser.add_argument("--repo", type=repo_name, metavar="O/R", required=True,
                        help="the repository")
    parser.add_argument("--format", choices=FORMATS, default="dot",
                        help="dot (Graphviz text, the default), svg (the dashboard's "
                             "picture, drawn without Graphviz) or json")
    parser.set_defaults(run=graph)
    return parser


def graph(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``reactor graph`` (the parser's ``run``)."""
    settings.require_app()
    settings.require_redis_url()
    drawing = asyncio.run(_read(args.repo, settings))
    if args.format == "json":
        print(json_document(orjson.dumps({"repo": drawing.repo, **_to_json(drawing)}).decode()))
    elif args.format == "dot":
        sys.stdout.write(dot_text(drawing))
    else:
        print(svg_text(drawing))
    return 0


def dot_text(drawing: Drawing) -> str:
    """The graph as DOT, each line terminal-safe (competition and stage names are user text)."""
    from reactor.core.rules.cycles import to_dot

    return "".join(f"{printable(line)}\n" for line in to_dot(drawing.graph).splitlines())


def svg_text(drawing: Drawing) -> str:
    """The dashboard's picture of the graph, as one SVG document. Names are XML-escaped by
    :mod:`reactor.ops.svg`; control characters, which XML does not allow and a terminal would
    obey, are spelled out."""
    from reactor.ops import svg

    nodes, edges = svg.from_graph_json(_to_json(drawing), drawing.link)
    return printable(svg.render(svg.layout(nodes, edges, drawing.stages)))


def _to_json(drawing: Drawing) -> dict[str, Any]:
    from reactor.core.rules.cycles import to_json

    return dict(to_json(drawing.graph))


async def _read(full_name: str, settings: Settings) -> Drawing:
    """The repository's dependency graph, read afresh."""
    from reactor.core.labels import Status
    from reactor.core.rules.cycles import Deps
    from reactor.shell import repoconfig
    from reactor.store import memory

    async with app_context(settings) as ctx:
        gh, repo, html_url = await locate_repo(ctx, full_name)
        config, _ = await repoconfig.load(ctx.redis, gh, repo)
        issues = await _issues(gh, repo, await _competitions(gh, repo))
        native = await _native(gh, repo, issues)
        recalled = await memory.recall(ctx.redis, repo.id, [i.number for i in issues])
        known = {s.value for s in Status}
        accepted = {n: Status(r.status) for n, r in recalled.items() if r.status in known}
    deps = Deps.build(issues, config, native=native, accepted=accepted)
    return Drawing(repo.full_name, html_url, config.stages, deps.graph)


async def _competitions(gh: GitHubAPI, repo: Repo) -> list[str]:
    """The competitions named by the repository's ``comp:`` labels (folded, sorted)."""
    from reactor.core.labels import LabelKind, parse_label

    found = set()
    url = f"/repos/{repo.full_name}/labels{{?per_page}}"
    async for item in gh.getiter(url, {"per_page": 100}):
        label = parse_label(str(item.get("name", "")))
        if label.kind is LabelKind.COMP:
            found.add(label.value)
    return sorted(found)


async def _issues(gh: GitHubAPI, repo: Repo, comps: list[str]) -> list[IssueSnapshot]:
    """Every issue of ``comps``, open and closed, each once, read afresh."""
    from reactor.shell import reads

    found: dict[int, IssueSnapshot] = {}
    for index, comp in enumerate(comps, 1):
        progress(f"graph: {repo.full_name}: reading competition {comp} ({index}/{len(comps)})")
        for issue in await reads.competition_issues(gh, repo, comp, ()):
            found[issue.number] = issue
    return [found[n] for n in sorted(found)]


async def _native(gh: GitHubAPI, repo: Repo, issues: Iterable[IssueSnapshot]
                  ) -> dict[int, frozenset[int]]:
    """GitHub's "blocked by" lists of the open agent issues (closed ones wait for nothing),
    as the periodic sweep reads them."""
    from reactor.shell import reads

    waiting = [i.number for i in issues if i.is_open and i.stage is not None]
    progress(f"graph: {repo.full_name}: reading the blocked-by links of {len(waiting)} "
             "open agent issues")
    return {n: await reads.blocked_by(gh, repo, n) for n in waiting}
