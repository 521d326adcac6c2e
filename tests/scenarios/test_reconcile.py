"""``reactor reconcile`` on the real stack: after a wiped Redis it repairs nothing and
duplicates nothing (GitHub is the source of truth, and the competition carries on); a
hand-off whose webhooks were lost is repaired, once, however often it runs; and each state
invariant broken while the web process was down — a stage started out of order (R2), two
``status:`` labels (R1), a second ``comp:`` label or an issue opened outside its author's
scopes (R3), an issue of an earlier stage opened by a later stage's agent (R6) — is repaired
from the state alone, with one comment, and a second run finds nothing left to repair.

Reconcile leaves an issue changed within the settle window to the webhook path, so each
test lets that window pass before it runs the command, as an operator would."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from reactor.store import keys
from tests.conftest import stop_group
from tests.scenarios.conftest import (
    AGENTS,
    CONFIG,
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


@contextmanager
def web_down(s: Scenario, tmp_path: Path) -> Iterator[None]:
    """The web process stopped for the block, so that no webhook of what the block does is
    seen, nor redelivered (the catch-up is held); then started again, the reactor idle and
    the settle window past, as an operator would run reconcile."""
    held = redis.Redis.from_url(s.stack.redis_url)
    held.set(keys.periodic("catchup"), "held by the test", ex=600)  # no redelivery
    held.close()
    stop_group(s.stack.processes.pop(0))  # the web process, with its whole group
    yield
    start_web(s.stack, tmp_path / "serve-again.log")
    s.idle()
    time.sleep(QUIET_S)


def repaired_once(s: Scenario, number: int, *, rule: str, repairs: str) -> dict[str, object]:
    """Reconcile repaired ``number`` with ``repairs`` (its summary's words) and one comment
    naming ``rule``; a second run repairs nothing and changes nothing. Returns the issue's
    state after the first run."""
    assert s.app_comments(number) == []  # nothing judged it: the web process saw nothing
    summary = reconcile(s)
    assert summary.endswith(f"repaired: {repairs}"), summary
    after = s.state(number)
    [comment] = s.app_comments(number)
    assert comment.startswith(f"**{rule} "), comment
    s.settle()
    again = reconcile(s)
    assert "repaired: nothing" in again, again
    assert s.state(number) == after
    return after


def test_a_stage_started_out_of_order_while_the_web_was_down_is_taken_back(
    scenario: Scenario, tmp_path: Path,
) -> None:
    """With no memory of the issue and no change to judge, reconcile still finds R2 broken
    in the state: an executor running in a competition with no planner or analyzer."""
    s, comp = scenario, "titanic"
    login = AGENTS["executor"]
    with web_down(s, tmp_path):
        executor = s.open_issue(login, title(comp, "executor"),
                                sorted(agent_labels(comp, "executor")))
        s.add_labels(login, executor, "status:starting")
        move_one_request(s, login, executor, comp, "executor", "running")
    summary = reconcile(s)
    assert "1 RemoveLabel" in summary and "1 Comment" in summary, summary
    assert s.labels(executor) == agent_labels(comp, "executor")  # idle: no status label
    [comment] = s.app_comments(executor)
    assert comment.startswith("**R2 stage order**") and "planner" in comment, comment
    s.settle()
    assert "repaired: nothing" in reconcile(s)
    assert s.labels(executor) == agent_labels(comp, "executor")
    assert len(s.app_comments(executor)) == 1


def test_two_status_labels_set_while_the_web_was_down_are_cut_to_one(
    scenario: Scenario, tmp_path: Path,
) -> None:
    """R1 from the state: a planner issue that shows ``starting`` and ``running`` at once,
    never judged, keeps the later of the two (one move apart, and R2 allows the planner)."""
    s, comp = scenario, "titanic"
    with web_down(s, tmp_path):
        planner = s.open_issue(AGENTS["planner"], title(comp, "planner"), sorted(agent_labels(
            comp, "planner", "status:starting", "status:running")))
    after = repaired_once(s, planner, rule="R1", repairs="1 Comment, 1 RemoveLabel")
    assert after["state"] == "open"
    assert s.labels(planner) == agent_labels(comp, "planner", "status:running")


def test_a_second_comp_label_set_while_the_web_was_down_is_removed(
    scenario: Scenario, tmp_path: Path,
) -> None:
    """R3 from the state: with no memory of the issue, the competition its title names
    stays and the other ``comp:`` label goes."""
    s, comp = scenario, "titanic"
    with web_down(s, tmp_path):
        planner = s.open_issue(AGENTS["planner"], title(comp, "planner"), sorted(agent_labels(
            comp, "planner", "comp:lusitania")))
    after = repaired_once(s, planner, rule="R3", repairs="1 Comment, 1 RemoveLabel")
    assert after["state"] == "open"
    assert s.labels(planner) == agent_labels(comp, "planner")


def test_an_issue_opened_outside_its_authors_scopes_while_the_web_was_down_is_closed(
    scenario: Scenario, tmp_path: Path,
) -> None:
    """R3 from the state: the planner agent, scoped to lusitania, opened a titanic issue
    the reactor never judged; reconcile closes it as not planned."""
    s, comp = scenario, "titanic"
    login = AGENTS["planner"]
    s.write_config(CONFIG + f"scopes:\n  {login}: [lusitania]\n")
    with web_down(s, tmp_path):
        planner = s.open_issue(login, title(comp, "planner"), sorted(agent_labels(
            comp, "planner")))
    after = repaired_once(s, planner, rule="R3", repairs="1 CloseIssue, 1 Comment")
    assert (after["state"], after["reason"]) == ("closed", "not_planned"), after
    assert s.labels(planner) == agent_labels(comp, "planner")


def test_an_earlier_stages_issue_opened_by_a_later_agent_while_the_web_was_down_is_closed(
    scenario: Scenario, tmp_path: Path,
) -> None:
    """R6 from the state: the executor agent opened a planner issue the reactor never
    judged; reconcile closes it as not planned."""
    s, comp = scenario, "titanic"
    with web_down(s, tmp_path):
        planner = s.open_issue(AGENTS["executor"], title(comp, "planner"), sorted(agent_labels(
            comp, "planner")))
    after = repaired_once(s, planner, rule="R6", repairs="1 CloseIssue, 1 Comment")
    assert (after["state"], after["reason"]) == ("closed", "not_planned"), after
    assert s.labels(planner) == agent_labels(comp, "planner")
