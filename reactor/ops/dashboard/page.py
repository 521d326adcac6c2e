"""``GET /``: the operator's dashboard, drawn from what the reactor remembers in Redis.

Per repository, what an operator looks for first, then the detail:

- which competitions are stuck, and why (:mod:`reactor.ops.dashboard.standing`);
- the last hour: decisions per minute and hand-off latency, as small server-drawn SVG charts
  (:mod:`reactor.ops.dashboard.pulse`, :mod:`reactor.ops.dashboard.charts`);
- its competitions × stages with each issue's status (colour and text) linked to the issue,
  closed issues shown closed (and how), ``reactor:`` labels flagged;
- the dependency graph as a picture (:mod:`reactor.ops.svg`);
- the recent decisions, repeats folded, undone changes and escalations marked
  (:mod:`reactor.ops.dashboard.recent`).

The page reloads itself every :data:`REFRESH_S` seconds with a meta refresh: it carries no
script and loads nothing from elsewhere. Every text shown (names, labels, logins, audit
details) is escaped.

The web process that draws it also takes the webhooks, so one tenant's data must not slow
anyone's deliveries (SPEC §6):

- what is read is bounded per repository and page (:mod:`reactor.ops.dashboard.boards`), what is
  drawn is grouped once and capped, and the page says what it left out
  (:mod:`reactor.ops.dashboard.shown`);
- the drawing runs in a worker thread, never on the event loop, and at most once per
  refresh period however many viewers there are: they share one render (:class:`PageCache`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from html import escape
from typing import Generic, NamedTuple, TypeVar
from urllib.parse import urlencode

import anyio.to_thread
import redis
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from reactor.ops import svg
from reactor.ops.access import PAGE_HEADERS, Access
from reactor.ops.dashboard import charts, panels, shown, standing
from reactor.ops.dashboard.boards import MAX_ISSUES, REPOSITORIES, Board, Boards, boards
from reactor.ops.dashboard.learnt import DeliveryFacts, RepoNames
from reactor.ops.dashboard.panels import a as _a
from reactor.process.settings import Settings

log = logging.getLogger(__name__)

REFRESH_S = 5
OTHERS_NAMED = 50  # repositories named in the note on those not drawn
HEADERS = PAGE_HEADERS
T = TypeVar("T")

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
header{background:#24292f;color:#fff;padding:10px 20px}header h1{font-size:18px;margin:0}
header p{margin:2px 0 0;color:#c9d1d9;font-size:12px}header a{color:#c9d1d9}
section{background:#fff;border:1px solid #d0d7de;border-radius:8px;margin:14px 20px;
padding:4px 16px 12px}h2{font-size:16px}h3{font-size:13px;color:#57606a;margin:14px 0 6px}
table{border-collapse:collapse}td,th{border:1px solid #d8dee4;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f6f8fa;font-weight:600}
.pill{display:inline-block;border:1px solid;border-radius:10px;padding:0 7px;margin:1px;
font-size:12px;text-decoration:none;color:#1f2328}.audit td{font-size:12px}
.detail{max-width:620px;overflow-wrap:anywhere}.pic{overflow-x:auto}.none{color:#57606a}
.legend,.more{font-size:12px;color:#57606a}.s-closed{border-style:dashed;color:#57606a}
.flag{color:#fff;background:#cf222e;border-radius:8px;padding:0 5px;margin-left:4px}
.ok{color:#1a7f37;margin:4px 0}.stuck th{background:#fff8f0}.stuck ul{margin:0;padding-left:18px}
.stuck li.r0{color:#bc4c00;font-weight:600}.stuck li.r1{color:#cf222e}
.charts{display:flex;flex-wrap:wrap;gap:8px 28px}figure{margin:0}
figcaption{font-size:12px;font-weight:600;margin-bottom:2px}.sw{display:inline-block;
width:9px;height:9px;margin:0 3px 0 8px;border-radius:2px}
.audit .k-routine td{color:#57606a}.tag{display:inline-block;border-radius:8px;padding:0 6px;
font-size:11px;font-weight:600;color:#fff}.count{font-weight:600;color:#1f2328}
.audit tr.k-undone td{background:#fff5f5}.audit tr.k-undone td:first-child{box-shadow:inset
3px 0 #cf222e}.audit tr.k-escalated td{background:#fff1e5;font-weight:600}
.audit tr.k-escalated td:first-child{box-shadow:inset 3px 0 #bc4c00}
"""


