"""The chaos suite (issues 8 and 10, SPEC §8): honest and adversarial agents over many
competitions drive the real reactor (four workers and more) through the sandbox while every
fault strikes at once; afterwards the checkers of ``chaos_checks.py``, computed from what
GitHub shows, must all count zero. Two negative controls prove the checkers can see: the same
workload with the reactor switched off makes every mistake's checker fire, and with its
safety mechanisms switched off (``UNSAFE_DISABLE``) the race checkers fire.

CI runs the short version. The long one runs by hand::

    CHAOS_COMPETITIONS=14 CHAOS_FAULTS_S=120 pytest -n 0 -s -m chaos tests/scenarios/test_chaos.py

Each run prints one JSON line: the invariant counts, the faults that struck and the time the
reactor took to converge once they stopped.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ghsandbox.config import SandboxConfig
from ghsandbox.testing import run_sandbox
from reactor.store import keys
from tests.conftest import RedisServer, free_port, running_stack
from tests.scenarios.chaos import MISTAKES, Chaos, Players, Workload, history, scenario_players
from tests.scenarios.chaos_checks import check, counts
from tests.scenarios.conftest import (
    LINKED,
    STAGES,
    Scenario,
    make_scenario,
    names,
    wait_until,
)

pytestmark = pytest.mark.chaos

COMPETITIONS = int(os.environ.get("CHAOS_COMPETITIONS", len(MISTAKES)))  # one of each mistake
FAULTS_S = float(os.environ.get("CHAOS_FAULTS_S", 30))
WORKERS = int(os.environ.get("CHAOS_WORKERS", 4))
CONVERGE_S = float(os.environ.get("CHAOS_CONVERGE_S", 240))  # after the faults stopped
# What only the reactor can get wrong: with it off, these have nothing to see.
REACTOR_ONLY = {"comments_twice", "valid_moves_undone", "handoffs_doubled",
                "deliveries_unaccounted"}
RACE = {"duplicate_issues", "valid_moves_undone", "handoffs_doubled", "comments_twice",
        "two_status_labels", "invalid_transitions_left", "stage_before_predecessor"}


def competitions(prefix: str, n: int = COMPETITIONS) -> list[str]:
    return [f"{prefix}{i:02d}" for i in range(n)]


@pytest.fixture
def chaotic(redis_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Scenario]:
    """WORKERS workers with a content-write budget that does not bind (the run writes a few
    hundred comments and issues in a minute)."""
    with running_stack(redis_url, workers=WORKERS, log_dir=tmp_path,
                       env={"CONTENT_WRITES_PER_MINUTE": "10000",
                            "CONTENT_WRITES_PER_HOUR": "100000"}) as stack:
        yield from make_scenario(stack, request, config=LINKED)


@pytest.mark.timeout(int(FAULTS_S + 200 + CONVERGE_S + 120))
def test_every_fault_at_once_leaves_no_violation_and_every_competition_complete(
    chaotic: Scenario, redis_server: RedisServer, tmp_path: Path,
) -> None:
    s = chaotic
    comps = competitions("chaos")
    players = scenario_players(s)
    log: list[str] = []
    chaos = Chaos(s.stack, redis_server, s.client, kill_every_s=8.0,
                  limit_at_s=FAULTS_S * 0.3, restart_at_s=FAULTS_S * 0.5, log=log)
    log.append(f"t+  0.0s = {time.strftime('%H:%M:%S')}")
    workload = Workload(players, comps, until=time.monotonic() + FAULTS_S + 200,
                        stagger_s=FAULTS_S / len(comps))
    failures: list[str] = []
    runner = threading.Thread(target=lambda: failures.extend(workload.run()), daemon=True)
    chaos.start()
    runner.start()
    runner.join(FAULTS_S)
    chaos.end()
    calm = time.monotonic()
    runner.join(max(0.0, workload.until - time.monotonic()) + 10)

    def finished() -> bool:
        return not s.busy() and all(
            any("status:completed" in names(i) for i in s.agent_issues(c, STAGES[-1]))
            for c in comps)

    try:
        wait_until(finished, timeout=CONVERGE_S, interval=0.5, what="every competition complete",
                   describe=lambda: s.busy())
        s.settle()
    finally:
        converged_s = time.monotonic() - calm
        findings = check(history(players, comps, webhook_url=s.stack.webhook_url,
                                 redis_url=s.stack.redis_url,
                                 failed=[job for job, _ in s.failed_jobs()]))
        struck = _struck(s, chaos, log)
        print(json.dumps({"run": "chaos", "competitions": len(comps), "workers": WORKERS,
                          "faults_s": FAULTS_S, "converged_s": round(converged_s, 1),
                          "counts": counts(findings), "faults": struck,
                          "mistakes": len(players.made)}))
        print("\n".join([*log, *failures, *(f"{k}: {v}" for k, v in findings.items() if v)]))
        if any(findings.values()):
            _keep_evidence(s, findings, tmp_path)
    assert failures == [], failures
    assert {k: v for k, v in findings.items() if v} == {}
    assert struck["workers_killed"] >= 1 and struck["redis_restarts"] == 1
    assert struck["writes_502"] > 0 and struck["deliveries_duplicated"] > 0
    assert struck["secondary_limited"] > 0
    assert {m.kind for m in players.made} == set(MISTAKES[:len(comps)])


def _keep_evidence(s: Scenario, findings: dict[str, list[str]], where: Path) -> None:
    """Evidence for a failure, kept in the test's directory (printed): the whole audit log,
    the sandbox's request and webhook logs, and the audit records of every issue and
    competition a checker named."""
    text = " ".join(line for found in findings.values() for line in found)
    named = {int(n) for n in re.findall(r"#(\d+)", text)}
    comps = set(re.findall(r"\b(chaos\d+)\b", text))
    lines = [f"{r.at} {r.delivery} #{r.issue} {r.event}.{r.action} {r.label!r} @{r.actor} "
             f"{r.outcome} {r.rule} {r.detail}" for r in s.stack.audit()]
    (where / "audit.txt").write_text("\n".join(lines))
    (where / "requests.txt").write_text("\n".join(
        f"{r['at']} {r['actor']} {r['method']} {r['path']} {r['status']}" for r in s.requests()))
    (where / "webhooks.txt").write_text("\n".join(
        f"{w['at']} {w['guid']} {w['event']}.{w['action']} {w['status_code']} "
        f"redelivery={w['redelivery']}" for w in s.client.webhooks()))
    for line in lines:
        issue = line.split(" ")[2].removeprefix("#")
        if (issue.isdigit() and int(issue) in named) or any(f"comp:{c} " in line for c in comps):
            print(line[:300])
    print(f"--- evidence (audit, requests, webhooks, process logs) in {where} ---")


def _struck(s: Scenario, chaos: Chaos, log: list[str]) -> dict[str, int]:
    """How often each fault struck, from the sandbox's logs and the chaos thread's."""
    requests = s.requests()
    sent: dict[str, int] = {}
    for w in s.client.webhooks():
        if w["url"] == s.stack.webhook_url and not w["redelivery"]:
            sent[w["guid"]] = sent.get(w["guid"], 0) + 1
    return {
        "workers_killed": chaos.killed,
        "redis_restarts": sum("Redis restarted" in line for line in log),
        "writes_502": sum(r["status"] == 502 for r in requests),
        "secondary_limited": sum(r["status"] in (403, 429) for r in requests),
        "deliveries_duplicated": sum(n > 1 for n in sent.values()),
        "deliveries_not_2xx": sum(1 for w in s.client.webhooks()
                                  if w["url"] == s.stack.webhook_url
                                  and not 200 <= (w["status_code"] or 0) < 300),
    }


def test_with_the_reactor_off_every_mistakes_checker_fires() -> None:
    """Negative control: the same workload, webhooks going nowhere. Every checker of a
    mistake an agent can make, and of the hand-offs that never come, must fire."""
    nowhere = f"http://127.0.0.1:{free_port()}/api/github/webhooks"
    comps = competitions("off")
    with (run_sandbox(SandboxConfig.generate(webhook_urls=(nowhere,))) as sandbox,
          sandbox.client() as client):
        client.create_repo("acme", "off")
        client.as_user("octocat", "PUT", "/repos/acme/off/contents/.github/reactor.yml",
                       json={"message": "config", "content": _b64(LINKED)})
        players = Players(client, "acme", "off", f"{sandbox.config.app_slug}[bot]")
        failures = Workload(players, comps, until=time.monotonic() + 8,
                            handoff_wait_s=1).run()
        found = counts(check(history(players, comps, webhook_url=None, redis_url=None,
                                     failed=[])))
    print(json.dumps({"run": "reactor off", "counts": found}))
    assert failures == []
    assert {name for name, n in found.items() if n == 0} == REACTOR_ONLY, found


def test_with_the_safety_mechanisms_off_the_race_checkers_fire(
    redis_url: str, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    """Negative control: no lease, no fresh read before writes, no hand-off journal
    (``UNSAFE_DISABLE``), duplicated and reordered deliveries, no other fault. Racing workers
    then undo valid moves or double hand-offs, and the checkers see it."""
    comps = competitions("unsafe", 30)
    with running_stack(redis_url, workers=WORKERS, log_dir=tmp_path, env={
            "CONTENT_WRITES_PER_MINUTE": "10000", "CONTENT_WRITES_PER_HOUR": "100000",
            "UNSAFE_DISABLE": "lease,fresh,journal"}) as stack:
        scenarios = make_scenario(stack, request, config=LINKED)
        s = next(scenarios)
        players = scenario_players(s)
        s.client.control("POST", "faults", {"webhooks": {"duplicate": 0.1, "reorder": 0.1}})
        Workload(players, comps, until=time.monotonic() + 60, handoff_wait_s=5, style=0).run()
        s.client.control("POST", "faults", {})
        _quiet(s)
        found = counts(check(history(players, comps, webhook_url=stack.webhook_url,
                                     redis_url=stack.redis_url, failed=[])))
        scenarios.close()
    print(json.dumps({"run": "safety off", "counts": found}))
    assert sum(found[name] for name in RACE) > 0, found


def _quiet(s: Scenario) -> None:
    """Wait for the reactor to go quiet (no job queued or running), however it got there."""
    connection = redis.Redis.from_url(s.stack.redis_url)
    try:
        wait_until(lambda: connection.llen(f"rq:queue:{keys.QUEUE_EVENTS}") == 0,
                   timeout=60, interval=0.5, what="the queue empty")
        time.sleep(3)
    finally:
        connection.close()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
