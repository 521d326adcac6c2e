"""The race (issue 7): twenty competitions of agents that never pause, four workers, webhooks
duplicated and reordered. No valid move is undone, every competition reaches its
retrospective's ``completed``, and every hand-off happens exactly once.

Each competition is one thread playing its five agents in turn. An agent starts the moment
its issue shows ``status:starting`` (a real agent reacts to that ``labeled`` webhook) and then
makes its moves back to back, in one of three styles, without waiting for the reactor.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from ghsandbox.config import SandboxConfig
from ghsandbox.testing import run_receiver, run_sandbox
from reactor.store import audit
from tests.conftest import running_stack
from tests.scenarios.conftest import (
    AGENTS,
    CONFIG,
    STAGES,
    Scenario,
    agent_labels,
    is_handoff,
    make_scenario,
    move_one_request,
    names,
    stays,
    title,
    wait_until,
)

COMPETITIONS = 20
DEADLINE_S = 150.0  # for the whole race; the reactor normally needs well under a minute
FAULTS = {"webhooks": {"duplicate": 0.1, "reorder": 0.1}}
VIOLATIONS = {f"R{k}" for k in range(1, 9)}  # rules whose actions undo, close or escalate


class StartingBoard:
    """Which issues show ``status:starting``, polled by one thread for every agent (so twenty
    agents cost one listing every 0.2 s, not twenty).

    It also stops the race early once the audit log shows a revert or an escalation: the test
    has failed then, and waiting out the deadline would only make CI slower."""

    def __init__(self, s: Scenario) -> None:
        self.s = s
        self.seen: dict[tuple[str, str], int] = {}
        self.broken: str | None = None
        self.changed = threading.Condition()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        client = redis.Redis.from_url(self.s.stack.redis_url)
        try:
            while not self.stop.is_set():
                self._look(client)
                time.sleep(0.2)
        finally:
            client.close()

    def _look(self, client: redis.Redis) -> None:
        response = self.s.client.as_user("reader", "GET", f"{self.s.path}/issues", params={
            "state": "open", "labels": "status:starting", "per_page": 100})
        issues = response.json() if response.status_code == 200 else []
        broken = next((f"#{r.issue} {r.rule}: {r.detail}" for r in audit.read(client, limit=None)
                       if r.outcome == "applied" and r.rule in VIOLATIONS), None)
        with self.changed:
            self.broken = self.broken or broken
            for issue in issues:
                labels = names(issue)
                comps = [n.removeprefix("comp:") for n in labels if n.startswith("comp:")]
                stages = [n.removeprefix("agent:") for n in labels if n.startswith("agent:")]
                if len(comps) == 1 and len(stages) == 1:
                    self.seen.setdefault((comps[0], stages[0]), issue["number"])
            self.changed.notify_all()

    def wait_for(self, comp: str, stage: str, *, until: float) -> int:
        with self.changed:
            while (comp, stage) not in self.seen:
                if self.broken is not None:
                    raise AssertionError(f"{comp}: the race was lost: {self.broken}")
                left = until - time.monotonic()
                if left <= 0 or self.stop.is_set():
                    raise AssertionError(f"{comp}: no {stage} issue in status:starting")
                self.changed.wait(min(left, 1.0))
            return self.seen[(comp, stage)]


def moves(s: Scenario, number: int, comp: str, stage: str, style: int) -> None:
    """starting → running → completed, back to back, in one of three styles."""
    login = AGENTS[stage]
    if style == 0:  # one request each
        move_one_request(s, login, number, comp, stage, "running")
        move_one_request(s, login, number, comp, stage, "completed")
    elif style == 1:  # one request, then add-then-remove
        move_one_request(s, login, number, comp, stage, "running")
        s.add_labels(login, number, "status:completed")
        s.remove_label(login, number, "status:running")
    else:  # add-then-remove twice
        s.add_labels(login, number, "status:running")
        s.remove_label(login, number, "status:starting")
        s.add_labels(login, number, "status:completed")
        s.remove_label(login, number, "status:running")


def play(s: Scenario, board: StartingBoard, index: int, comp: str, until: float) -> None:
    """One competition: the planner opens its issue and starts at once; every agent then
    moves as soon as its issue is started."""
    planner = s.open_issue(AGENTS["planner"], title(comp, "planner"),
                           sorted(agent_labels(comp, "planner")))
    s.add_labels(AGENTS["planner"], planner, "status:starting")
    moves(s, planner, comp, "planner", index % 3)
    for k, stage in enumerate(STAGES[1:], start=1):
        number = board.wait_for(comp, stage, until=until)
        moves(s, number, comp, stage, (index + k) % 3)


def in_threads(calls: list[Callable[[], None]], *, timeout: float) -> list[str]:
    """Run every call in its own thread at once; the failures, described."""
    failures: list[str] = []
    gate = threading.Barrier(len(calls))

    def run(call: Callable[[], None]) -> None:
        try:
            gate.wait()
            call()
        except BaseException as exc:  # collected and asserted in the test's thread
            failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(call,), daemon=True) for call in calls]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return failures + [f"{t.name} still running" for t in threads if t.is_alive()]


@pytest.fixture
def racing(redis_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Scenario]:
    """Four workers whose content-write budget (70 a minute, GitHub's pace) does not bind:
    the race writes some 240 comments and issues within a minute or two, which against real
    GitHub the reactor would pace over four."""
    with running_stack(redis_url, workers=4, log_dir=tmp_path,
                       env={"CONTENT_WRITES_PER_MINUTE": "10000",
                            "CONTENT_WRITES_PER_HOUR": "100000"}) as stack:
        # The race's twenty agents open and complete their issues within a second, and on a
        # machine running the whole suite the sandbox's webhooks then trail its state by up
        # to 3 s: past a 1 s settle window (+2 s) the reactor judges an opening whose status
        # moves it has not heard of yet. A 3 s window keeps this test about the race.
        yield from make_scenario(stack, request, config=CONFIG.replace("settle: 1s",
                                                                       "settle: 3s"))


@pytest.mark.timeout(300)
def test_twenty_racing_competitions_all_complete_with_no_revert_and_one_hand_off_each(
    racing: Scenario,
) -> None:
    s = racing
    comps = [f"race{i:02d}" for i in range(COMPETITIONS)]
    board = StartingBoard(s)
    board.thread.start()
    s.client.control("POST", "faults", FAULTS)
    until = time.monotonic() + DEADLINE_S
    try:
        failures = in_threads(
            [lambda i=i, c=c: play(s, board, i, c, until) for i, c in enumerate(comps)],
            timeout=DEADLINE_S + 10)
    finally:
        board.stop.set()
        board.thread.join(5)
        s.client.control("POST", "faults", {})
    if failures:
        _print_race(s, board)
    assert failures == [], failures

    final = {(c, st): agent_labels(c, st, "status:completed") for c in comps for st in STAGES}

    def all_completed() -> bool:
        found: dict[tuple[str, str], list[set[str]]] = {}
        for issue in s.issues():
            found.setdefault(_key(names(issue)), []).append(names(issue))
        return found == {key: [labels] for key, labels in final.items()}

    def describe() -> list[tuple[int, str, list[str]]]:
        return [(i["number"], i["state"], sorted(names(i))) for i in s.issues()
                if names(i) != final.get(_key(names(i)))]

    wait_until(all_completed, timeout=60, what="one completed issue per stage and competition",
               describe=describe)
    s.settle()
    stays(all_completed, what="one completed issue per stage and competition",
          describe=describe)

    issues = s.issues()
    assert len(issues) == COMPETITIONS * len(STAGES)
    assert all(i["state"] == "open" for i in issues)
    creations = [r for r in s.requests() if r["actor"] == s.bot and r["method"] == "POST"
                 and r["path"] == f"{s.path}/issues" and r["status"] == 201]
    assert len(creations) == COMPETITIONS * (len(STAGES) - 1), len(creations)

    handoffs: Counter[str] = Counter()
    others: list[tuple[int, str]] = []
    for issue in issues:
        comp, stage = _key(names(issue))
        assert issue["title"] == title(comp, stage), issue["title"]
        for body in s.app_comments(issue["number"]):
            if is_handoff(body):
                handoffs[f"{comp}:{stage}"] += 1
            else:
                others.append((issue["number"], body))
    assert others == [], others  # no revert, no escalation: only hand-off comments
    expected = {f"{c}:{st}": 1 for c in comps for st in STAGES[:-1]}
    assert dict(handoffs) == expected, {k: v for k, v in handoffs.items() if v != 1}

    # The faults really struck: some deliveries went out twice under one GUID, and some
    # after deliveries made later than they were.
    webhooks = [w for w in s.client.webhooks() if w["url"] == s.stack.webhook_url]
    sent = Counter(w["guid"] for w in webhooks)
    assert any(n >= 2 for n in sent.values()), "the duplicate fault sent nothing twice"
    assert overtaken(webhooks) > 0, "the reorder fault held no delivery back"


def overtaken(webhooks: list[dict[str, Any]]) -> int:
    """How many deliveries to one hook were sent after one made later (the reorder fault).

    The sandbox's webhook log lists attempts in the order they were sent, each with the id
    its delivery got when the change was made (ids grow in that order); a duplicate is a
    second attempt under the same GUID, so only each GUID's first attempt counts."""
    firsts: dict[str, int] = {}
    for webhook in webhooks:
        if not webhook["redelivery"]:
            firsts.setdefault(webhook["guid"], webhook["delivery_id"])
    made = list(firsts.values())  # in the order sent
    return sum(1 for earlier, later in itertools.pairwise(made) if later < earlier)


def test_the_reorder_check_sees_the_fault_strike_and_only_then() -> None:
    """:func:`overtaken` finds nothing in a sandbox's log without faults, and finds the
    deliveries the reorder fault held back (so the race's check of it can fail)."""
    with (run_receiver() as receiver,
          run_sandbox(SandboxConfig.generate(webhook_urls=(receiver.url,))) as sandbox,
          sandbox.client() as client):
        client.create_repo("acme", "order")

        def twenty_issues() -> list[dict[str, Any]]:
            since = len(client.webhooks())
            for n in range(20):
                client.as_user("alice", "POST", "/repos/acme/order/issues",
                               json={"title": f"issue {n}"}).raise_for_status()
            assert client.drain() == 0
            return client.webhooks(since)

        assert overtaken(twenty_issues()) == 0
        client.control("POST", "faults", {"webhooks": {"reorder": 0.5}})
        assert overtaken(twenty_issues()) > 0


def _print_race(s: Scenario, board: StartingBoard) -> None:
    """Evidence of a lost race, once the reactor is done: every issue, every App comment other
    than a hand-off, and the audit records of the first issue the reactor broke."""
    with contextlib.suppress(AssertionError):
        s.idle(timeout=60)
    for issue in s.issues():
        print(f"#{issue['number']} {issue['state']} {sorted(names(issue))} "
              f"by {issue['user']['login']}")
    for number, labels, head in _not_handoffs(s):
        print(f"#{number} {labels}: {head}")
    first = (board.broken or "").removeprefix("#").split(" ", 1)[0]
    print(f"--- audit of #{first} ---")
    for r in s.stack.audit():
        if r.event == "issues" and r.issue == first:
            print(f"{r.at} {r.delivery[:8]} {r.action} {r.label!r} @{r.actor} {r.outcome} "
                  f"{r.rule} {r.detail}")


def _not_handoffs(s: Scenario) -> list[tuple[int, list[str], str]]:
    """Every App comment other than a hand-off, with its issue's labels (failure evidence)."""
    return [(i["number"], sorted(names(i)), body.split("\n\n")[0])
            for i in s.issues() for body in s.app_comments(i["number"]) if not is_handoff(body)]


def _key(labels: set[str]) -> tuple[str, str]:
    comp = next((n[5:] for n in labels if n.startswith("comp:")), "")
    stage = next((n[6:] for n in labels if n.startswith("agent:")), "")
    return comp, stage