def _css() -> str:
    pills = "".join(f".s-{status}{{background:{fill};border-color:{stroke}}}"
                    for status, (fill, stroke) in svg.STATUS_COLOURS.items())
    fill, stroke = svg.UNKNOWN_COLOURS
    closed_fill, closed_stroke = svg.CLOSED_COLOURS
    kinds = "".join(f".sw.{k.css},.tag.{k.css}{{background:{colour}}}"
                    for k, colour in charts.KIND_COLOURS.items())
    return (f"{_CSS}{pills}.s-unknown{{background:{fill};border-color:{stroke}}}"
            f".pill.s-closed{{background:{closed_fill};border-color:{closed_stroke}}}{kinds}")


def _pill(board: Board, number: int, known: standing.Known) -> str:
    """An issue as the grid lists it: its status (closed: how), and its ``reactor:`` flags."""
    status = board.issues[number].status
    shown_as = status if status in svg.STATUS_COLOURS else "unknown"
    text = f"#{number} {status or 'unknown'}"
    if number in known.closed:
        shown_as, text = "closed", f"#{number} {svg.closed_text(known.closed[number])}"
    flags = "".join(f'<span class="flag">{escape(flag.removeprefix("reactor:"))}</span>'
                    for flag in sorted(known.flags.get(number, ())))
    return _a(text, board.link(number), css=f"pill s-{shown_as}") + flags


def _more(count: int) -> str:
    return f'<span class="more">… and {count:,} more</span>' if count else ""


def _issues(count: int) -> str:
    return f"{count:,} issue" + ("" if count == 1 else "s")


def _cell(board: Board, cell: shown.Cell, known: standing.Known) -> str:
    return ("<td>" + "".join(_pill(board, n, known) for n in cell.numbers) + _more(cell.more)
            + "</td>")


def grid(board: Board, drawn: shown.Grid, known: standing.Known) -> str:
    """Competitions × stages, each cell listing its issues with their status, and a note of
    what is not drawn."""
    if not board.issues:
        return '<p class="none">No agent issue remembered yet.</p>'
    elsewhere = any(row.elsewhere for row in drawn.rows)
    head = "".join(f"<th>{escape(stage)}</th>" for stage in drawn.columns)
    head += "<th>other stages</th>" if elsewhere else ""
    rows = "".join(
        f"<tr><th>{escape(row.comp)}</th>{''.join(_cell(board, c, known) for c in row.cells)}"
        + (f'<td class="more">{_issues(row.elsewhere) if row.elsewhere else ""}</td>'
           if elsewhere else "") + "</tr>"
        for row in drawn.rows)
    notes = []
    if drawn.comps_left:
        notes.append(f"… and {drawn.comps_left:,} more competitions "
                     f"({_issues(drawn.issues_left)}) not drawn: the {shown.COMPETITIONS} "
                     "with the newest issues are.")
    if drawn.stages_left:
        notes.append(f"… and {drawn.stages_left:,} more stages without a column: their issues "
                     "are counted under “other stages”.")
    if board.unread:
        notes.append(f"… and {board.unread:,} older issues not read: the newest "
                     f"{MAX_ISSUES:,} are.")
    note = "".join(f'<p class="more">{text}</p>' for text in notes)
    return (f'<table class="grid"><tr><th>competition</th>{head}</tr>{rows}</table>{note}')


def picture(board: Board, drawn: shown.Picture, ident: str) -> str:
    """The dependency graph as inline SVG, with its legend and what it leaves out."""
    if not drawn.nodes:
        return '<p class="none">No dependency to draw.</p>'
    laid = svg.layout(drawn.nodes, drawn.edges, board.order)
    left = [f"… and {drawn.nodes_left:,} more not drawn"] if drawn.nodes_left else []
    left += [f"{drawn.edges_left:,} more lines between them not drawn"] if drawn.edges_left else []
    note = ""
    if left:
        note = (f'<p class="more">Drawn: {len(drawn.nodes):,} of {_issues(len(board.issues))} '
                f"(any in a cycle first, then those the grid lists) {'; '.join(left)}.</p>")
    return (f'<div class="pic">{svg.render(laid, ident=ident)}</div>'
            f'<p class="legend">{svg.LEGEND}</p>{note}')


def section(board: Board, ident: str, *, now: datetime, cut: datetime | None = None) -> str:
    """One repository's part of the page (``cut``: the records read reach back to then)."""
    groups = shown.group(board.issues)
    known = standing.known(board.records, board.closes)
    drawn = shown.grid(board.issues, groups, board.order, closed=known.closed)
    graph = shown.picture(board.issues, groups, drawn, order=board.order, native=board.native,
                          link=board.link, closed=known.closed)
    stuck = standing.stuck(board.issues, groups, config=board.config, known=known, now=now)
    return (f"<section><h2>{_a(board.title, board.html_url)}</h2><h3>Stuck</h3>"
            f"{panels.stuck_panel(stuck, competitions=len(groups), link=board.link)}"
            f"<h3>Last hour</h3>{panels.last_hour(board.records, board.arrivals, now=now, cut=cut)}"
            f"<h3>Competitions</h3>{grid(board, drawn, known)}"
            f"<h3>Dependencies</h3>{picture(board, graph, ident)}"
            f"<h3>Recent decisions</h3>{panels.decisions(board.records, link=board.link)}"
            "</section>")


