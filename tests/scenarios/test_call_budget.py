"""GitHub calls the reactor spends per event, against SPEC §7's budget.

Counted from the sandbox's request log: calls made as the App's installation
(``<slug>[bot]``) after the triggering change, until the reactor is idle past the settle
window. Calls answered ``304 Not Modified`` are listed but not charged: they cost no rate
limit (SPEC §6 calls them free), and the rate limit is the scarce resource §7 budgets.

What "an event that needs nothing" means here, honestly: a ``bug`` label added to an issue
that is no agent issue, by an actor with no ``scopes`` entry, once the repository config is
cached. No rule can fire on that change whatever the issue's current state (R1/R4 need a
``status:`` change, R3 identity an ``agent:``/``comp:`` change, R3 scope a scoped actor,
R5/R6 an ``agent:`` label), so it can be decided from the payload and the cached config
alone: 0 calls. Reading the issue "to be sure" would be one call too many.

The same holds for a burst: ten labels no rule reads, added to an agent issue one after the
other within its settle window, need nothing, so the burst costs no call at all — not even a
free ``304`` read (SPEC §7: a burst of k events costs O(1) reads; these need none).

The first event of a repository also reads ``.github/reactor.yml`` (and may mint a token);
the measurements start after that warm-up.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import pytest

from reactor.shell.turn import FREE_ROUNDS, ROUND_GAP_S
from tests.scenarios.conftest import (
    AGENTS,
    Scenario,
    agent_labels,
    move_one_request,
    move_two_requests,
    next_issue,
    title,
    wait_until,
)

USERS = {*AGENTS.values(), "mallory", "reader", "octocat"}


def measure(s: Scenario, what: str, act: Callable[[], None], capsys: pytest.CaptureFixture[str],
            *, done: Callable[[], object] | None = None) -> list[dict[str, Any]]:
    """Run ``act`` on an idle reactor; the App's calls until it is idle again, charged or
    not (:func:`charged` picks the charged ones)."""
    s.settle()
    start = s.request_count()
    act()
    if done is not None:
        wait_until(done, what=f"the effect of: {what}")
    s.settle()
    window = s.requests(start)
    calls = [r for r in window if r["actor"] == s.bot]
    others = [r for r in window if r["actor"] not in USERS and r["actor"] != s.bot]
    with capsys.disabled():
        print(f"\n[calls] {what}: {len(charged(calls))} charged, {len(calls)} total as {s.bot}")
        for r in calls:
            print(f"    {r['method']} {r['path']} -> {r['status']}")
        for r in others:
            print(f"    (not as the installation: {r['actor']}) "
                  f"{r['method']} {r['path']} -> {r['status']}")
    return calls


def charged(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The calls that cost rate limit: all but those answered ``304 Not Modified``."""
    return [r for r in calls if r["status"] != 304]


def test_github_calls_per_event_stay_within_the_budget(
    scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    s, comp = scenario, "titanic"
    login = AGENTS["planner"]
    planner = s.open_issue(login, title(comp, "planner"), sorted(agent_labels(comp, "planner")))
    plain = s.open_issue("mallory", "Flaky CI on main", [])
    s.settle()  # warm-up: config read, token minted

    nothing = charged(measure(s, "unrelated label `bug` on a non-agent issue",
                      lambda: s.add_labels("mallory", plain, "bug"), capsys))
    start = charged(measure(s, "valid transition idle → starting (one request, POST a label)",
                            lambda: s.add_labels(login, planner, "status:starting"), capsys))
    run = charged(measure(s, "valid transition starting → running (two requests)",
                          lambda: move_two_requests(s, login, planner, "starting", "running"),
                          capsys))
    assert s.labels(planner) == agent_labels(comp, "planner", "status:running")
    handoff = charged(measure(
        s, "hand-off planner running → completed (one request, PUT labels)",
        lambda: move_one_request(s, login, planner, comp, "planner", "completed"),
        capsys, done=lambda: s.agent_issues(comp, "analyzer")))
    analyzer = next_issue(s, comp, "analyzer")["number"]

    def ten_labels() -> None:
        for i in range(10):
            s.add_labels("mallory", analyzer, f"note-{i}")

    burst = measure(s, "burst: 10 labels no rule reads on an agent issue, one at a time",
                    ten_labels, capsys)  # every call, free 304s included

    with capsys.disabled():
        print(f"\n[calls] summary: nothing={len(nothing)} transition={len(start)}, "
              f"{len(run)} hand-off={len(handoff)} burst-of-10={len(burst)} calls "
              f"(budget 0 / ≤2 / ≤6 / 0)")
    assert len(nothing) == 0, nothing
    assert len(start) <= 2, start
    assert len(run) <= 2, run
    assert len(handoff) <= 6, handoff
    assert burst == [], burst  # no call at all, charged or free


def test_back_to_back_status_moves_are_read_once_per_round_gap(
    scenario: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    """An agent that moves its issue's status as fast as it can (valid moves, each of which
    the rules must read) costs a read per ROUND_GAP_S of the burst, not one per move: after
    FREE_ROUNDS reads in a row, the competition's next round waits for the gap
    (reactor/shell/turn.py). Every move stands."""
    s, comp = scenario, "titanic"
    login = AGENTS["planner"]
    planner = s.open_issue(login, title(comp, "planner"),
                           sorted(agent_labels(comp, "planner", "status:idle")))
    s.settle()
    moves = 80
    timing: list[float] = []

    def toggle() -> None:
        timing.append(time.monotonic())
        for i in range(moves):
            status = "error" if i % 2 == 0 else "idle"
            s.call(login, "PUT", f"/issues/{planner}/labels",
                   json={"labels": sorted(agent_labels(comp, "planner", f"status:{status}"))})
            time.sleep(0.02)  # a fast agent's pace: rounds would otherwise keep up one by one
        timing.append(time.monotonic())

    reads = charged(measure(s, f"{moves} valid status moves back to back", toggle, capsys))
    sent_s = timing[1] - timing[0]
    # The free reads, one per gap the burst lasted, and the last round's after it.
    bound = FREE_ROUNDS + math.ceil(sent_s / ROUND_GAP_S) + 1
    with capsys.disabled():
        print(f"[calls] {moves} moves in {sent_s:.2f} s: {len(reads)} charged (bound {bound})")
    assert len(reads) <= bound, reads
    assert s.labels(planner) == agent_labels(comp, "planner", "status:idle")
    undone = [r for r in s.stack.audit() if r.issue == planner and r.outcome == "applied"]
    assert undone == []
