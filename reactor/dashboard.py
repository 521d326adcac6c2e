"""``GET /``: the operator's dashboard, drawn from what the reactor remembers in Redis.

Per repository: its competitions × stages with each issue's status (colour and text) linked
to the issue, the dependency graph as a picture (:mod:`reactor.svg`), and the newest audit
records (rule, actor, what was undone). The page reloads itself every :data:`REFRESH_S`
seconds with a meta refresh: it carries no script and loads nothing from elsewhere.

It reads Redis only, never GitHub: the web process keeps no App credentials or GitHub client
(SPEC §2: it stores and enqueues), a page that refreshes every few seconds spends no rate
limit, and it works when GitHub is down, which is when an operator looks. It shows what the
reactor believes, which is what one debugs:

- each issue the reactor judged: the status it accepted, its competition and stage
  (:func:`reactor.store.memory.recall`), found by a ``SCAN`` of those keys;
- the dependency graph R7 checks, built by :class:`reactor.rules.cycles.Deps` from stage
  order and the "blocked by" links the reactor recorded. Issue bodies are not kept, so a
  body's ``depends on #N`` is not drawn (``reactor graph`` reads GitHub and shows it);
- the stage order of the repository's last good ``.github/reactor.yml``;
- the audit log's newest records. They name repositories by full name; a stored delivery of
  each names the repository's id and ``html_url`` (learnt once per process: an id never
  changes), from which the issue links are made — GitHub's, a GHES host's or the sandbox's.
  A repository no stored delivery names any more is shown by its id, without links.

Every text shown (names, labels, logins, audit details) is escaped.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from itertools import islice
from urllib.parse import urlencode

import networkx as nx
import orjson
import redis
import redis.asyncio
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from reactor import svg
from reactor.config import DEFAULT_CONFIG, RepoConfig, RepoConfigError, parse_config
from reactor.labels import Status, agent_label, comp_label
from reactor.metrics import Access
from reactor.rules.cycles import Deps, to_json
from reactor.settings import Settings
from reactor.store import deliveries, keys, memory
from reactor.store.audit import AuditRecord
from reactor.view import IssueSnapshot, IssueState

log = logging.getLogger(__name__)

REFRESH_S = 5
MAX_ISSUES = 5000  # issues drawn per repository
RECENT_RECORDS = 400  # audit records read per refresh
RECORDS_SHOWN = 12  # per repository
MAX_DELIVERY_BYTES = 1 << 20  # a stored delivery larger than this is not read for a name
NAME_TRIES = 3  # stored deliveries read per unnamed repository and refresh
_ISSUE_KEY = re.compile(re.escape(keys.PREFIX) + r"issue:(\d+):(\d+)")
_SHOWN_OUTCOMES = frozenset({"applied", "rejected", "replayed"})
_EPOCH = datetime.fromtimestamp(0, UTC)


@dataclass(frozen=True, slots=True)
class RepoName:
    full_name: str
    html_url: str | None


@dataclass
class RepoNames:
    """Repository ids and names, learnt from stored deliveries (see the module docstring)."""

    by_id: dict[int, RepoName] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    async def learn(self, client: redis.asyncio.Redis, records: Iterable[AuditRecord]) -> None:
        """Name each repository ``records`` (newest first) mention that is not known yet, from
        the stored delivery of one of its newest records (a renamed repository: its new
        name); a few tries per refresh, as old deliveries expire."""
        tries: Counter[str] = Counter()
        named: set[int] = set()
        for record in records:
            if not record.repo or record.repo in self.ids or record.delivery == record.event:
                continue
            tries[record.repo] += 1
            found = None
            if tries[record.repo] <= NAME_TRIES:
                found = await _repository_of(client, record.delivery)
            if found is None:
                continue
            repo_id, name = found
            if repo_id not in named:  # the newest name of a renamed repository wins
                self.by_id[repo_id] = name
                named.add(repo_id)
            self.ids[name.full_name] = repo_id


async def _repository_of(client: redis.asyncio.Redis, guid: str) -> tuple[int, RepoName] | None:
    """The repository a stored delivery's payload names: id, full name and ``html_url``."""
    size = await client.strlen(keys.delivery(guid))
    if not 0 < size <= MAX_DELIVERY_BYTES:
        return None
    record: bytes | None = await client.get(keys.delivery(guid))  # type: ignore[assignment]
    try:
        payload = orjson.loads(deliveries.decode(guid, record).body) if record else None
    except ValueError:  # orjson.JSONDecodeError is one
        return None
    repo = payload.get("repository") if isinstance(payload, dict) else None
    if not isinstance(repo, dict) or type(repo.get("id")) is not int:
        return None
    url = repo.get("html_url")
    safe = url if isinstance(url, str) and url.startswith(("https://", "http://")) else None
    return repo["id"], RepoName(str(repo.get("full_name") or repo["id"]), safe)


