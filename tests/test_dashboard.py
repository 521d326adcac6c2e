"""The dashboard (``GET /``): its SVG layout, the page drawn from Redis, what it tells at a
glance (closed issues, folded and marked decisions, the last hour, stuck competitions), and
who may read it.

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
from datetime import UTC, datetime, timedelta

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

from reactor.core import comments
from reactor.core.actions import Rule
from reactor.core.config import RepoConfig
from reactor.core.labels import agent_label, comp_label
from reactor.core.rules.cycles import Deps, in_cycles
from reactor.core.view import IssueSnapshot, IssueState, Repo
from reactor.entrypoints.web import create_app
from reactor.ops import access, metrics, svg
from reactor.ops.dashboard import boards, panels, pulse, recent, shown, standing
from reactor.ops.dashboard import page as dashboard
from reactor.ops.dashboard.recent import Kind
from reactor.process.settings import Settings
from reactor.store import audit, keys, memory, tenants
from reactor.store.audit import AuditRecord
from reactor.store.counters import AuditLog
from reactor.store.deliveries import Delivery
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


def part(html: str, start: str, end: str = "</table>") -> str:
    """``html`` from ``start`` to the first ``end`` after it (``end`` included)."""
    at = html.index(start)
    return html[at: html.index(end, at) + len(end)]


GRAPH = '<svg xmlns="http://www.w3.org/2000/svg" class="graph"'
CHART = '<svg xmlns="http://www.w3.org/2000/svg" class="chart"'


def graph_of(html: str) -> str:
    """The dependency picture's SVG element in ``html``."""
    return part(html, GRAPH, "</svg>")


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
    grid = part(html, '<table class="grid">')
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
    drawn = graph_of(html)
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


async def _forget_widgets(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await tenants.forget_installation(client, 7, [Repo("acme", "widgets", REPO_ID)],
                                          now=datetime.now(UTC))
    finally:
        await client.aclose()


def test_a_forgotten_repository_is_left_out_until_a_record_names_it_again(seeded: str) -> None:
    """Issue 17, finding 8: the App uninstalled, the reactor forgot the repository, but its
    audit records stay (for the operator: ``reactor audit``), and the page drew a board from
    them. Records made since (the App given the repository again) bring it back."""
    asyncio.run(_forget_widgets(seeded))
    with _loopback_client(operator_app(settings_for(seeded))) as client:
        html = client.get("/").text
    assert "acme/widgets" not in html and "No repository seen yet" in html
    time.sleep(0.01)  # the next record's stream id is a later millisecond
    asyncio.run(_record(seeded, AuditRecord(
        at=_iso(datetime.now(UTC)), delivery="g-3", event="issues", action="opened",
        outcome="accepted", repo="acme/widgets", issue="6", detail="no rule broken")))
    with _loopback_client(operator_app(settings_for(seeded))) as client:
        assert ">acme/widgets<" in client.get("/").text


async def _record(redis_url: str, record: AuditRecord) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await AuditLog(client).record(record)
    finally:
        await client.aclose()


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
    from reactor.core.errors import ConfigError

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
    grid = part(html, '<table class="grid">')
    assert grid.count('class="pill') == 5 * shown.PER_CELL
    assert grid.count(f"… and {200 - shown.PER_CELL} more") == 5
    assert grid.count(f'<a class="pill s-error" href="{HTML_URL}/issues/') == 5 * shown.PER_CELL
    drawn = well_formed(graph_of(html))
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
    rows = part(html, '<table class="grid">').count("<tr>")
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
    drawn = graph_of(html)
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
    on small repositories, exactly those of :class:`reactor.core.rules.cycles.Deps`."""
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


# -- the truth at a glance (issue 19, item 6) ---------------------------------------------------

NAMING = {"repository": {"id": REPO_ID, "full_name": "acme/widgets", "html_url": HTML_URL}}
GLANCE_CONFIG = ("stages: [planner, analyzer, executor]\n"
                 "timeouts: {planner: 30m, analyzer: 1h, executor: 1h}\nstart_timeout: 10m\n")
Remembered = tuple[str, str, str | None, datetime | None]  # comp, stage, status, since


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def record(at: datetime, **fields: str) -> AuditRecord:
    """An audit record of acme/widgets as the reactor writes it (applied, unless told)."""
    base = {"at": _iso(at), "delivery": "g-1", "event": "issues", "outcome": "applied",
            "repo": "acme/widgets"}
    return AuditRecord(**{**base, **fields})


async def _seed_glance(redis_url: str, issues: Mapping[int, Remembered],
                       records: list[AuditRecord], *,
                       stored: Mapping[str, tuple[float, dict[str, object]]] | None = None,
                       config: str = GLANCE_CONFIG) -> None:
    """``issues`` remembered as the reactor writes them, ``records`` appended oldest first,
    and a stored delivery (naming the repository) for each delivery they name; ``stored``
    gives some of those an arrival time and payload of their own."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await memory.remember(
            client, REPO_ID, identities={n: (c, s) for n, (c, s, _, _) in issues.items()},
            statuses={n: st for n, (_, _, st, _) in issues.items() if st},
            entered={n: _iso(t) for n, (_, _, _, t) in issues.items() if t})
        await client.set(keys.config_good(REPO_ID), config)
        given_ = dict(stored or {})
        for guid in {r.delivery for r in records} | set(given_):
            received, payload = given_.get(guid, (time.time(), {}))
            delivery = Delivery(guid=guid, event="issues", received_at=received,
                                body=orjson.dumps({**NAMING, **payload}))
            await client.set(keys.delivery(guid), delivery.header() + delivery.body)
        log = AuditLog(client)
        for one in records:
            await log.record(one)
    finally:
        await client.aclose()


