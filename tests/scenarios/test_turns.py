"""A competition's turn on the real stack (issue 16): a burst waiting together is judged in one
round with one read of GitHub, each of its deliveries once; and a violation is undone within
its settle window's bound however busily its agent keeps touching the issue."""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from rq import Queue

from reactor.store import keys
from tests.conftest import Stack, running_stack
from tests.scenarios.conftest import (
    Scenario,
    agent_labels,
    make_scenario,
    title,
    wait_until,
)

pytestmark = pytest.mark.slow

AGENT = "planner-bot"


@pytest.fixture
def one_worker(redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(redis_url, workers=1, log_dir=tmp_path) as stack:
        yield stack


@pytest.fixture
def quiet(one_worker: Stack, request: pytest.FixtureRequest) -> Iterator[Scenario]:
    yield from make_scenario(one_worker, request)


def stop(worker: subprocess.Popen[bytes]) -> None:
    """Stop a worker: warmly (it finishes its job: a periodic sweep may take a while), and
    coldly if that takes long."""
    worker.terminate()
    try:
        worker.wait(timeout=10)
    except subprocess.TimeoutExpired:
        worker.terminate()  # a second SIGTERM: RQ's cold shutdown
        worker.wait(timeout=30)


def rounds(s: Scenario) -> int:
    return int(s._rq.hget(keys.METRICS_COUNTERS, "turn round") or 0)


def test_a_burst_waiting_together_is_judged_in_one_round_with_one_read(quiet: Scenario) -> None:
    """With the worker stopped, an agent swaps its issue's status twenty times (39 webhooks:
    the first swap only adds): they wait for their competition's one turn — one job queued,
    not 39 — and
    a worker started then judges them all in one round, reading GitHub once, each delivery
    once."""
    s = quiet
    number = s.open_issue(AGENT, title("t", "planner"), sorted(agent_labels("t", "planner")))
    s.idle()
    stop(s.stack.processes.pop(1))
    before_rounds, mark = rounds(s), s.request_count()
    sent_before = len(s.client.webhooks())
    for i in range(20):
        status = "error" if i % 2 == 0 else "idle"
        s.set_labels(AGENT, number, *sorted(agent_labels("t", "planner", f"status:{status}")))
    s.client.drain()
    guids = [w["guid"] for w in s.client.webhooks()[sent_before:]]
    assert len(guids) == 39
    queued = Queue(keys.QUEUE_EVENTS, connection=s._rq).get_job_ids()
    assert len(queued) == 1 and queued[0].startswith("turn-"), queued

    s.stack.start("worker", "--name", "second")
    s.idle()

    assert rounds(s) - before_rounds == 1
    own = Counter(r.delivery for r in s.stack.audit()
                  if r.delivery in guids and r.outcome in ("accepted", "applied", "noted"))
    assert set(own) == set(guids) and set(own.values()) == {1}
    reads = [c for c in s.app_calls(mark) if c["method"] == "GET"]
    assert len(reads) == 1, reads


def test_a_violation_is_undone_while_its_agent_keeps_touching_the_issue(
    scenario: Scenario,
) -> None:
    """An executor starts before its planner completed (R2), then keeps adding and removing
    an unrelated label every 0.2 s. Its start is undone while the churn goes on: later
    changes no rule reads never hold the settle window open (before the turn, 25 s of churn
    kept the violation in place)."""
    s = scenario
    s.open_issue(AGENT, title("c", "planner"), sorted(agent_labels("c", "planner")))
    executor = s.open_issue("executor-bot", title("c", "executor"),
                            sorted(agent_labels("c", "executor")))
    s.idle()
    stop = threading.Event()

    def churn() -> None:
        deadline = time.monotonic() + 25
        while not stop.is_set() and time.monotonic() < deadline:
            s.add_labels("executor-bot", executor, "note")
            time.sleep(0.2)
            s.remove_label("executor-bot", executor, "note")
            time.sleep(0.2)

    s.add_labels("executor-bot", executor, "status:starting")
    churning = threading.Thread(target=churn, daemon=True)
    churning.start()
    try:
        wait_until(lambda: "status:starting" not in s.labels(executor), timeout=20)
        assert churning.is_alive(), "the churn had stopped before the start was undone"
    finally:
        stop.set()
        churning.join(timeout=30)
    s.idle()
    assert "status:starting" not in s.labels(executor)
    assert any("R2" in c for c in s.app_comments(executor))
