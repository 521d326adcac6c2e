"""``reactor graph`` as users run it: the real command against the real stack, reading the
dependency graph afresh — stage order, ``depends on``/``blocked by`` in bodies and GitHub's
native "blocked by" links, across competitions — with the cycle the reactor refused (R7)
drawn as such."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.conftest import Stack
from tests.test_cli import clean_env, reactor
from tests.test_status_cli import Repo, judged, run


def test_the_graph_shows_every_kind_of_dependency_and_the_cycle_refused(
    stack: Stack, tmp_path: Path,
) -> None:
    with stack.sandbox.client() as client:
        repo = Repo(client, "graphs")
        planner = repo.open("titanic", "planner")
        analyzer = repo.open("titanic", "analyzer")
        house = repo.open("house", "planner", body=f"Blocked by #{analyzer}.")
        blocking = repo.call("GET", f"/issues/{planner}", None)["id"]
        repo.call("POST", f"/issues/{house}/dependencies/blocked_by", {"issue_id": blocking})
        judged(stack, lambda r: r.issue == str(house) and r.action == "opened", "the opening")
        repo.call("PATCH", f"/issues/{planner}", {"body": f"depends on #{analyzer}"})
        judged(stack, lambda r: r.issue == str(planner) and r.rule == "R7", "the cycle")

    done = run(stack, "graph", "--repo", "acme/graphs", "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    drawn = orjson.loads(done.stdout)
    assert drawn["repo"] == "acme/graphs"
    nodes = {n["number"]: n for n in drawn["nodes"]}
    assert {n: (v["comp"], v["stage"]) for n, v in nodes.items()} == {
        planner: ("titanic", "planner"), analyzer: ("titanic", "analyzer"),
        house: ("house", "planner")}
    assert [n for n, v in nodes.items() if v["in_cycle"]] == [planner, analyzer]
    assert nodes[planner]["blocked"] and not nodes[house]["blocked"]
    edges = {(e["from"], e["to"]): e["sources"] for e in drawn["edges"]}
    assert edges == {
        (analyzer, planner): ["stage"],
        (house, analyzer): ["body"],
        (house, planner): ["native"],
        (planner, analyzer): ["body"],
    }
    assert "reading competition house (1/2)" in done.stderr
    assert "blocked-by links of 3 open agent issues" in done.stderr

    dot = run(stack, "graph", "--repo", "acme/graphs", cwd=tmp_path)
    assert dot.returncode == 0, dot.stderr
    assert dot.stdout.startswith("digraph dependencies {")
    assert f'{planner} -> {analyzer} [label="body" style=dashed];' in dot.stdout
    assert f'{house} -> {planner} [label="native" style=solid];' in dot.stdout
    assert f'{analyzer} -> {planner} [label="stage" style=dotted];' in dot.stdout
    looks = {line.split()[0]: line for line in dot.stdout.splitlines() if "[label=" in line
             and "->" not in line}
    assert looks[str(planner)].endswith('color="red" style=bold];')  # in a cycle, blocked
    assert looks[str(analyzer)].endswith('color="red"];')
    assert looks[str(house)].endswith('"];')  # in no cycle

    svg = run(stack, "graph", "--repo", "acme/graphs", "--format", "svg", cwd=tmp_path)
    assert svg.returncode == 0, svg.stderr
    picture = svg.stdout.strip()
    assert picture.startswith("<svg ") and picture.endswith("</svg>")
    assert picture.count('class="issue"') == 3
    assert 'class="dep native"' in picture and 'class="dep body"' in picture
    assert f'href="{stack.sandbox.url}/acme/graphs/issues/{house}"' in picture


def test_an_unknown_repository_is_one_line_and_a_non_zero_exit(
    stack: Stack, tmp_path: Path,
) -> None:
    done = run(stack, "graph", "--repo", "acme/nowhere", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == (
        "reactor: the App is not installed on acme/nowhere (or it does not exist)\n")


def test_bad_arguments_and_missing_settings_are_one_line(tmp_path: Path) -> None:
    missing = reactor("graph", env=clean_env(), cwd=tmp_path)
    assert missing.returncode == 2 and "--repo" in missing.stderr
    no_app = reactor("graph", "--repo", "acme/x", env=clean_env(), cwd=tmp_path)
    assert no_app.returncode == 1
    assert no_app.stderr == "reactor: APP_ID is not set: give the GitHub App's numeric id\n"
    wrong = reactor("graph", "--repo", "acme/x", "--format", "png", env=clean_env(), cwd=tmp_path)
    assert wrong.returncode == 2 and "invalid choice: 'png'" in wrong.stderr