def _page(redis_url: str) -> str:
    with _loopback_client(operator_app(settings_for(redis_url))) as client:
        response = client.get("/")
    assert response.status_code == 200
    return str(response.text)


def _closed(issue: int, reason: str) -> dict[str, object]:
    return {"action": "closed", "issue": {"number": issue, "state": "closed",
                                          "state_reason": reason}}


def test_closed_issues_show_as_closed_and_how(redis_url: str) -> None:
    """The demo's duplicate showed as "#2 unknown" (grid) and "idle" (graph): the memory
    keeps statuses, not closures. The records tell them: the reactor's ``CloseIssue`` (how:
    by its rule) and the ``closed`` deliveries (how: their payload's ``state_reason``); a
    ``reopened`` one after a close opens the issue again."""
    now = datetime.now(UTC)
    t = now - timedelta(minutes=5)
    issues: dict[int, Remembered] = {
        1: ("titanic", "planner", "completed", t), 2: ("titanic", "planner", None, None),
        3: ("titanic", "analyzer", "running", t), 4: ("titanic", "analyzer", "idle", t),
        5: ("titanic", "executor", "completed", t)}
    records = [
        record(t, issue="2", rule="R5", actor="planner-bot", delivery="o-2",
               detail="comp:titanic CloseIssue: #2 duplicates #1"),
        record(t, issue="2", rule="R10", actor="reactor[bot]", delivery="e-2", action="closed",
               outcome="skipped", detail="the reactor's own write"),  # no payload read: R5
        record(t, issue="3", actor="analyzer-bot", delivery="c-3", action="closed",
               outcome="accepted", detail="comp:titanic no rule broken"),
        record(t, issue="4", actor="analyzer-bot", delivery="c-4", action="closed",
               outcome="accepted", detail="comp:titanic no rule broken"),
        record(t, issue="4", actor="analyzer-bot", delivery="r-4", action="reopened",
               outcome="accepted", detail="comp:titanic no rule broken"),
        record(t, issue="5", actor="executor-bot", delivery="c-5", action="closed",
               outcome="accepted", detail="comp:titanic no rule broken"),
    ]
    stored: dict[str, tuple[float, dict[str, object]]] = {
        "c-3": (time.time(), _closed(3, "not_planned")),
        "c-4": (time.time(), _closed(4, "completed")),
        "c-5": (time.time(), _closed(5, "completed")),
        "e-2": (time.time(), {"action": "closed", "issue": "not an object"})}
    asyncio.run(_seed_glance(redis_url, issues, records, stored=stored))
    html = _page(redis_url)
    grid = part(html, '<table class="grid">')
    for shown_as in ('s-closed" href="{}/issues/2" target="_blank" rel="noreferrer">'
                     "#2 closed · duplicate<",
                     's-closed" href="{}/issues/3" target="_blank" rel="noreferrer">'
                     "#3 closed · not planned<",
                     's-closed" href="{}/issues/5" target="_blank" rel="noreferrer">'
                     "#5 closed · completed<",
                     's-idle" href="{}/issues/4" target="_blank" rel="noreferrer">#4 idle<'):
        assert shown_as.format(HTML_URL) in grid, (shown_as, grid)
    assert "unknown" not in grid
    assert grid.index(">#1 completed<") < grid.index(">#2 closed")  # closed ones come last
    drawn = graph_of(html)
    box = re.search(r'<rect class="issue"[^>]*stroke-dasharray="4 3"/><text[^>]*>#2</text>'
                    r'<text[^>]*>closed · duplicate</text>', drawn)
    assert box is not None, drawn
    assert ">closed · not planned<" in drawn and ">idle<" in drawn


