"""``reactor reconcile`` on the real stack: after a wiped Redis it repairs nothing and
duplicates nothing (GitHub is the source of truth, and the competition carries on); a
hand-off whose webhooks were lost is repaired, once, however often it runs; a stage started
out of order while the web process was down is taken back (R2), from the state alone.

Reconcile leaves an issue changed within the settle window to the webhook path, so each
test lets that window pass before it runs the command, as an operator would."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import redis

from reactor.store import keys
from tests.scenarios.conftest import (
    AGENTS,
    SETTLE_S,
    Scenario,
    agent_labels,
    move_one_request,
    next_issue,
    run_planner,
    stays,
    title,
    wait_until,
)
from tests.test_catchup import start_web

QUIET_S = SETTLE_S + 1.5  # the settle window after GitHub's (second-rounded) updated_at


def reconcile(s: Scenario) -> str:
    """Run the real command; it must succeed. Returns its summary line."""
    assert s.stack.env is not None
    done = subprocess.run(
        [sys.executable, "-m", "reactor", "reconcile", "--repo", f"{s.owner}/{s.name}"],
        env=s.stack.env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done.stdout.strip()


def snapshot(s: Scenario) -> list[tuple[int, str, tuple[str, ...], int]]:
    """Every issue's number, state, labels and App comment count."""
    return [(i["number"], i["state"], tuple(sorted(lab["name"] for lab in i["labels"])),
             len(s.app_comments(i["number"]))) for i in s.issues()]


def test_after_a_wiped_redis_reconcile_changes_nothing_and_the_competition_carries_on(
    scenario: Scenario,
) -> None:
    s, comp = scenario, "titanic"
    run_planner(s, comp)
    analyzer = next_issue(s, comp, "analyzer")["number"]
    s.settle()
    time.sleep(QUIET_S)
    before = snapshot(s)
    client = redis.Redis.from_url(s.stack.redis_url)
    client.flushall()
    summary = reconcile(s)
    assert "repaired: nothing" in summary, summary
    assert snapshot(s) == before
    assert len(list(client.scan_iter("reactor:issue:*"))) == 2  # memory rebuilt from GitHub
    login = AGENTS["analyzer"]
    move_one_request(s, login, analyzer, comp, "analyzer", "running")
    s.idle()
    move_one_request(s, login, analyzer, comp, "analyzer", "completed")
    next_issue(s, comp, "executor")
    s.settle()
    stays(lambda: len(s.agent_issues(comp, "executor")) == 1, what="one executor issue")
    assert [b for b in s.app_comments(analyzer) if "R1" in b or "R2" in b] == []


def test_a_hand_off_whose_webhooks_were_lost_is_repaired_once(scenario: Scenario) -> None:
    s, comp = scenario, "titanic"
    login = AGENTS["planner"]
    planner = s.open_issue(login, title(comp, "planner"), sorted(agent_labels(comp, "planner")))
    s.idle()
    s.add_labels(login, planner, "status:starting")
    s.idle()
    move_one_request(s, login, planner, comp, "planner", "running")
    s.idle()
    s.client.control("POST", "faults", {"webhooks": {"drop": 1.0}})
    try:
        move_one_request(s, login, planner, comp, "planner", "completed")
        s.client.drain()
    finally:
        s.client.control("POST", "faults", {})
    s.settle()
    assert s.agent_issues(comp, "analyzer") == []  # nothing heard of the completion
    assert "1 CreateIssue" in reconcile(s)
    analyzer = wait_until(lambda: s.agent_issues(comp, "analyzer"),
                          what="the analyzer issue created")[0]
    assert "status:starting" in {lab["name"] for lab in analyzer["labels"]}
    s.settle()
    assert "repaired: nothing" in reconcile(s)
    s.settle()
    assert len(s.agent_issues(comp, "analyzer")) == 1
    assert len([b for b in s.app_comments(planner) if "R9 hand-off" in b]) == 1


def test_a_stage_started_out_of_order_while_the_web_was_down_is_taken_back(
    scenario: Scenario, tmp_path: Path,
) -> None:
    """With no memory of the issue and no change to judge, reconcile still finds R2 broken
    in the state: an executor running in a competition with no planner or analyzer."""
    s, comp = scenario, "titanic"
    held = redis.Redis.from_url(s.stack.redis_url)
    held.set(keys.periodic("catchup"), "held by the test", ex=600)  # no redelivery
    web = s.stack.processes.pop(0)
    web.terminate()
    web.wait(timeout=30)
    login = AGENTS["executor"]
    executor = s.open_issue(login, title(comp, "executor"),
                            sorted(agent_labels(comp, "executor")))
    s.add_labels(login, executor, "status:starting")
    move_one_request(s, login, executor, comp, "executor", "running")
    start_web(s.stack, tmp_path / "serve-again.log")
    s.idle()
    time.sleep(QUIET_S)
    summary = reconcile(s)
    assert "1 RemoveLabel" in summary and "1 Comment" in summary, summary
    assert s.labels(executor) == agent_labels(comp, "executor")  # idle: no status label
    [comment] = s.app_comments(executor)
    assert comment.startswith("**R2 stage order**") and "planner" in comment, comment
    s.settle()
    assert "repaired: nothing" in reconcile(s)
    assert s.labels(executor) == agent_labels(comp, "executor")
    assert len(s.app_comments(executor)) == 1
