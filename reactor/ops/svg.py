"""The dependency graph as a picture: a small SVG layout, drawn server-side, no library.

Stages are columns (in the repository's stage order), competitions are horizontal lanes,
issues are boxes coloured by status (a closed one grey and dashed, saying how it was closed),
and each dependency is a line from the issue waited for to the issue that waits (arrowhead at
the waiter): dotted for stage order, solid for GitHub's "blocked by" links, dashed for a
body's ``depends on #N``. Issues in a cycle, and the lines between them, are red.
:func:`layout` is pure geometry (tested on its own); :func:`render` writes the SVG, escaping
every name, so a competition called ``<script>`` is only text.

The input is :func:`reactor.core.rules.cycles.to_json`'s shape, read by :func:`from_graph_json`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

BOX_W, BOX_H = 118.0, 38.0
COL_W = 168.0  # a column: a box and the room its lines need
ROW_GAP, LANE_GAP = 12.0, 20.0
GUTTER_W = 112.0  # the competitions' names, left of the first column
MARGIN, HEADER_H = 12.0, 26.0
NAME_CHARS = 16  # a stage or competition name is cut to this many characters

# (fill, stroke) per status; the dashboard's status pills use the same colours.
STATUS_COLOURS: Mapping[str, tuple[str, str]] = {
    "idle": ("#eef0f3", "#8a94a3"),
    "starting": ("#fff4d6", "#c98a00"),
    "running": ("#dcecff", "#1f6feb"),
    "completed": ("#dcf5e3", "#1a7f37"),
    "error": ("#ffe1e1", "#cf222e"),
    "timeout": ("#f1e4ff", "#8250df"),
}
UNKNOWN_COLOURS = ("#ffffff", "#57606a")
CLOSED_COLOURS = ("#f6f8fa", "#8c959f")  # drawn dashed
_CLOSED_HOW = {"completed": "completed", "not_planned": "not planned", "duplicate": "duplicate"}
CYCLE = "#cf222e"
LEGEND = ("An arrow points at the issue that waits. Dotted: stage order; solid: GitHub's "
          "“blocked by”; red: a cycle.")
_DASHES = {"stage": "2 4", "body": "7 4", "native": ""}


@dataclass(frozen=True, slots=True)
class Node:
    """One issue: ``status`` None when the reactor knows none; ``href`` links the box;
    ``closed`` how the issue was closed (``completed``, ``not_planned``, ``duplicate``, or
    "" when not known), None while it is open."""

    number: int
    stage: str
    comp: str
    status: str | None
    in_cycle: bool = False
    href: str | None = None
    closed: str | None = None


def closed_text(how: str) -> str:
    """``closed · duplicate``: a closed issue as the page shows it."""
    said = _CLOSED_HOW.get(how)
    return f"closed · {said}" if said else "closed"


@dataclass(frozen=True, slots=True)
class Edge:
    """``waiter`` waits for ``waited``; ``sources`` say why (stage, native, body)."""

    waiter: int
    waited: int
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Picture:
    """Where everything goes: boxes by issue number (top-left corners), the column headers'
    and lane labels' anchor points, and the canvas size."""

    width: float
    height: float
    columns: tuple[tuple[str, float], ...]  # stage, x of the column's centre
    lanes: tuple[tuple[str, float], ...]  # competition, y of the lane's top
    boxes: Mapping[int, tuple[float, float]]
    nodes: Mapping[int, Node]
    edges: tuple[Edge, ...]


def from_graph_json(data: Mapping[str, Sequence[Mapping[str, Any]]],
                    href: Callable[[int], str | None]) -> tuple[list[Node], list[Edge]]:
    """Nodes and edges from ``cycles.to_json`` output; ``href`` gives each issue's link."""
    nodes = [Node(int(n["number"]), str(n["stage"] or "?"), str(n["comp"] or "?"),
                  n["status"], bool(n["in_cycle"]), href(int(n["number"])))
             for n in data["nodes"]]
    edges = [Edge(int(e["from"]), int(e["to"]), tuple(e["sources"])) for e in data["edges"]]
    return nodes, edges


def _columns(nodes: Iterable[Node], stages: Sequence[str]) -> list[str]:
    """The configured stages in order, then any other stage an issue names."""
    extra = sorted({n.stage for n in nodes} - set(stages))
    return [*stages, *extra]


def layout(nodes: Sequence[Node], edges: Sequence[Edge], stages: Sequence[str]) -> Picture:
    """Place each issue in its stage's column and its competition's lane, stacked by number
    (the nodes are grouped by lane once: the time grows with the nodes, not lanes × nodes)."""
    columns = _columns(nodes, stages)
    col_of = {stage: i for i, stage in enumerate(columns)}
    boxes: dict[int, tuple[float, float]] = {}
    lanes: list[tuple[str, float]] = []
    top = MARGIN + HEADER_H
    by_lane: dict[str, list[Node]] = {}
    for node in sorted(nodes, key=lambda n: n.number):
        by_lane.setdefault(node.comp, []).append(node)
    for comp in sorted(by_lane):
        lanes.append((comp, top))
        stacked: dict[str, int] = {}
        for node in by_lane[comp]:
            row = stacked[node.stage] = stacked.get(node.stage, -1) + 1
            x = MARGIN + GUTTER_W + col_of[node.stage] * COL_W + (COL_W - BOX_W) / 2
            boxes[node.number] = (x, top + row * (BOX_H + ROW_GAP))
        rows = max(stacked.values(), default=0) + 1
        top += rows * (BOX_H + ROW_GAP) - ROW_GAP + LANE_GAP
    centres = tuple((s, MARGIN + GUTTER_W + (i + 0.5) * COL_W) for i, s in enumerate(columns))
    known = [e for e in edges if e.waiter in boxes and e.waited in boxes]
    return Picture(width=2 * MARGIN + GUTTER_W + len(columns) * COL_W,
                   height=top - LANE_GAP + MARGIN, columns=centres, lanes=tuple(lanes),
                   boxes=boxes, nodes={n.number: n for n in nodes}, edges=tuple(known))