def test_identical_decisions_are_folded_into_one_row_with_a_count(redis_url: str) -> None:
    """The demo listed "accepted starting → running by @retro-bot" three times at one second
    (the note and each delivery of the two-request move), and a revert three times (its
    two actions and its delivery's own record). Now each is one row; repeats in a row (a
    revert war) are one row too, with their count and since when."""
    t = datetime.now(UTC) - timedelta(minutes=3)
    moved = "comp:titanic accepted starting → running by @retro-bot"
    records = [record(t, issue="10", rule="R1", actor="retro-bot", outcome="noted",
                      delivery="d-b", deliveries="d-a", detail=moved)]
    records += [record(t, issue="10", rule="R1", actor="retro-bot", outcome="noted",
                       delivery=g, action="labeled", detail=moved) for g in ("d-a", "d-b")]
    revert = "R4 revert: changed the status of #7, but only @executor-bot may"
    for i, at in enumerate((t + timedelta(seconds=20), t + timedelta(seconds=40))):
        guid = f"m-{i}"
        records += [
            record(at, issue="7", rule="R4", actor="mallory", delivery=guid,
                   detail="comp:house RemoveLabel: revert: status:completed was not allowed"),
            record(at, issue="7", rule="R4", actor="mallory", delivery=guid,
                   detail=f"comp:house Comment: {revert}"),
            record(at, issue="7", rule="R4", actor="mallory", delivery=guid, action="labeled",
                   detail=f"comp:house revert: status:completed was not allowed; {revert}")]
    issues: dict[int, Remembered] = {7: ("house", "executor", "running", t),
                                     10: ("titanic", "retrospective", "running", t)}
    asyncio.run(_seed_glance(redis_url, issues, records))
    audit = part(_page(redis_url), '<table class="audit">')
    assert audit.count("accepted starting → running by @retro-bot") == 1
    assert re.search(r"accepted starting → running by @retro-bot <span class=\"count\" "
                     r'title="3 records, 2 deliveries">×3</span>', audit), audit
    assert audit.count(revert) == 1 and "was not allowed" not in audit
    row = re.search(r'<tr class="k-undone"[^>]*><td>(?P<when>.*?)</td>.*?</tr>', audit)
    assert row is not None
    assert f">from {_iso(t + timedelta(seconds=20))[11:19]}<" in row["when"]
    assert 'title="2 records, 2 deliveries">×2</span>' in row[0]
    assert ">Comment · RemoveLabel<" in row[0]


def test_undone_changes_and_escalations_stand_out_past_routine_ones(redis_url: str) -> None:
    """Reverts, closures, timeouts and escalations are marked and coloured, routine
    acceptances recede, and the pressing ones stay listed however many routine ones follow."""
    t = datetime.now(UTC) - timedelta(minutes=30)
    records = [
        record(t, issue="1", rule="R3", actor="analyzer-bot", delivery="v-1",
               detail="comp:titanic Comment: R3 revert: changed the `comp:` label of #1"),
        record(t, issue="2", rule="R5", actor="planner-bot", delivery="v-2",
               detail="comp:titanic CloseIssue: #2 duplicates #1"),
        record(t, issue="3", rule="R4", actor="mallory", delivery="v-3",
               detail="comp:house Escalate: reverted 3 times within 1h"),
        record(t, issue="3", rule="R4", actor="mallory", delivery="v-3",
               detail="comp:house Comment: R4 escalated: changed the status of #3"),
        record(t, issue="4", rule="R8", delivery="timer", event="timer",
               detail="comp:house Comment: R8 running past 1h"),
    ]
    records += [record(t + timedelta(seconds=i + 1), issue=str(20 + i), rule="R1",
                       actor="planner-bot", outcome="noted", delivery=f"n-{i}",
                       detail=f"comp:titanic accepted idle → starting by @bot-{i}")
                for i in range(30)]
    issues: dict[int, Remembered] = {n: ("titanic", "planner", "idle", t) for n in range(1, 5)}
    asyncio.run(_seed_glance(redis_url, issues, records))
    html = _page(redis_url)
    audit = part(html, '<table class="audit">')
    rows = re.findall(r'<tr class="(k-[a-z]+)"[^>]*>(.*?)</tr>', audit)
    marked = {kind: [r for k, r in rows if k == kind] for kind in {k for k, _ in rows}}
    assert len(marked["k-escalated"]) == 1
    assert '<span class="tag k-escalated">escalated</span> R4 escalated' in \
        marked["k-escalated"][0]
    tags = sorted(re.search(r'<span class="tag k-undone">(\w+)</span>', r)[1]  # type: ignore[index]
                  for r in marked["k-undone"])
    assert tags == ["closed", "revert", "timeout"]
    assert len(marked["k-routine"]) == panels.ROWS_SHOWN
    assert "… and 16 older decisions not listed" in html
    assert ".audit tr.k-undone td{background:" in html  # they are coloured


