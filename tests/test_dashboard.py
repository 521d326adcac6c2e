"""The dashboard (``GET /``): its SVG layout, the page drawn from Redis, and who may read it.

The page is served by the web app (``create_app``) with the operator routes appended, as
``reactor serve`` serves them, against a real redis-server seeded through the reactor's own
writers (``memory.remember``, ``AuditLog.record``, a stored delivery).
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import orjson
import pytest
import redis
import redis.asyncio
import uvicorn
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.testclient import TestClient

from reactor import access, comments, dashboard, metrics, shown, svg
from reactor.actions import Rule
from reactor.config import RepoConfig
from reactor.labels import agent_label, comp_label
from reactor.rules.cycles import Deps, in_cycles
from reactor.settings import Settings
from reactor.store import keys, memory
from reactor.store.audit import AuditLog, AuditRecord
from reactor.store.deliveries import Delivery
from reactor.view import IssueSnapshot, IssueState
from reactor.web import create_app
from tests.conftest import free_port, wait_for_port

TOKEN = "a-dashboard-token-of-32-characters"
REPO_ID = 42
HTML_URL = "https://github.example/acme/widgets"
CONFIG = "stages: [planner, analyzer, executor]\n"


def operator_app(settings: Settings) -> Starlette:
    """The web process's app with the dashboard and metrics routes appended."""
    app = create_app(settings)
    app.router.routes.extend([*dashboard.routes(settings), *metrics.routes(settings)])
    return app


def settings_for(redis_url: str, *, token: str | None = None) -> Settings:
    return Settings(redis_url=redis_url, webhook_secrets=(b"secret",), dashboard_token=token)


@contextmanager
def serving(app: Starlette) -> Iterator[str]:
    """``app`` served by uvicorn on a loopback port in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# -- the SVG layout ----------------------------------------------------------------------------

STAGES = ("planner", "analyzer", "executor")


def _nodes() -> list[svg.Node]:
    return [
        svg.Node(1, "planner", "titanic", "completed"),
        svg.Node(2, "analyzer", "titanic", "running"),
        svg.Node(3, "analyzer", "titanic", "idle"),
        svg.Node(4, "planner", "house", "starting"),
        svg.Node(5, "review", "house", None),
    ]


def well_formed(drawn: str) -> ET.Element:
    """The SVG parsed as XML (it raises unless well-formed): the text is this test's own."""
    return ET.fromstring(drawn)  # noqa: S314 - not untrusted input: the picture just drawn


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return abs(a[0] - b[0]) < svg.BOX_W and abs(a[1] - b[1]) < svg.BOX_H


def test_stages_are_columns_in_stage_order_and_an_unknown_stage_comes_last() -> None:
    picture = svg.layout(_nodes(), [], STAGES)
    assert [stage for stage, _ in picture.columns] == [*STAGES, "review"]
    x = {n: picture.boxes[n][0] for n in picture.boxes}
    assert x[1] == x[4] < x[2] == x[3] < x[5]
    centres = dict(picture.columns)
    assert all(abs(x[n] + svg.BOX_W / 2 - centres[node.stage]) < 0.01
               for n, node in picture.nodes.items())


