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
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import orjson
import pytest
import redis
import redis.asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.testclient import TestClient

from reactor import comments, dashboard, metrics, svg
from reactor.actions import Rule
from reactor.settings import Settings
from reactor.store import keys, memory
from reactor.store.audit import AuditLog, AuditRecord
from reactor.store.deliveries import Delivery
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
    local = {"server": ("127.0.0.1", 3000), "client": ("127.0.0.1", 5), "headers": []}
    assert metrics.is_local(local)
    assert metrics.is_local({**local, "server": ("::ffff:127.0.0.1", 3000)})
    assert not metrics.is_local({**local, "client": ("10.0.0.2", 5)})
    assert not metrics.is_local({**local, "server": ("10.0.0.1", 3000)})
    assert not metrics.is_local({**local, "server": None})
    assert not metrics.is_local({**local, "headers": [(b"forwarded", b"for=1.2.3.4")]})
