"""The last hour as two small charts, drawn on the server as inline SVG (no script, nothing
loaded from elsewhere: the page's CSP allows neither). Pure.

- :func:`per_minute`: decisions per minute, a bar per minute stacked by kind (the colours of
  "Recent decisions": escalated, undone, problem, hand-off, routine);
- :func:`latencies`: each hand-off as a dot at its time, as high as its latency.

Both share one frame: the last hour left to right (UTC times under it), a zero line and the
scale's top. Every text is escaped; each bar and dot has a ``<title>`` saying its figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from html import escape

from reactor.ops.dashboard.pulse import HOUR, MINUTES, Latency
from reactor.ops.dashboard.recent import Kind

BAR_W, BAR_GAP = 7.0, 1.0
LEFT, RIGHT, TOP, BOTTOM = 44.0, 8.0, 10.0, 18.0
PLOT_H = 72.0
PLOT_W = MINUTES * (BAR_W + BAR_GAP)
WIDTH, HEIGHT = LEFT + PLOT_W + RIGHT, TOP + PLOT_H + BOTTOM
DOTS = 300  # hand-offs drawn: the newest
KIND_COLOURS: Mapping[Kind, str] = {
    Kind.ESCALATED: "#bc4c00", Kind.UNDONE: "#cf222e", Kind.PROBLEM: "#8250df",
    Kind.HANDOFF: "#1a7f37", Kind.ROUTINE: "#8c959f",
}
KIND_NAMES: Mapping[Kind, str] = {
    Kind.ESCALATED: "escalated", Kind.UNDONE: "undone", Kind.PROBLEM: "problem",
    Kind.HANDOFF: "hand-off", Kind.ROUTINE: "routine",
}
_COUNT_STEPS = (1, 2, 5)
_SECOND_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


def nice_count(top: float) -> int:
    """The scale's top for counts up to ``top``: 1, 2, 5, 10, 20, 50, …"""
    scale = 1
    while True:
        for step in _COUNT_STEPS:
            if step * scale >= top:
                return step * scale
        scale *= 10


def nice_seconds(top: float) -> float:
    """The scale's top for latencies up to ``top`` seconds (an hour's worth at most)."""
    return next((s for s in _SECOND_STEPS if s >= top), _SECOND_STEPS[-1])


def seconds_text(value: float) -> str:
    """``0.05 s``, ``2 s``, ``5 min``."""
    if value >= 120:
        return f"{value / 60:.0f} min"
    return f"{value:.2f} s" if value < 1 else f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def _frame(start: datetime, top_label: str, *, label: str, body: Iterable[str]) -> str:
    """The SVG element: axes, the hour's times, the scale's top, and ``body``."""
    base, right = TOP + PLOT_H, LEFT + PLOT_W
    ticks = [(LEFT, "start", start), (LEFT + PLOT_W / 2, "middle", start + HOUR / 2),
             (right, "end", start + HOUR)]
    times = "".join(f'<text x="{x:.1f}" y="{HEIGHT - 4:.1f}" text-anchor="{anchor}" '
                    f'class="c-t">{moment:%H:%M}</text>' for x, anchor, moment in ticks)
    return "".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{WIDTH:.0f}" '
        f'height="{HEIGHT:.0f}" viewBox="0 0 {WIDTH:.0f} {HEIGHT:.0f}" role="img" '
        f'aria-label="{escape(label)}">',
        "<style>.c-t{font:10px sans-serif;fill:#57606a}</style>",
        f'<line x1="{LEFT:.1f}" y1="{TOP:.1f}" x2="{right:.1f}" y2="{TOP:.1f}" '
        'stroke="#eaeef2"/>',
        f'<line x1="{LEFT:.1f}" y1="{base:.1f}" x2="{right:.1f}" y2="{base:.1f}" '
        'stroke="#8c959f"/>',
        f'<text x="{LEFT - 4:.1f}" y="{TOP + 4:.1f}" text-anchor="end" class="c-t">'
        f"{escape(top_label)}</text>",
        f'<text x="{LEFT - 4:.1f}" y="{base:.1f}" text-anchor="end" class="c-t">0</text>',
        times, *body, "</svg>",
    ])


def per_minute(minutes: Sequence[Mapping[Kind, int]], *, start: datetime) -> str:
    """Stacked bars, one per minute from ``start`` (the hour's first minute)."""
    top = nice_count(max((sum(m.values()) for m in minutes), default=0))
    bars = []
    for i, counts in enumerate(minutes):
        x, y = LEFT + i * (BAR_W + BAR_GAP) + BAR_GAP / 2, TOP + PLOT_H
        parts = []
        for kind in sorted(counts, reverse=True):  # routine at the bottom, escalated on top
            h = PLOT_H * counts[kind] / top
            y -= h
            parts.append(f'<rect class="bar {kind.css}" x="{x:.1f}" y="{y:.1f}" '
                         f'width="{BAR_W:.0f}" height="{h:.1f}" fill="{KIND_COLOURS[kind]}"/>')
        if parts:
            said = ", ".join(f"{counts[k]} {KIND_NAMES[k]}" for k in sorted(counts))
            when = start + timedelta(minutes=i)
            bars.append(f"<g>{''.join(parts)}<title>{when:%H:%M} UTC: {escape(said)}"
                        "</title></g>")
    return _frame(start, str(top), label="decisions per minute, last hour", body=bars)


def latencies(points: Sequence[Latency], *, start: datetime) -> str:
    """A dot per hand-off (the newest :data:`DOTS`): across at its time, up by its latency."""
    drawn = sorted(points, key=lambda p: p.handoff.at)[-DOTS:]
    top = nice_seconds(max((p.seconds for p in drawn), default=0.0))
    dots = []
    for p in drawn:
        across = (p.handoff.at - start) / HOUR
        x = LEFT + max(0.0, min(1.0, across)) * PLOT_W
        y = TOP + PLOT_H * (1 - min(p.seconds, top) / top)
        title = (f"#{p.handoff.source} ({p.handoff.comp or '?'}) handed off at "
                 f"{p.handoff.at:%H:%M:%S} UTC, {seconds_text(p.seconds)} after it completed")
        dots.append(f'<circle class="handoff" cx="{x:.1f}" cy="{y:.1f}" r="3.2" '
                    f'fill="#1f6feb" fill-opacity="0.75"><title>{escape(title)}</title>'
                    "</circle>")
    return _frame(start, seconds_text(top), label="hand-off latency, last hour", body=dots)