def test_competitions_are_lanes_and_no_two_boxes_overlap() -> None:
    picture = svg.layout(_nodes(), [], STAGES)
    assert [comp for comp, _ in picture.lanes] == ["house", "titanic"]
    y = {n: picture.boxes[n][1] for n in picture.boxes}
    assert y[4] < y[1] and y[5] < y[1]  # house's lane above titanic's
    assert y[2] < y[3]  # two analyzers of one competition stack by number
    boxes = list(picture.boxes.values())
    assert not any(_overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert all(0 <= bx and bx + svg.BOX_W <= picture.width and 0 <= by
               and by + svg.BOX_H <= picture.height for bx, by in boxes)


def test_a_line_runs_from_the_issue_waited_for_to_the_waiter() -> None:
    picture = svg.layout(_nodes(), [svg.Edge(2, 1, ("stage",))], STAGES)
    points = re.findall(r"(-?[\d.]+),(-?[\d.]+)", svg.edge_path(picture, picture.edges[0]))
    start, end = points[0], points[-1]  # the curve's ends (the middle two steer it)
    (px, py), (ax, ay) = picture.boxes[1], picture.boxes[2]
    assert (float(start[0]), float(start[1])) == (px + svg.BOX_W, py + svg.BOX_H / 2)
    assert (float(end[0]), float(end[1])) == (ax, ay + svg.BOX_H / 2)


def test_edges_to_issues_not_drawn_are_dropped() -> None:
    picture = svg.layout(_nodes(), [svg.Edge(2, 99, ("native",))], STAGES)
    assert picture.edges == ()


def test_the_svg_is_well_formed_escapes_names_and_marks_cycles() -> None:
    nodes = [svg.Node(1, "planner", "<script>alert(1)</script>", "running", True, "h?a=1&b=2"),
             svg.Node(2, "analyzer", "<script>alert(1)</script>", "error", True)]
    edges = [svg.Edge(2, 1, ("stage",)), svg.Edge(1, 2, ("native",))]
    drawn = svg.render(svg.layout(nodes, edges, STAGES), ident="t")
    assert well_formed(drawn).tag.endswith("svg")
    assert "<script>" not in drawn and "&lt;script&gt;" in drawn
    assert 'href="h?a=1&amp;b=2"' in drawn
    assert drawn.count('class="issue"') == 2
    assert drawn.count(f'stroke="{svg.CYCLE}"') == 4  # both boxes and both lines
    assert 'class="dep native"' in drawn and 'class="dep stage"' in drawn


# -- the page, from Redis ------------------------------------------------------------------------


async def _seed(redis_url: str) -> None:
    """Issues remembered in two competitions, a recorded "blocked by" link, the config, a
    stored delivery naming the repository, and the audit records of an R2 revert."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await memory.remember(client, REPO_ID, statuses={
            1: "completed", 2: "running", 3: "starting", 4: "idle", 5: "completed"},
            identities={1: ("titanic", "planner"), 2: ("titanic", "analyzer"),
                        3: ("titanic", "executor"), 4: ("<b>house</b>", "planner"),
                        5: ("titanic", "planner")})
        await memory.record_dependency(client, REPO_ID, 3, 4, added=True)
        await client.set(keys.config_good(REPO_ID), CONFIG)
        payload = {"repository": {"id": REPO_ID, "full_name": "acme/widgets",
                                  "html_url": HTML_URL}}
        delivery = Delivery(guid="g-1", event="issues", body=orjson.dumps(payload),
                            received_at=time.time())
        await client.set(keys.delivery("g-1"), delivery.header() + delivery.body)
        revert = comments.revert(issue=3, rule=Rule.R2, actor="executor-bot",
                                 what="moved #3 to `status:starting` before analyzer #2 "
                                      "completed", instead="Wait.", key="g-1", added=[],
                                 removed=["status:starting"])
        log = AuditLog(client)
        for detail in ("comp:titanic RemoveLabel: revert: status:starting was not allowed",
                       f"comp:titanic Comment: {revert.reason}"):
            await log.record(AuditRecord(at="2026-01-02T03:04:05.000+00:00", delivery="g-1",
                                         event="issues", action="labeled", outcome="applied",
                                         repo="acme/widgets", issue="3", actor="executor-bot",
                                         rule="R2", detail=detail))
        await log.record(AuditRecord(at="2026-01-02T03:04:06.000+00:00", delivery="g-2",
                                     event="issues", action="opened", outcome="accepted",
                                     repo="acme/widgets", issue="1", actor="planner-bot",
                                     detail="no rule broken"))
    finally:
        await client.aclose()


@pytest.fixture
def seeded(redis_url: str) -> str:
    asyncio.run(_seed(redis_url))
    return redis_url


def _loopback_client(app: Starlette) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1:3000", client=("127.0.0.1", 50000))


def test_the_page_shows_competitions_by_stage_with_status_and_links(seeded: str) -> None:
    with _loopback_client(operator_app(settings_for(seeded))) as client:
        response = client.get("/")
    assert response.status_code == 200
    html = response.text
    assert f'href="{HTML_URL}"' in html and ">acme/widgets<" in html
    grid = html[html.index('<table class="grid">'):]
    grid = grid[: grid.index("</table>")]
    assert grid.index(">planner<") < grid.index(">analyzer<") < grid.index(">executor<")
    assert (f'<a class="pill s-running" href="{HTML_URL}/issues/2" target="_blank" '
            'rel="noreferrer">#2 running</a>') in grid
    assert ">#1 completed<" in grid and ">#5 completed<" in grid
    assert "&lt;b&gt;house&lt;/b&gt;" in html and "<b>house</b>" not in html


def test_the_page_shows_the_recent_decisions_but_not_the_quiet_ones(seeded: str) -> None:
    with _loopback_client(operator_app(settings_for(seeded))) as client:
        html = client.get("/").text
    audit = html[html.index('<table class="audit">'):]
    assert "R2 revert: moved #3 to `status:starting` before analyzer #2 completed" in audit
    assert "executor-bot" in audit and "03:04:05" in audit
    assert "no rule broken" not in audit


def test_the_page_draws_the_graph_inline_and_loads_nothing_from_elsewhere(seeded: str) -> None:
    with _loopback_client(operator_app(settings_for(seeded))) as client:
        response = client.get("/")
    html = response.text
    drawn = html[html.index("<svg"): html.index("</svg>") + 6]
    well_formed(drawn)
    assert drawn.count('class="issue"') == 5
    assert 'class="dep native"' in drawn  # #3 blocked by #4, as the reactor recorded it
    assert '<meta http-equiv="refresh"' in html
    assert not re.search(r"<script|<link|\bsrc=|@import|url\(http", html)
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"


def test_a_repository_no_delivery_names_is_shown_by_id_without_links(redis_url: str) -> None:
    async def seed() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        await memory.remember(client, 7, statuses={1: "error"},
                              identities={1: ("titanic", "planner")})
        await client.aclose()

    asyncio.run(seed())
    with _loopback_client(operator_app(settings_for(redis_url))) as client:
        html = client.get("/").text
    assert "repository 7" in html and '<span class="pill s-error">#1 error</span>' in html


def test_an_empty_reactor_says_so(redis_url: str) -> None:
    with _loopback_client(operator_app(settings_for(redis_url))) as client:
        response = client.get("/")
    assert response.status_code == 200 and "No repository seen yet" in response.text


def test_redis_away_is_a_503_that_retries(redis_url: str) -> None:
    app = operator_app(settings_for("redis://127.0.0.1:1/0"))
    with _loopback_client(app) as client:
        assert client.get("/").status_code == 503
        assert client.get("/metrics").status_code == 503


# -- who may read the operator routes -------------------------------------------------------

ROUTES = ("/", "/metrics")


def _remote_client(app: Starlette) -> TestClient:
    return TestClient(app, base_url="http://203.0.113.5:3000", client=("198.51.100.7", 40000))


@pytest.mark.parametrize("path", ROUTES)
def test_loopback_is_open_without_a_token(redis_url: str, path: str) -> None:
    app = operator_app(settings_for(redis_url))
    with _loopback_client(app) as client:
        assert client.get(path).status_code == 200
    ipv6 = TestClient(app, base_url="http://[::1]:3000", client=("::1", 50000))
    with ipv6 as client:
        assert client.get(path).status_code == 200


@pytest.mark.parametrize("path", ROUTES)
def test_beyond_loopback_without_a_configured_token_is_403(redis_url: str, path: str) -> None:
    with _remote_client(operator_app(settings_for(redis_url))) as client:
        response = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 403
    assert "loopback only; set DASHBOARD_TOKEN" in response.text


@pytest.mark.parametrize("path", ROUTES)
def test_beyond_loopback_the_token_opens_it(redis_url: str, path: str) -> None:
    with _remote_client(operator_app(settings_for(redis_url, token=TOKEN))) as client:
        missing = client.get(path)
        wrong = client.get(path, headers={"Authorization": "Bearer not-the-token-at-all"})
        header = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
        query = client.get(path, params={"token": TOKEN})
    assert missing.status_code == 401 and "Authorization: Bearer" in missing.text
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert wrong.status_code == 403 and "not the DASHBOARD_TOKEN" in wrong.text
    assert header.status_code == 200 and query.status_code == 200
    if path == "/":  # the page links /metrics with the token it was opened with
        assert f'href="metrics?token={TOKEN}"' in query.text


@pytest.mark.parametrize("path", ROUTES)
def test_a_request_a_proxy_relayed_over_loopback_needs_the_token(
        redis_url: str, path: str) -> None:
    with _loopback_client(operator_app(settings_for(redis_url, token=TOKEN))) as client:
        relayed = client.get(path, headers={"X-Forwarded-For": "198.51.100.7"})
        with_token = client.get(path, headers={"X-Forwarded-For": "198.51.100.7",
                                               "Authorization": f"Bearer {TOKEN}"})
    assert relayed.status_code == 401 and with_token.status_code == 200


REBOUND = ("attacker.example:3000", "attacker.example", "127.0.0.1.attacker.example:3000",
           "localhost.evil:3000", "user@127.0.0.1:3000", "127.0.0.1:3000@evil.example",
           "localhost:3000/x", "127.0.0.2:3000", "0.0.0.0:3000", "[::2]:3000", "")


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("host", REBOUND)
def test_a_loopback_request_to_a_name_not_loopback_is_not_local(
        redis_url: str, path: str, host: str) -> None:
    """DNS rebinding: a page elsewhere whose name now points at 127.0.0.1 connects over
    loopback, but its requests name the page's host. They need the token like any other."""
    app = operator_app(settings_for(redis_url, token=TOKEN))
    with _loopback_client(app) as client:
        rebound = client.get(path, headers={"Host": host})
        with_token = client.get(path, headers={"Host": host, "Authorization": f"Bearer {TOKEN}"})
    assert rebound.status_code == 401 and with_token.status_code == 200
    with _loopback_client(operator_app(settings_for(redis_url))) as client:
        assert client.get(path, headers={"Host": host}).status_code == 403


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:3000", "localhost", "LocalHost:8080",
                                  "[::1]", "[::1]:3000"])