@pytest.mark.parametrize(("rule", "outcome", "actions", "reason", "kind", "tag"), [
    ("R4", "applied", ("Escalate", "Comment"), "R4 escalated: changed the status of #3",
     Kind.ESCALATED, "escalated"),
    ("R2", "noted", (), "needs a human; not reverted: moved #3 early", Kind.ESCALATED,
     "escalated"),
    ("R9", "applied", ("Comment",), "R9 hand-off failed and undone", Kind.ESCALATED,
     "escalated"),
    ("R9", "applied", ("Comment",), "R9 hand-off to #8 blocked", Kind.ESCALATED, "escalated"),
    ("R6", "applied", ("CloseIssue", "Comment"), "R6 close: opened an earlier stage",
     Kind.UNDONE, "closed"),
    ("R2", "applied", ("AddLabel",), "repair: restore status:running", Kind.UNDONE,
     "repaired"),
    ("R7", "applied", ("AddLabel",), "closes the dependency cycle #3 → #4 → #3", Kind.UNDONE,
     "cycle"),
    ("R9", "applied", ("RemoveLabel",), "undo: hand-off from #1", Kind.UNDONE, "undone"),
    ("R3", "applied", ("RemoveLabel",), "revert: comp:escalated-duplicate was not allowed",
     Kind.UNDONE, "revert"),  # a label's name says nothing of the decision
    ("config", "rejected", (), "reactor.yml: stages: not a list", Kind.PROBLEM, "rejected"),
    ("R9", "applied", ("AddLabel", "Comment"), "R9 hand-off from #7", Kind.HANDOFF, "hand-off"),
    ("R9", "noted", (), "competition titanic done", Kind.HANDOFF, "done"),
    ("R1", "noted", (), "accepted idle → starting by @planner-bot", Kind.ROUTINE, ""),
])
def test_each_decision_is_marked_by_what_it_did(rule: str, outcome: str,
                                                actions: tuple[str, ...], reason: str,
                                                kind: Kind, tag: str) -> None:
    assert recent.classify(rule, outcome, actions, reason) == (kind, tag)


def test_decisions_per_minute_count_each_delivery_once_by_its_most_pressing_kind() -> None:
    """One bar per minute of the last hour: a delivery counts once (its note, its own record
    and its actions' records all name it), at its first judgement; a timer's actions count
    once per issue; what is older than the hour, or only echoed or parked, does not."""
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    ago = [now - timedelta(minutes=m) for m in (50.5, 10.5, 10.2, 90)]
    records = [  # newest first, as read
        record(ago[3], delivery="old", outcome="accepted", detail="no rule broken"),
        record(ago[2], delivery="timer", event="timer", issue="4", rule="R8",
               detail="comp:x AddLabel: `running` for longer than 1h"),
        record(ago[2], delivery="timer", event="timer", issue="4", rule="R8",
               detail="comp:x Comment: R8 running past 1h"),
        record(ago[1], delivery="v", rule="R2", detail="comp:x Comment: R2 revert: early"),
        record(ago[1], delivery="v", rule="R2", detail="comp:x R2 revert: early"),
        record(ago[1], delivery="w", outcome="noted", rule="R1", detail="comp:x accepted"),
        record(ago[0], delivery="a", outcome="accepted", detail="comp:x no rule broken"),
        record(ago[0], delivery="b", outcome="noted", rule="R1", deliveries="a",
               detail="comp:x accepted"),
        record(ago[0], delivery="e", outcome="skipped", rule="R10", detail="own write"),
        record(ago[0], delivery="p", outcome="parked", detail="judged again later"),
    ][::-1]
    minutes = pulse.per_minute(records, now=now)
    assert len(minutes) == 60
    assert minutes[9] == {Kind.ROUTINE: 2}
    assert minutes[49] == {Kind.UNDONE: 2, Kind.ROUTINE: 1}  # the revert and the timer
    assert sum(sum(m.values()) for m in minutes) == 5