@dataclass(frozen=True)
class Board:
    """One repository's part of the page."""

    title: str
    html_url: str | None
    stages: tuple[str, ...]
    issues: Mapping[int, memory.Recalled]  # each with a competition and a stage
    graph: nx.DiGraph
    records: tuple[AuditRecord, ...]

    def link(self, number: int) -> str | None:
        return f"{self.html_url}/issues/{number}" if self.html_url else None


async def recent_records(client: redis.asyncio.Redis) -> list[AuditRecord]:
    """The newest audit records, newest first (one ``XREVRANGE``, unfiltered)."""
    entries: list[tuple[bytes, dict[bytes, bytes]]] = await client.xrevrange(  # type: ignore[assignment]
        keys.AUDIT, count=RECENT_RECORDS)
    return [AuditRecord.from_stream(entry_id, fields) for entry_id, fields in entries]


async def remembered(client: redis.asyncio.Redis) -> dict[int, dict[int, memory.Recalled]]:
    """Per repository id, the issues the reactor remembers with a competition and stage."""
    numbers: dict[int, list[int]] = {}
    pattern = keys.ISSUE.format(repo_id="*", issue="*")
    async for key in client.scan_iter(match=pattern, count=1000):
        found = _ISSUE_KEY.fullmatch(key.decode() if isinstance(key, bytes) else key)
        if found is not None:
            numbers.setdefault(int(found[1]), []).append(int(found[2]))
    out = {}
    for repo_id, issues in numbers.items():
        recalled = await memory.recall(client, repo_id, sorted(issues)[:MAX_ISSUES])
        out[repo_id] = {n: r for n, r in recalled.items() if r.comp and r.stage}
    return out


async def repo_config(client: redis.asyncio.Redis, repo_id: int) -> RepoConfig:
    """The repository's last good config (the defaults when none parsed yet)."""
    text: bytes | None = await client.get(keys.config_good(repo_id))  # type: ignore[assignment]
    try:
        return parse_config(text.decode("utf-8", "replace")) if text else DEFAULT_CONFIG
    except RepoConfigError:
        return DEFAULT_CONFIG


def _snapshot(number: int, recalled: memory.Recalled) -> IssueSnapshot:
    """The issue as its labels would read, from what the reactor remembers of it."""
    labels = {agent_label(recalled.stage or ""), comp_label(recalled.comp or "")}
    if recalled.status in tuple(Status):
        labels.add(Status(recalled.status).label)
    return IssueSnapshot(number=number, id=0, title="", body="", state=IssueState.OPEN,
                         state_reason=None, labels=frozenset(labels), author="",
                         created_at=_EPOCH)


def graph_of(issues: Mapping[int, memory.Recalled], config: RepoConfig,
             native: Mapping[int, frozenset[int]]) -> nx.DiGraph:
    """R7's dependency graph of the remembered issues (stage order and "blocked by")."""
    snapshots = [_snapshot(n, r) for n, r in issues.items()]
    return Deps.build(snapshots, config, native=native).graph


async def boards(client: redis.asyncio.Redis, names: RepoNames) -> list[Board]:
    """A board per repository the reactor remembers issues of or has audit records of."""
    records = await recent_records(client)
    await names.learn(client, records)
    found = []
    for repo_id, issues in sorted((await remembered(client)).items()):
        name = names.by_id.get(repo_id)
        config = await repo_config(client, repo_id)
        native = await memory.dependencies(client, repo_id, issues)
        extra = sorted({r.stage or "" for r in issues.values()} - set(config.stages))
        found.append(Board(
            title=name.full_name if name else f"repository {repo_id}",
            html_url=name.html_url if name else None, stages=(*config.stages, *extra),
            issues=issues, graph=graph_of(issues, config, native),
            records=_shown(records, name.full_name if name else None)))
    seen = {board.title for board in found}
    for repo in dict.fromkeys(r.repo for r in records if r.repo and r.repo not in seen):
        name = names.by_id.get(names.ids.get(repo, -1))
        found.append(Board(repo, name.html_url if name else None, DEFAULT_CONFIG.stages, {},
                           nx.DiGraph(), _shown(records, repo)))
    return found


def _shown(records: Sequence[AuditRecord], repo: str | None) -> tuple[AuditRecord, ...]:
    """The repository's newest records that say something: a rule, an action, a refusal
    (not the echoes of the reactor's own writes, R10)."""
    mine = (r for r in records if repo and r.repo == repo and r.outcome != "skipped"
            and (r.rule or r.outcome in _SHOWN_OUTCOMES))
    return tuple(islice(mine, RECORDS_SHOWN))


# -- the page ----------------------------------------------------------------------------------

HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "referrer-policy": "no-referrer",  # a ?token= in the address must not leave with a link
    "x-content-type-options": "nosniff",
}
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
.detail{max-width:560px;overflow-wrap:anywhere}.pic{overflow-x:auto}.none{color:#57606a}
.legend{font-size:12px;color:#57606a}
"""


def _css() -> str:
    pills = "".join(f".s-{status}{{background:{fill};border-color:{stroke}}}"
                    for status, (fill, stroke) in svg.STATUS_COLOURS.items())
    fill, stroke = svg.UNKNOWN_COLOURS
    return f"{_CSS}{pills}.s-unknown{{background:{fill};border-color:{stroke}}}"


def _a(text: str, href: str | None, *, css: str = "") -> str:
    """``text`` linked to ``href`` (in a new tab, sending no referrer), or a plain span."""
    cls = f' class="{css}"' if css else ""
    if href is None:
        return f"<span{cls}>{escape(text)}</span>"
    return f'<a{cls} href="{escape(href)}" target="_blank" rel="noreferrer">{escape(text)}</a>'


def _pill(board: Board, number: int, status: str | None) -> str:
    shown = status if status in svg.STATUS_COLOURS else "unknown"
    return _a(f"#{number} {status or 'unknown'}", board.link(number), css=f"pill s-{shown}")


def grid(board: Board) -> str:
    """Competitions × stages: each cell lists its issues with their status."""
    if not board.issues:
        return '<p class="none">No agent issue remembered yet.</p>'
    head = "".join(f"<th>{escape(stage)}</th>" for stage in board.stages)
    rows = []
    for comp in sorted({r.comp or "" for r in board.issues.values()}):
        cells = "".join("<td>" + "".join(
            _pill(board, n, r.status) for n, r in sorted(board.issues.items())
            if r.comp == comp and r.stage == stage) + "</td>" for stage in board.stages)
        rows.append(f"<tr><th>{escape(comp)}</th>{cells}</tr>")
    return f'<table class="grid"><tr><th>competition</th>{head}</tr>{"".join(rows)}</table>'


def picture(board: Board, ident: str) -> str:
    """The dependency graph as inline SVG, with its legend."""
    if not board.graph.nodes:
        return '<p class="none">No dependency to draw.</p>'
    nodes, edges = svg.from_graph_json(to_json(board.graph), board.link)
    drawn = svg.render(svg.layout(nodes, edges, board.stages), ident=ident)
    return f'<div class="pic">{drawn}</div><p class="legend">{svg.LEGEND}</p>'


def audit_table(board: Board) -> str:
    """The newest records that name a rule or an action: when, issue, rule, actor, what."""
    if not board.records:
        return '<p class="none">No decision recorded yet.</p>'
    rows = []
    for r in board.records:
        issue = _a(f"#{r.issue}", board.link(int(r.issue))) if r.issue.isdigit() else ""
        rows.append(f"<tr><td>{escape(r.at[11:19])}</td><td>{issue}</td><td>{escape(r.rule)}"
                    f"</td><td>{escape(r.actor)}</td><td>{escape(r.outcome)}</td>"
                    f'<td class="detail">{escape(r.detail)}</td></tr>')
    head = "<tr><th>UTC</th><th>issue</th><th>rule</th><th>actor</th><th>outcome</th>" \
           "<th>what</th></tr>"
    return f'<table class="audit">{head}{"".join(rows)}</table>'


def page(found: Sequence[Board], *, now: datetime, query: str = "") -> str:
    """The whole HTML document; ``query`` (``?token=…`` when the page was opened so) goes
    on the link to ``/metrics``, which is behind the same door."""
    sections = "".join(
        f"<section><h2>{_a(b.title, b.html_url)}</h2><h3>Competitions</h3>{grid(b)}"
        f"<h3>Dependencies</h3>{picture(b, str(i))}<h3>Recent decisions</h3>"
        f"{audit_table(b)}</section>" for i, b in enumerate(found))
    if not found:
        sections = ('<section><p class="none">No repository seen yet: the reactor lists one '
                    "here once it judges an issue there.</p></section>")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="{REFRESH_S}">'
            '<meta name="referrer" content="no-referrer">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Issue Safety Reactor</title><style>{_css()}</style></head><body>"
            f"<header><h1>Issue Safety Reactor</h1><p>Updated {now:%Y-%m-%d %H:%M:%S} UTC · "
            f'refreshes every {REFRESH_S} s · <a href="metrics{escape(query)}">metrics</a>'
            "</p></header>"
            f"{sections}</body></html>")


def routes(settings: Settings) -> list[Route]:
    """``GET /``, behind the same door as ``/metrics`` (:class:`reactor.metrics.Access`)."""
    access = Access(settings.dashboard_token)
    names = RepoNames()

    async def dashboard(request: Request) -> Response:
        refused = access.refusal(request)
        if refused is not None:
            return refused
        try:
            found = await boards(request.state.redis, names)
        except (redis.RedisError, OSError) as exc:
            log.warning("dashboard unavailable: Redis does not answer: %s", exc)
            return HTMLResponse("<!doctype html><title>Unavailable</title><p>Redis does not "
                                "answer; this page tries again.</p>", status_code=503,
                                headers={**HEADERS, "refresh": str(REFRESH_S)})
        token = request.query_params.get("token")
        query = f"?{urlencode({'token': token})}" if token else ""
        return HTMLResponse(page(found, now=datetime.now(UTC), query=query), headers=HEADERS)

    return [Route("/", dashboard, methods=["GET"])]