def test_a_loopback_request_to_a_loopback_name_is_local(redis_url: str, host: str) -> None:
    with _loopback_client(operator_app(settings_for(redis_url))) as client:
        assert client.get("/", headers={"Host": host}).status_code == 200
        assert client.get("/metrics", headers={"Host": host}).status_code == 200


def test_the_real_server_answers_loopback_requests(redis_url: str) -> None:
    """Over a real socket (uvicorn), the connection's own addresses decide: loopback here."""
    with serving(operator_app(settings_for(redis_url))) as url:
        assert httpx.get(f"{url}/", timeout=10).status_code == 200
        assert httpx.get(f"{url}/metrics", timeout=10).status_code == 200


def test_a_short_dashboard_token_is_a_config_error() -> None:
    from reactor.errors import ConfigError

    with pytest.raises(ConfigError, match="DASHBOARD_TOKEN must be at least 16"):
        Settings.parse({"DASHBOARD_TOKEN": "short"})
    parsed = Settings.parse({"DASHBOARD_TOKEN": TOKEN})
    assert parsed.dashboard_token == TOKEN and TOKEN not in repr(parsed)


def test_the_loopback_check_reads_both_ends_of_the_connection() -> None:
    local = {"server": ("127.0.0.1", 3000), "client": ("127.0.0.1", 5),
             "headers": [(b"host", b"127.0.0.1:3000")]}
    assert access.is_local(local)
    assert access.is_local({**local, "server": ("::ffff:127.0.0.1", 3000)})
    assert not access.is_local({**local, "client": ("10.0.0.2", 5)})
    assert not access.is_local({**local, "server": ("10.0.0.1", 3000)})
    assert not access.is_local({**local, "server": None})
    assert not access.is_local({**local, "headers": [(b"host", b"127.0.0.1:3000"),
                                                     (b"forwarded", b"for=1.2.3.4")]})