def test_the_last_hour_is_drawn_with_decisions_per_minute_and_hand_off_latency(
        redis_url: str) -> None:
    """Hand-off latency runs from the arrival (at the web process) of the webhook that said
    the stage completed to the hand-off's record; both charts are inline SVG."""
    now = datetime.now(UTC)
    done = now - timedelta(minutes=5)
    records = [
        record(now - timedelta(minutes=40.5), delivery="a", outcome="accepted", issue="9",
               detail="comp:titanic no rule broken"),
        record(now - timedelta(minutes=20.5), issue="9", rule="R2", actor="executor-bot",
               delivery="v", detail="comp:titanic Comment: R2 revert: started early"),
        record(done, issue="1", rule="R9", actor="planner-bot", delivery="done-1",
               detail="comp:titanic CreateIssue: hand-off from #1 (planner) to analyzer"),
        record(done, issue="1", rule="R9", actor="planner-bot", delivery="done-1",
               detail="comp:titanic Comment: R9 hand-off from #1"),
        record(done, issue="1", rule="R9", actor="planner-bot", delivery="done-1",
               action="labeled", label="status:completed",
               detail="comp:titanic R9 hand-off from #1"),
    ]
    issues: dict[int, Remembered] = {1: ("titanic", "planner", "completed", done),
                                     2: ("titanic", "analyzer", "starting", done),
                                     9: ("titanic", "executor", "idle", done)}
    arrived = done.timestamp() - 2.5
    asyncio.run(_seed_glance(redis_url, issues, records,
                             stored={"done-1": (arrived, {"action": "labeled"})}))
    html = _page(redis_url)
    assert "Decisions per minute: 3 in the last hour (1 undone, 0 escalated)" in html
    assert "Hand-off latency: 1 hand-off, median 2.5 s, max 2.5 s" in html
    bars = part(html, CHART, "</svg>")
    well_formed(bars)
    assert bars.count('<rect class="bar k-undone"') == 1
    assert bars.count('<rect class="bar k-handoff"') == 1
    assert bars.count('<rect class="bar k-routine"') == 1
    latency = part(html[html.index(bars) + len(bars):], CHART, "</svg>")
    well_formed(latency)
    assert latency.count('<circle class="handoff"') == 1
    assert (f"#1 (titanic) handed off at {done:%H:%M:%S} UTC, 2.5 s after it completed"
            in latency)


def test_stuck_competitions_are_listed_with_their_reasons(redis_url: str) -> None:
    """Stuck, the most pressing first: a human is needed (needs-human), then blocked or past
    its timeout, then waiting on an agent (timeout status, a hand-off that never started),
    then nothing changed for long; competitions done or at work are not listed."""
    now = datetime.now(UTC)
    ago = {m: now - timedelta(minutes=m) for m in (1, 5, 10, 20, 90, 120, 180)}
    issues: dict[int, Remembered] = {
        1: ("late", "planner", "completed", ago[180]), 2: ("late", "analyzer", "running", ago[90]),
        3: ("human", "planner", "running", ago[5]), 4: ("blocked", "planner", "starting", ago[1]),
        5: ("dropped", "planner", "completed", ago[10]),
        6: ("waiting", "planner", "timeout", ago[20]),
        7: ("<i>quiet</i>", "planner", "idle", ago[120]),
        8: ("done", "planner", "completed", ago[120]), 9: ("done", "analyzer", "completed",
                                                             ago[120]),
        10: ("done", "executor", "completed", ago[120]),
        11: ("moving", "planner", "running", ago[5]),
        12: ("unblocked", "planner", "starting", ago[1]),
        13: ("paused", "planner", "running", ago[1]),
    }
    records = [
        record(ago[5], issue="3", rule="R4", actor="mallory", delivery="x-3",
               detail="comp:human Escalate: reverted 3 times within 1h"),
        record(ago[1], issue="4", rule="R10", delivery="x-4", action="labeled",
               label="reactor:blocked", outcome="skipped", detail="the reactor's own write"),
        record(ago[1], issue="12", rule="R10", delivery="x-12", action="labeled",
               label="reactor:blocked", outcome="skipped", detail="the reactor's own write"),
        record(ago[1], issue="12", rule="R10", delivery="y-12", action="unlabeled",
               label="reactor:blocked", outcome="skipped", detail="the reactor's own write"),
        record(ago[1], issue="13", rule="R10", delivery="x-13", action="labeled",
               label="reactor:paused", outcome="skipped", detail="the reactor's own write"),
    ]
    asyncio.run(_seed_glance(redis_url, issues, records))
    html = _page(redis_url)
    stuck = part(html, '<table class="stuck">')
    listed = re.findall(r"<tr><th>(.*?)</th>", stuck)
    assert listed == ["human", "paused", "blocked", "late", "dropped", "waiting",
                      "&lt;i&gt;quiet&lt;/i&gt;"]
    link = f'<a href="{HTML_URL}/issues/{{}}" target="_blank" rel="noreferrer">#{{}}</a>'
    for number, reason in (
            (3, " (planner) is labelled reactor:needs-human: the reactor stopped acting"),
            (4, " (planner) is labelled reactor:blocked: it closes a dependency cycle"),
            (13, " (planner) is labelled reactor:paused: an agent went over its budget"),
            (2, " (analyzer) running for 1h 30m, past its 1h timeout"),
            (5, " (planner) completed 10m ago, but no analyzer issue started"),
            (6, " (planner) in timeout for 20m: its agent or a maintainer restarts it")):
        assert link.format(number, number) + reason in stuck, (number, stuck)
    assert "no change for 2h; stage planner has not completed" in stuck
    grid = part(html, '<table class="grid">')
    assert '#3 running</a><span class="flag">needs-human</span>' in grid
    assert "#12 starting</a><span" not in grid