def body(found: Boards) -> str:
    """Every repository's section (the page's costly part: run off the event loop)."""
    if not found.drawn:
        return ('<section><p class="none">No repository seen yet: the reactor lists one '
                "here once it judges an issue there.</p></section>")
    sections = "".join(section(board, str(i), now=found.now, cut=found.cut)
                       for i, board in enumerate(found.drawn))
    if not found.others:
        return sections
    named = ", ".join(f"{escape(title)} ({_issues(count)})"
                      for title, count in found.others[:OTHERS_NAMED])
    rest = len(found.others) - OTHERS_NAMED
    return (f'{sections}<section><p class="more">… and {len(found.others):,} more '
            f"repositories not drawn (the {REPOSITORIES} with the newest decisions are): "
            f"{named}{f' … and {rest:,} more' if rest > 0 else ''}.</p></section>")


def page(drawn: str, *, now: datetime, query: str = "") -> str:
    """The whole HTML document around ``drawn`` (:func:`body`); ``query`` (``?token=…``
    when the page was opened so) goes on the link to ``/metrics``, behind the same door."""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="{REFRESH_S}">'
            '<meta name="referrer" content="no-referrer">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Issue Safety Reactor</title><style>{_css()}</style></head><body>"
            f"<header><h1>Issue Safety Reactor</h1><p>Updated {now:%Y-%m-%d %H:%M:%S} UTC · "
            f'refreshes every {REFRESH_S} s · <a href="metrics{escape(query)}">metrics</a>'
            f"</p></header>{drawn}</body></html>")


class Rendered(NamedTuple):
    """A rendered body, when its data was read, and when (``time.monotonic``) it was."""

    body: str
    at: datetime
    taken: float


class PageCache(Generic[T]):
    """The page's body, rendered at most once per ``period`` and shared by every viewer.

    ``render`` (CPU only) runs in a worker thread, so the event loop goes on taking webhooks
    meanwhile; a viewer who comes while a render is under way waits for that one. A failed
    read (Redis away) fails every viewer waiting on it, and the next viewer tries again."""

    def __init__(self, render: Callable[[T], str], *, period: float) -> None:
        self._render = render
        self.period = period
        self._last: Rendered | None = None
        self._running: asyncio.Task[Rendered] | None = None

    async def get(self, read: Callable[[], Awaitable[T]]) -> Rendered:
        """The fresh body, rendered now from ``read()`` unless one from this period exists."""
        last = self._last
        if last is not None and time.monotonic() - last.taken < self.period:
            return last
        if self._running is None:
            self._running = asyncio.ensure_future(self._make(read))
            self._running.add_done_callback(self._finished)
        return await asyncio.shield(self._running)

    async def _make(self, read: Callable[[], Awaitable[T]]) -> Rendered:
        taken, at = time.monotonic(), datetime.now(UTC)
        data = await read()
        return Rendered(await anyio.to_thread.run_sync(self._render, data), at, taken)

    def _finished(self, task: asyncio.Task[Rendered]) -> None:
        self._running = None
        if not task.cancelled() and task.exception() is None:
            self._last = task.result()


def routes(settings: Settings) -> list[Route]:
    """``GET /``, behind the same door as ``/metrics`` (:class:`reactor.ops.access.Access`)."""
    access = Access(settings.dashboard_token)
    names, facts = RepoNames(), DeliveryFacts()
    cache: PageCache[Boards] = PageCache(body, period=REFRESH_S)

    async def dashboard(request: Request) -> Response:
        refused = access.refusal(request)
        if refused is not None:
            return refused
        try:
            rendered = await cache.get(lambda: boards(request.state.redis, names, facts,
                                                      now=datetime.now(UTC)))
        except (redis.RedisError, OSError) as exc:
            log.warning("dashboard unavailable: Redis does not answer: %s", exc)
            return HTMLResponse("<!doctype html><title>Unavailable</title><p>Redis does not "
                                "answer; this page tries again.</p>", status_code=503,
                                headers={**HEADERS, "refresh": str(REFRESH_S)})
        token = request.query_params.get("token")
        query = f"?{urlencode({'token': token})}" if token else ""
        return HTMLResponse(page(rendered.body, now=rendered.at, query=query), headers=HEADERS)

    return [Route("/", dashboard, methods=["GET"])]
