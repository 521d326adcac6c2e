"""Fuzzed payloads through the real web process and workers: malformed variants of the
``issues``, ``label`` and ``issue_dependencies`` deliveries the sandbox really sent (a key
gone, a value of the wrong type, null users, huge strings, absurd label names), signed as
GitHub signs them. None may crash a worker or end in RQ's failed registry: each is audited
(rejected, ignored, or judged as what it claims), and the reactor keeps handling the next
valid delivery.

CI runs the same 40 examples every time; ``FUZZ_EXAMPLES=500`` runs that many new ones.
"""

from __future__ import annotations

import copy
import os
import time
import uuid
from typing import Any

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactor.store import audit
from reactor.store.audit import AuditRecord, Outcome
from tests.scenarios.conftest import AGENTS, Scenario, agent_labels, title

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0")) or 40
WANTED = {("issues", "labeled"), ("label", "created"), ("issue_dependencies", "blocked_by_added")}
HUGE = "x" * 100_000
WRONG = (None, 0, -1, 2**63, 1.5, True, "", "not what it should be", [], {}, HUGE)
# The fields the reactor reads: drawn as often as all the others together.
READ = {("action",), ("sender",), ("sender", "login"), ("sender", "type"), ("repository",),
        ("repository", "id"), ("repository", "full_name"), ("repository", "owner", "login"),
        ("installation",), ("installation", "id"), ("issue",), ("issue", "number"),
        ("issue", "id"), ("issue", "labels"), ("issue", "labels", 0),
        ("issue", "labels", 0, "name"), ("issue", "state"), ("issue", "title"),
        ("issue", "body"), ("issue", "user"),
        ("label",), ("label", "name"), ("blocked_issue",), ("blocked_issue", "number"),
        ("blocking_issue",), ("blocking_issue", "number"), ("blocking_issue", "id")}
LABEL_NAMES = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["status:\x1b[2J", "comp:\u202egnp.exe", "agent:" + "é" * 60, "status:",
                     "comp:a b", "status:running\nstatus:completed", "agent:planner" * 40]))


def originals(s: Scenario) -> dict[str, dict[str, Any]]:
    """One real payload per wanted (event, action), from the App's delivery log."""
    planner = s.open_issue(AGENTS["planner"], title("fz", "planner"),
                           sorted(agent_labels("fz", "planner")))
    analyzer = s.open_issue(AGENTS["analyzer"], title("fz", "analyzer"),
                            sorted(agent_labels("fz", "analyzer")))
    s.add_labels(AGENTS["planner"], planner, "status:starting")
    s.call(AGENTS["planner"], "POST", f"/issues/{analyzer}/dependencies/blocked_by",
           json={"issue_id": s.issue(planner)["id"]})
    s.settle()
    found: dict[str, dict[str, Any]] = {}
    for item in s.deliveries():
        if (item["event"], item["action"]) in WANTED and item["event"] not in found:
            found[item["event"]] = s.delivery(item["id"])["request"]["payload"]
    assert set(found) == {event for event, _ in WANTED}, sorted(found)
    return found


def paths(document: Any, prefix: tuple[Any, ...] = (), depth: int = 3) -> list[tuple[Any, ...]]:
    """Every key path into ``document`` down to ``depth`` (lists: their first item)."""
    if depth == 0:
        return []
    items: list[tuple[Any, Any]] = (list(document.items()) if isinstance(document, dict) else
                                    [(0, document[0])] if isinstance(document, list) and document
                                    else [])
    found = []
    for key, value in items:
        found.append((*prefix, key))
        found += paths(value, (*prefix, key), depth - 1)
    return found


def mutated(payload: dict[str, Any], path: tuple[Any, ...], change: Any) -> dict[str, Any]:
    """``payload`` with the value at ``path`` replaced by ``change`` (``...``: deleted)."""
    out = copy.deepcopy(payload)
    parent: Any = out
    for key in path[:-1]:
        parent = parent[key]
    if change is ...:
        del parent[path[-1]]
    else:
        parent[path[-1]] = change
    return out


def records_of(s: Scenario, guid: str, *, timeout: float = 30.0) -> list[AuditRecord]:
    """The audit records of one delivery, once there is at least one (workers alive)."""
    client = redis.Redis.from_url(s.stack.redis_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            found = list(audit.select(client, audit.Query(delivery=guid), limit=None))
            if found:
                return found
            for process in s.stack.processes:
                assert process.poll() is None, f"{process.args!r} exited: {process.returncode}"
            assert time.monotonic() < deadline, f"delivery {guid} was never audited"
            time.sleep(0.05)
    finally:
        client.close()


_ORIGINALS: dict[str, dict[str, dict[str, Any]]] = {}  # per repository, read once


@settings(max_examples=EXAMPLES, deadline=None, derandomize="FUZZ_EXAMPLES" not in os.environ,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_malformed_payloads_are_audited_never_crash_a_worker_and_valid_work_goes_on(
    scenario: Scenario, data: st.DataObject,
) -> None:
    s = scenario
    if s.name not in _ORIGINALS:
        _ORIGINALS[s.name] = originals(s)
    payloads = _ORIGINALS[s.name]
    event = data.draw(st.sampled_from(sorted(payloads)), label="event")
    every = paths(payloads[event])
    read = [p for p in every if p in READ]
    path = data.draw(st.one_of(st.sampled_from(read), st.sampled_from(every)), label="path")
    is_label_name = path[-1] == "name" and ("label" in path or "labels" in path)
    change = data.draw(st.one_of(st.just(...), st.sampled_from(WRONG),
                                 LABEL_NAMES if is_label_name else st.nothing()), label="change")

    guid = str(uuid.uuid4())
    answer = s.post_delivery(mutated(payloads[event], path, change), guid=guid, event=event)
    assert answer.status_code == 202, answer.text
    outcomes = {r.outcome for r in records_of(s, guid)}
    assert Outcome.FAILED not in outcomes, outcomes

    valid = str(uuid.uuid4())  # the reactor keeps working: the real payload, delivered again
    assert s.post_delivery(payloads[event], guid=valid, event=event).status_code == 202
    assert Outcome.FAILED not in {r.outcome for r in records_of(s, valid)}
    assert s.failed_jobs() == [], s.failed_jobs()