def test_a_competition_nothing_holds_up_is_not_stuck() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    issues = {1: memory.Recalled("completed", "c", "planner", _iso(now - timedelta(seconds=20))),
              2: memory.Recalled("idle", "c", "planner", _iso(now - timedelta(hours=3)))}
    known = standing.Known(closed={2: "duplicate"}, flags={2: frozenset({standing.BLOCKED})},
                           seen={})
    config = RepoConfig(stages=("planner", "analyzer"))
    found = standing.stuck(issues, shown.group(issues), config=config, known=known, now=now)
    assert found == []  # a fresh completion (hand-off grace), a closed duplicate's label
    later = standing.stuck(issues, shown.group(issues), config=config, known=known,
                           now=now + standing.HANDOFF_GRACE)
    assert [r.text for s in later for r in s.reasons] == [
        "#1 (planner) completed 80s ago, but no analyzer issue started"]


def test_the_audit_stream_is_read_newest_first_and_bounded(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The newest RECENT_RECORDS whatever their age, then on back to an hour ago, at most
    HOUR_RECORDS in all, in pages: never the whole stream. When the bound cuts the hour
    short, the page says how far back the records read reach."""
    monkeypatch.setattr(boards, "RECENT_RECORDS", 5)
    monkeypatch.setattr(boards, "HOUR_RECORDS", 12)
    monkeypatch.setattr(audit, "PAGE", 4)
    now = datetime.now(UTC)
    asyncio.run(_seed_glance(redis_url, {1: ("titanic", "planner", "idle", now)}, []))
    client = redis.Redis.from_url(redis_url)

    def add(minutes_ago: float, n: int) -> None:
        moment = now - timedelta(minutes=minutes_ago)
        millis = int(moment.timestamp() * 1000)
        client.xadd(keys.AUDIT, {"at": _iso(moment), "delivery": "g-1", "event": "issues",
                                 "outcome": "accepted", "repo": "acme/widgets",
                                 "label": f"{minutes_ago}-{n}"}, id=f"{millis}-{n}")

    async def read() -> list[str]:
        async_client = redis.asyncio.Redis.from_url(redis_url)
        try:
            records = await audit.newest(async_client, at_least=boards.RECENT_RECORDS,
                                         since=now - pulse.HOUR, at_most=boards.HOUR_RECORDS)
            return [r.label for r in records]
        finally:
            await async_client.aclose()

    for n in range(8):
        add(120, n)  # two hours old
    for n in range(3):
        add(30, n)
    assert asyncio.run(read()) == ["30-2", "30-1", "30-0", "120-7", "120-6"]
    assert "The records read reach back" not in _page(redis_url)
    for n in range(20):
        add(10, n)
    assert asyncio.run(read()) == [f"10-{n}" for n in range(19, 7, -1)]
    oldest = now - timedelta(minutes=10)
    assert f"The records read reach back to {oldest:%H:%M:%S} only" in _page(redis_url)
    client.close()
