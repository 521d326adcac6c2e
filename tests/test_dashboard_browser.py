"""The dashboard in a real headless Chromium, during a run of the real stack.

Web + two worker processes judge agents working in the sandbox: two competitions flow
(planner → analyzer hand-offs), an executor starts before its analyzer completed (R2 revert)
and a "blocked by" link closes a cycle (R7). Chromium then loads the dashboard, its DOM is
checked and a screenshot taken. (The README's picture is taken during ``reactor dev``'s demo:
``tests/test_demo.py``.)

Needs Debian's ``chromium`` package (``apt-get install -y chromium``); skipped without it,
except under ``CI=true``, where its absence fails the tests (:mod:`tests.prerequisites`).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Stack
from tests.prerequisites import missing
from tests.scenarios.conftest import (
    AGENTS,
    Scenario,
    agent_labels,
    next_issue,
    run_planner,
    title,
)
from tests.test_dashboard import CHART, graph_of, operator_app, part, serving, settings_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WINDOW = (1280, 900)
# Headless, and quiet: no background connections this machine's closed network would refuse.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", f"--window-size={WINDOW[0]},{WINDOW[1]}")


def require_chromium() -> str:
    """The Chromium binary; the test is skipped without one (fails under ``CI=true``)."""
    if CHROMIUM is None:
        missing("Debian's chromium is not installed (apt-get install -y chromium): the "
                "dashboard is checked in a real browser")
    return CHROMIUM


@pytest.fixture(autouse=True)
def _chromium_first() -> None:
    """Every test here needs Chromium: find out before the stack is started."""
    require_chromium()


def chromium(tmp_path: Path, *args: str) -> str:
    """Run Chromium once with a new, empty profile; its standard output."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    binary = require_chromium()
    done = subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, timeout=90, check=True)
    return done.stdout.decode()


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


@pytest.fixture
def scenario(stack: Stack) -> Iterator[Scenario]:
    """``demo/agents`` (the repository ``reactor dev`` shows) with the App and config."""
    with stack.sandbox.client() as client:
        created = client.create_repo("demo", "agents")
        s = Scenario(stack, client, "demo", "agents", int(created["installation_id"]))
        try:
            s.write_config()
            s.idle()
            yield s
            assert s.failed_jobs() == [], s.failed_jobs()
        finally:
            s._rq.close()


def play(s: Scenario) -> dict[str, int]:
    """Two competitions at work, one R2 mistake and one R7 cycle; returns issue numbers."""
    found = {"titanic planner": run_planner(s, "titanic")}
    found["titanic analyzer"] = next_issue(s, "titanic", "analyzer")["number"]
    s.add_labels(AGENTS["analyzer"], found["titanic analyzer"], "status:running")
    s.remove_label(AGENTS["analyzer"], found["titanic analyzer"], "status:starting")
    s.idle()
    found["house planner"] = run_planner(s, "house", task="price the house")
    found["house analyzer"] = next_issue(s, "house", "analyzer")["number"]
    found["house executor"] = s.open_issue(AGENTS["executor"], title("house", "executor"),
                                           sorted(agent_labels("house", "executor")))
    s.idle()
    s.add_labels(AGENTS["executor"], found["house executor"], "status:starting")  # R2
    analyzer_id = s.issue(found["house analyzer"])["id"]
    s.call(AGENTS["planner"], "POST", f"/issues/{found['house planner']}/dependencies/"
           "blocked_by", json={"issue_id": analyzer_id})  # R7: the planner waits on its analyzer
    s.settle()
    return found


def test_the_dashboard_renders_in_chromium_and_is_screenshotted(
        scenario: Scenario, tmp_path: Path) -> None:
    found = play(scenario)
    repo = f"{scenario.owner}/{scenario.name}"
    with serving(operator_app(settings_for(scenario.stack.redis_url))) as url:
        dom = chromium(tmp_path, "--dump-dom", f"{url}/")
        shot = tmp_path / "dashboard.png"
        chromium(tmp_path, f"--screenshot={shot}", f"{url}/")
    assert f">{repo}<" in dom
    grid = part(dom, '<table class="grid">')
    for text in ("titanic", "house", ">planner<", ">analyzer<", ">executor<",
                 f">#{found['titanic planner']} completed<",
                 f">#{found['titanic analyzer']} running<",
                 f">#{found['house analyzer']} starting<",
                 f">#{found['house executor']} idle<"):
        assert text in grid, (text, grid)
    link = f'{scenario.stack.sandbox.url}/{repo}/issues/{found["house executor"]}'
    assert f'href="{link}"' in grid or f"/{repo}/issues/{found['house executor']}" in grid
    # R7 labelled the house planner reactor:blocked: flagged in the grid, and house is stuck
    assert re.search(rf">#{found['house planner']} completed</a><span class=\"flag\">"
                     r"blocked</span>", grid), grid
    stuck = part(dom, '<table class="stuck">')
    assert "<th>house</th>" in stuck and "<th>titanic</th>" not in stuck, stuck
    assert f"#{found['house planner']}</a> (planner) is labelled reactor:blocked" in stuck
    # the last hour: decisions per minute, and the two hand-offs' latencies
    charts = [part(dom, CHART, "</svg>")]
    charts.append(part(dom[dom.index(charts[0]) + len(charts[0]):], CHART, "</svg>"))
    assert '<rect class="bar k-undone"' in charts[0] and '<rect class="bar k-routine"' in charts[0]
    assert charts[1].count('<circle class="handoff"') == 2, charts[1]
    assert "Hand-off latency: 2 hand-offs" in dom
    # recent decisions: the R2 revert and the R7 refusal stand out
    audit = part(dom, '<table class="audit">')
    assert re.search(r'<tr class="k-undone"[^>]*>.*?<td>R2</td><td>executor-bot</td><td '
                     r'class="detail"><span class="tag k-undone">revert</span> R2 revert',
                     audit), audit[:3000]
    assert re.search(r'<span class="tag k-undone">cycle</span> R7 refused: cycle', audit)
    drawn = graph_of(dom)
    assert len(re.findall(r'<rect class="issue"', drawn)) == len(found)
    for number in found.values():
        assert f">#{number}</text>" in drawn
    assert drawn.count('stroke="#cf222e"') >= 3  # the cycle: two boxes and a line, in red
    assert png_size(shot) == WINDOW and shot.stat().st_size > 20_000