def test_the_loopback_check_needs_exactly_one_loopback_host() -> None:
    local = {"server": ("127.0.0.1", 3000), "client": ("127.0.0.1", 5)}
    assert not access.is_local({**local, "headers": []})
    assert not access.is_local({**local, "headers": [(b"host", b"localhost"),
                                                     (b"host", b"attacker.example")]})
    assert access.is_local({**local, "headers": [(b"host", b"localhost:3000")]})


# -- one tenant's data is bounded (issue 17, finding 3) ---------------------------------------

FIVE = ("planner", "analyzer", "executor", "monitor", "retrospective")


async def _seed_many(redis_url: str, identities: Mapping[int, tuple[str, str]],
                     *, blocked_by: Mapping[int, int] | None = None) -> None:
    """``identities`` remembered as the reactor writes them, in a repository configured with
    the five stages and named (with links) by an audit record's stored delivery;
    ``blocked_by`` links recorded."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        statuses = ("idle", "starting", "running", "completed", "error")
        await memory.remember(client, REPO_ID, identities=identities,
                              statuses={n: statuses[n % 5] for n in identities})
        for blocked, blocking in (blocked_by or {}).items():
            await memory.record_dependency(client, REPO_ID, blocked, blocking, added=True)
        await client.set(keys.config_good(REPO_ID), f"stages: [{', '.join(FIVE)}]\n")
        payload = {"repository": {"id": REPO_ID, "full_name": "acme/widgets",
                                  "html_url": HTML_URL}}
        delivery = Delivery(guid="g-1", event="issues", body=orjson.dumps(payload),
                            received_at=time.time())
        await client.set(keys.delivery("g-1"), delivery.header() + delivery.body)
        await AuditLog(client).record(AuditRecord(
            at="2026-01-02T03:04:05.000+00:00", delivery="g-1", event="issues",
            action="labeled", outcome="accepted", repo="acme/widgets", issue="1"))
    finally:
        await client.aclose()


def _one_competition(n: int) -> dict[int, tuple[str, str]]:
    """``n`` issues in one competition, spread evenly over the five stages."""
    return {i: ("big", FIVE[(i - 1) * 5 // n]) for i in range(1, n + 1)}


def test_a_thousand_issues_in_one_competition_make_a_bounded_page_that_says_what_it_left_out(
        redis_url: str) -> None:
    """The issue's case: 1,000 issues over five stages drew every one of R7's 160,000 stage
    edges (a 29 MB page). Now each cell lists the issues that want attention first and says
    how many more it holds, and the picture draws a few dozen issues and says so."""
    asyncio.run(_seed_many(redis_url, _one_competition(1000)))
    with _loopback_client(operator_app(settings_for(redis_url))) as client:
        response = client.get("/")
    assert response.status_code == 200
    assert len(response.content) < 2_000_000
    html = response.text
    grid = html[html.index('<table class="grid">'): html.index("</table>")]
    assert grid.count('class="pill') == 5 * shown.PER_CELL
    assert grid.count(f"… and {200 - shown.PER_CELL} more") == 5
    assert grid.count(f'<a class="pill s-error" href="{HTML_URL}/issues/') == 5 * shown.PER_CELL
    drawn = well_formed(html[html.index("<svg"): html.index("</svg>") + 6])
    boxes = drawn.findall(".//{http://www.w3.org/2000/svg}rect")
    assert len(boxes) == shown.GRAPH_NODES
    assert f"Drawn: {shown.GRAPH_NODES} of 1,000 issues" in html
    assert f"… and {1000 - shown.GRAPH_NODES} more not drawn" in html


def test_thousands_of_competitions_and_stages_are_capped_and_counted(redis_url: str) -> None:
    """Each issue in a competition and a stage of its own (the grid grew as issues³): the
    page draws a few competitions and columns and counts the rest."""
    many = {i: (f"comp-{i:04d}", f"stage-{i:04d}") for i in range(1, 401)}
    asyncio.run(_seed_many(redis_url, many))
    with _loopback_client(operator_app(settings_for(redis_url))) as client:
        html = client.get("/").text
    assert len(html) < 200_000
    rows = html[html.index('<table class="grid">'): html.index("</table>")].count("<tr>")
    assert rows == 1 + shown.COMPETITIONS
    assert f"… and {400 - shown.COMPETITIONS} more competitions" in html
    assert ">comp-0400<" in html and ">comp-0001<" not in html  # the newest are drawn
    assert "more stages without a column" in html and "other stages" in html


def test_a_cycle_is_drawn_and_marked_however_many_issues_are_left_out(redis_url: str) -> None:
    """#1 (planner) recorded as blocked by #60 (analyzer), which waits for every planner
    issue: a cycle R7 would see. Both are drawn, red, though most issues are not."""
    asyncio.run(_seed_many(redis_url, _one_competition(500), blocked_by={1: 160}))
    with _loopback_client(operator_app(settings_for(redis_url))) as client:
        html = client.get("/").text
    drawn = html[html.index("<svg"): html.index("</svg>") + 6]
    for number in (1, 160):
        box = re.search(rf'<rect class="issue"[^>]*stroke="([^"]+)"[^>]*/><text[^>]*>#{number}<',
                        drawn)
        assert box is not None and box[1] == svg.CYCLE
    assert 'class="dep native"' in drawn


def _snapshot(number: int, comp: str, stage: str) -> IssueSnapshot:
    return IssueSnapshot(number=number, id=0, title="", body="", state=IssueState.OPEN,
                         state_reason=None, labels=frozenset({agent_label(stage),
                                                              comp_label(comp)}),
                         author="", created_at=datetime.fromtimestamp(0, UTC))


_ISSUES = st.dictionaries(st.integers(1, 12), st.tuples(st.sampled_from(("a", "b")),
                          st.sampled_from(("planner", "analyzer", "executor", "other"))),
                          max_size=12)


@settings(max_examples=300, deadline=None)
@given(issues=_ISSUES, links=st.lists(st.tuples(st.integers(1, 12), st.integers(1, 12)),
                                      max_size=8))
def test_the_drawn_graph_is_r7s_graph(issues: dict[int, tuple[str, str]],
                                      links: list[tuple[int, int]]) -> None:
    """The dashboard finds R7's cycles and edges without building its (n/2)² stage edges:
    on small repositories, exactly those of :class:`reactor.rules.cycles.Deps`."""
    native: dict[int, frozenset[int]] = {}
    for blocked, blocking in links:
        native[blocked] = native.get(blocked, frozenset()) | {blocking}
    order = ("planner", "analyzer", "executor")
    recalled = {n: memory.Recalled("idle", comp, stage) for n, (comp, stage) in issues.items()}
    r7 = Deps.build([_snapshot(n, c, s) for n, (c, s) in issues.items()],
                    RepoConfig(stages=order), native=native).graph
    groups = shown.group(recalled)
    assert shown.cyclic(recalled, groups, order, native) == in_cycles(r7)
    drawn = shown.picture(recalled, groups, shown.grid(recalled, groups, order), order=order,
                          native=native, link=lambda n: None)
    assert {n.number for n in drawn.nodes} == set(issues)
    assert {(e.waiter, e.waited): e.sources for e in drawn.edges} == {
        (u, v): tuple(str(s) for s in r7.edges[u, v]["sources"]) for u, v in r7.edges}


class _Counting:
    """A page render that counts its calls and notes the thread each ran on."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def __call__(self, data: str) -> str:
        self.threads.append(threading.get_ident())
        return f"<p>{data}</p>"


def test_viewers_at_once_share_one_render_made_off_the_event_loop() -> None:
    render = _Counting()
    cache: dashboard.PageCache[str] = dashboard.PageCache(render, period=3600)
    reads = 0

    async def read() -> str:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0)
        return "data"

    async def viewers() -> list[dashboard.Rendered]:
        first = await asyncio.gather(*(cache.get(read) for _ in range(5)))
        return [*first, await cache.get(read)]  # within the period: the same render

    pages = asyncio.run(viewers())
    assert reads == 1 and len(render.threads) == 1
    assert {p.body for p in pages} == {"<p>data</p>"}
    assert render.threads[0] != threading.get_ident()  # asyncio.run's loop runs on this one


def test_a_failed_read_fails_its_viewers_and_the_next_one_reads_again() -> None:
    render = _Counting()
    cache: dashboard.PageCache[str] = dashboard.PageCache(render, period=3600)
    answers: Iterator[Exception | str] = iter([redis.ConnectionError("away"), "back"])

    async def read() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def viewers() -> str:
        with pytest.raises(redis.ConnectionError):
            await cache.get(read)
        return (await cache.get(read)).body

    assert asyncio.run(viewers()) == "<p>back</p>"
