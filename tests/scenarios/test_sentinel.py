"""The whole reactor through a Sentinel failover under load (SPEC §6, "High availability").

A master, its replica and three Sentinels (``tests/redis_ha.py``); the web process, two
workers (each with its scheduler) and every command reach Redis through the Sentinels only.
Agents play several competitions, mistakes included (``chaos.py``'s workload); mid-play the
master is SIGKILLed — a machine lost — and the Sentinels promote the replica. The reactor
carries on with it: the web process rides the failover out (or answers 503, and the
catch-up has GitHub redeliver), workers and schedulers find the new master by themselves.
Afterwards every delivery GitHub made has been answered 2xx and accounted for, and every
invariant of ``chaos_checks.py`` holds; the commands work through the Sentinels too.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import running_stack
from tests.redis_ha import SentinelSet, running_sentinels
from tests.scenarios.chaos import Workload, history, scenario_players
from tests.scenarios.chaos_checks import check, counts
from tests.scenarios.conftest import STAGES, Scenario, make_scenario, names, wait_until
from tests.test_cli import reactor

COMPETITIONS = int(os.environ.get("SENTINEL_COMPETITIONS", 4))
CONVERGE_S = 240.0  # a generous bound for a test's wait, never a claim about speed


@pytest.fixture
def failover(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[
    tuple[SentinelSet, Scenario]
]:
    with running_sentinels(tmp_path / "redis") as sentinels:
        env = {**sentinels.env(), "CONTENT_WRITES_PER_MINUTE": "10000",
               "CONTENT_WRITES_PER_HOUR": "100000"}
        # The stack's own URL is the test's direct look at the master (moved on below).
        master = sentinels.url(sentinels.ports["master"])
        with running_stack(master, workers=2, log_dir=tmp_path, env=env) as stack:
            for scenario in make_scenario(stack, request):
                yield sentinels, scenario


def undelivered(s: Scenario) -> list[str]:
    """GUIDs sent to the reactor with no 2xx attempt (yet)."""
    attempts: dict[str, bool] = {}
    for hook in s.client.webhooks():
        if hook["url"] == s.stack.webhook_url:
            ok = 200 <= (hook["status_code"] or 0) < 300
            attempts[hook["guid"]] = attempts.get(hook["guid"], False) or ok
    return sorted(guid for guid, ok in attempts.items() if not ok)


def look_at(s: Scenario, url: str) -> None:
    """Point the test's own looks at Redis (the audit log, the queues) at ``url``."""
    s.stack.redis_url = url
    s._rq.close()
    s._rq = redis.Redis.from_url(url)


@pytest.mark.timeout(900)
def test_the_reactor_carries_on_through_a_failover_under_load_and_loses_nothing(
    failover: tuple[SentinelSet, Scenario],
) -> None:
    sentinels, s = failover
    comps = [f"ha{i:02d}" for i in range(COMPETITIONS)]
    players = scenario_players(s)
    workload = Workload(players, comps, until=time.monotonic() + 300, stagger_s=2.0)
    failures: list[str] = []
    runner = threading.Thread(target=lambda: failures.extend(workload.run()), daemon=True)
    runner.start()
    wait_until(lambda: any(r.rule == "R9" for r in s.stack.audit()), timeout=120,
               what="a first hand-off (the play is under way)")
    old = sentinels.ports["master"]
    sent_before = len(s.client.webhooks())
    assert runner.is_alive(), "the play ended before the master was lost"
    sentinels.kill(old)
    new = sentinels.wait_for_failover(old)
    look_at(s, sentinels.url(new))
    runner.join(330)

    def finished() -> bool:
        return not undelivered(s) and not s.busy() and all(
            any("status:completed" in names(i) for i in s.agent_issues(c, STAGES[-1]))
            for c in comps)

    wait_until(finished, timeout=CONVERGE_S, interval=0.5,
               what="every competition complete and every delivery answered 2xx",
               describe=lambda: {"busy": s.busy(), "undelivered": undelivered(s)})
    s.settle()
    findings = check(history(players, comps, webhook_url=s.stack.webhook_url,
                             redis_url=s.stack.redis_url,
                             failed=[job for job, _ in s.failed_jobs()]))
    web_log = s.stack.logs[0].read_text(errors="replace")
    print(json.dumps({"run": "sentinel failover", "competitions": len(comps),
                      "deliveries_after_the_kill": len(s.client.webhooks()) - sent_before,
                      "web_rode_out": "Redis does not answer" in web_log,
                      "counts": counts(findings)}))
    assert failures == [], failures
    assert {k: v for k, v in findings.items() if v} == {}

    # The commands reach the promoted master through the Sentinels as well.
    env = s.stack.env or {}
    for args in (["status", "--repo", f"{s.owner}/{s.name}"],
                 ["audit", "--repo", f"{s.owner}/{s.name}", "--limit", "5"],
                 ["deliveries", "list", "--failed"],
                 ["reconcile", "--repo", f"{s.owner}/{s.name}"]):
        done = reactor(*args, env=env)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    s.settle()
    after = check(history(players, comps, webhook_url=s.stack.webhook_url,
                          redis_url=s.stack.redis_url,
                          failed=[job for job, _ in s.failed_jobs()]))
    assert {k: v for k, v in after.items() if v} == {}  # reconcile found nothing to repair