def edge_path(picture: Picture, edge: Edge) -> str:
    """The line from the issue waited for to the waiter: right side to left side when the
    waiter stands further right, else around the right (same column) or leftwards."""
    (wx, wy), (vx, vy) = picture.boxes[edge.waiter], picture.boxes[edge.waited]
    sy, ey = vy + BOX_H / 2, wy + BOX_H / 2
    if vx < wx:
        sx, ex, out, back = vx + BOX_W, wx, 40.0, -40.0
    elif vx == wx:
        sx, ex, out, back = vx + BOX_W, wx + BOX_W, 36.0, 36.0
    else:
        sx, ex, out, back = vx, wx + BOX_W, -40.0, 40.0
    return (f"M{sx:.1f},{sy:.1f} C{sx + out:.1f},{sy:.1f} {ex + back:.1f},{ey:.1f} "
            f"{ex:.1f},{ey:.1f}")


def _cut(text: str) -> str:
    return text if len(text) <= NAME_CHARS else text[: NAME_CHARS - 1] + "…"


def _box(picture: Picture, number: int) -> str:
    node = picture.nodes[number]
    x, y = picture.boxes[number]
    fill, stroke = STATUS_COLOURS.get(node.status or "", UNKNOWN_COLOURS)
    width, dash = "1.2", ""
    status = node.status or "unknown"
    if node.closed is not None:
        (fill, stroke), dash = CLOSED_COLOURS, ' stroke-dasharray="4 3"'
        status = closed_text(node.closed)
    if node.in_cycle:
        stroke, width = CYCLE, "2.6"
    shape = (f'<rect class="issue" x="{x:.1f}" y="{y:.1f}" width="{BOX_W:.0f}" '
             f'height="{BOX_H:.0f}" rx="6" fill="{fill}" stroke="{stroke}" '
             f'stroke-width="{width}"{dash}/>'
             f'<text x="{x + 8:.1f}" y="{y + 16:.1f}" class="g-num">#{number}</text>'
             f'<text x="{x + 8:.1f}" y="{y + 31:.1f}" class="g-st">{escape(status)}</text>'
             f"<title>#{number} · {escape(node.comp)} / {escape(node.stage)} · "
             f"{escape(status)}</title>")
    if node.href is None:
        return f"<g>{shape}</g>"
    return f'<a href="{escape(node.href)}" target="_blank" rel="noreferrer">{shape}</a>'


def _line(picture: Picture, edge: Edge, arrow: str) -> str:
    cyclic = picture.nodes[edge.waiter].in_cycle and picture.nodes[edge.waited].in_cycle
    kind = next((s for s in ("native", "body", "stage") if s in edge.sources), "stage")
    dash = f' stroke-dasharray="{_DASHES[kind]}"' if _DASHES[kind] else ""
    colour = CYCLE if cyclic else ("#24292f" if kind != "stage" else "#9aa4b2")
    return (f'<path class="dep {kind}" d="{edge_path(picture, edge)}" fill="none" '
            f'stroke="{colour}" stroke-width="1.4"{dash} marker-end="url(#{arrow})"/>')


def render(picture: Picture, *, ident: str = "graph") -> str:
    """The SVG element (inline in the page: no external reference, no script); ``ident``
    keeps its arrowhead's id apart from other pictures' on the same page."""
    arrow = f"arrow-{escape(ident)}"
    head = [f'<text x="{x:.1f}" y="{MARGIN + 14:.1f}" class="g-stage" text-anchor="middle">'
            f"{escape(_cut(stage))}</text>" for stage, x in picture.columns]
    lanes = [f'<text x="{MARGIN:.1f}" y="{y + 16:.1f}" class="g-comp">{escape(_cut(comp))}</text>'
             for comp, y in picture.lanes]
    return "".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{picture.width:.0f}" '
        f'height="{picture.height:.0f}" viewBox="0 0 {picture.width:.0f} {picture.height:.0f}" '
        'role="img" aria-label="dependency graph">',
        f'<defs><marker id="{arrow}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#57606a"/></marker></defs>',
        "<style>.g-num{font:600 13px sans-serif}.g-st{font:11px sans-serif;fill:#444}"
        ".g-stage{font:600 12px sans-serif;fill:#333}.g-comp{font:600 12px sans-serif;fill:#555}"
        "</style>",
        *head, *lanes,
        *(_line(picture, e, arrow) for e in picture.edges),
        *(_box(picture, n) for n in sorted(picture.boxes)),
        "</svg>",
    ])
