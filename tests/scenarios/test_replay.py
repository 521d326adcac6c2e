"""``reactor replay`` on the real stack: a dry run prints the decision and writes nothing; a
live replay judges the delivery again without posting a comment twice; a payload saved from
GitHub's delivery page replays too, once GitHub confirms the ids it names; bad input is one
line and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import redis

from reactor.store import keys
from tests.scenarios.conftest import (
    AGENTS,
    Scenario,
    agent_labels,
    has_labels,
    next_issue,
    run_planner,
    title,
    wait_until,
)


def replay(s: Scenario, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    assert s.stack.env is not None
    done = subprocess.run([sys.executable, "-m", "reactor", "replay", *args],
                          env=s.stack.env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert (done.returncode == 0) is ok, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done


def stop_workers(s: Scenario) -> None:
    """Stop every worker: deliveries then wait in the queue and nothing else writes to Redis."""
    workers = s.stack.processes[1:]
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:  # seen on busy machines: a worker ignores SIGTERM
            worker.kill()
            worker.wait(timeout=10)
        s.stack.processes.remove(worker)


# RQ's records of worker and scheduler processes, which change while stopped ones wind up.
PROCESS_RECORDS = (b"rq:worker", b"rq:scheduler", b"rq:clean_groups")  # RQ's own housekeeping


def redis_contents(s: Scenario) -> dict[bytes, object]:
    """Every key in the database with its value, found by ``SCAN``: the reactor's and the
    queues', not RQ's records of the processes just stopped, nor R11's counts of moves (they
    leave by themselves a minute after the last move, in the middle of a test). A hash is
    compared by its fields (``DUMP`` of a large hash follows Redis's table order, which a
    rehash may change without any write); anything else by ``DUMP``."""
    client = redis.Redis.from_url(s.stack.redis_url)
    counts = keys.BUDGET.split("{")[0].encode()
    try:
        return {key: client.hgetall(key) if client.type(key) == b"hash" else client.dump(key)
                for key in client.scan_iter(count=1000)
                if not key.startswith((*PROCESS_RECORDS, counts))}
    finally:
        client.close()


def early_executor(s: Scenario, comp: str) -> tuple[int, int]:
    """The planner completes and hands off; the executor starts before the analyzer."""
    run_planner(s, comp)
    analyzer = next_issue(s, comp, "analyzer")["number"]
    s.idle()
    login = AGENTS["executor"]
    executor = s.open_issue(login, title(comp, "executor"), sorted(agent_labels(comp, "executor")))
    s.idle()
    return analyzer, executor


def test_a_dry_run_prints_the_decision_and_writes_nothing(scenario: Scenario) -> None:
    s, comp = scenario, "titanic"
    analyzer, executor = early_executor(s, comp)
    stop_workers(s)  # deliveries now wait in the queue: nothing judges them
    s.add_labels(AGENTS["executor"], executor, "status:starting")
    s.client.drain()
    guid = s.find_delivery(lambda p: p["issue"]["number"] == executor
                           and p.get("label", {}).get("name") == "status:starting")["guid"]
    before = s.request_count()
    text = replay(s, guid, "--dry-run").stdout
    assert "R2" in text and f"#{analyzer}" in text and "nothing written" in text, text
    data = orjson.loads(replay(s, guid, "--dry-run", "--json").stdout)
    assert any(a["rule"] == "R2" and a["kind"] == "RemoveLabel" for a in data["actions"]), data
    assert data["read"] == sorted(agent_labels(comp, "executor", "status:starting"))
    assert not [r for r in s.requests(before) if r["method"] != "GET"]  # no write to GitHub
    assert s.app_comments(executor) == []
    s.stack.start("worker")  # the live path then reverts it, once
    wait_until(has_labels(s, executor, agent_labels(comp, "executor")),
               what="the early start reverted", describe=lambda: s.state(executor))


def test_a_live_replay_judges_again_and_never_comments_twice(scenario: Scenario) -> None:
    s, comp = scenario, "titanic"
    _, executor = early_executor(s, comp)
    s.add_labels(AGENTS["executor"], executor, "status:starting")
    wait_until(has_labels(s, executor, agent_labels(comp, "executor")),
               what="the early start reverted", describe=lambda: s.state(executor))
    s.settle()
    guid = s.find_delivery(lambda p: p["issue"]["number"] == executor
                           and p.get("label", {}).get("name") == "status:starting")["guid"]
    assert "replayed" in replay(s, guid).stdout
    s.settle()
    assert len(s.app_comments(executor)) == 1
    assert any(r.delivery == guid and r.outcome == "replayed" for r in s.stack.audit())


def test_a_saved_payload_replays_and_bad_input_is_one_line(
    scenario: Scenario, tmp_path: Path
) -> None:
    s, comp = scenario, "titanic"
    run_planner(s, comp)
    s.settle()
    payload = s.find_delivery(lambda p: p.get("action") == "opened")["request"]["payload"]
    saved = tmp_path / "delivery.json"
    saved.write_bytes(orjson.dumps(payload))
    text = replay(s, "--file", str(saved), "--event", "issues", "--dry-run").stdout
    assert "issues.opened" in text and "nothing written" in text
    assert "replayed replay-" in replay(s, "--file", str(saved), "--event", "issues").stdout
    unknown = replay(s, "no-such-guid", "--dry-run", ok=False)
    assert unknown.stderr.count("\n") == 1 and "no-such-guid" in unknown.stderr
    (tmp_path / "bad.json").write_text("{not json")
    bad = replay(s, "--file", str(tmp_path / "bad.json"), "--event", "issues", ok=False)
    assert bad.stderr.count("\n") == 1 and "not JSON" in bad.stderr
    both = replay(s, "g", "--file", str(saved), ok=False)
    assert both.stderr.startswith("reactor: give either a GUID")


def test_a_saved_payload_is_replayed_only_with_ids_github_confirms(
    scenario: Scenario, tmp_path: Path
) -> None:
    """A file naming one tenant's installation and repository with another tenant's
    repository id (or the other way round) is refused in one line, before anything is
    written; a dry run of a genuine file writes nothing to Redis; a genuine file replays."""
    s, comp = scenario, "titanic"
    rival = s.client.create_repo("rival", "work")  # another tenant: its own installation
    s.open_issue(AGENTS["planner"], title(comp, "planner"), sorted(agent_labels(comp, "planner")))
    s.settle()
    payload = s.find_delivery(lambda p: p.get("action") == "opened"
                              and p["repository"]["full_name"] == f"acme/{s.name}")
    genuine: dict[str, Any] = payload["request"]["payload"]
    crafted = {
        "their-repository-id": ("issues", {**genuine, "repository": {
            **genuine["repository"], "id": rival["repository"]["id"]}}),
        "their-installation": ("issues", {**genuine, "installation": {
            **genuine["installation"], "id": rival["installation_id"]}}),
        # its repository list cannot be checked: replayed, it would make the reactor forget
        "an-uninstall": ("installation", {
            "action": "deleted", "installation": genuine["installation"],
            "repositories": [rival["repository"]], "sender": genuine["sender"]}),
    }
    stop_workers(s)
    before = redis_contents(s)
    for name, (event, body) in crafted.items():
        (tmp_path / name).write_bytes(orjson.dumps(body))
        for dry in ((), ("--dry-run",)):
            refused = replay(s, "--file", str(tmp_path / name), "--event", event, *dry,
                             ok=False)
            assert refused.stderr.count("\n") == 1, refused.stderr
            assert refused.stderr.startswith("reactor: the file is not replayed: "), refused.stderr
            assert redis_contents(s) == before, (name, dry)
    (tmp_path / "genuine").write_bytes(orjson.dumps(genuine))
    text = replay(s, "--file", str(tmp_path / "genuine"), "--event", "issues", "--dry-run").stdout
    assert "issues.opened" in text and "nothing written" in text
    assert redis_contents(s) == before
    done = replay(s, "--file", str(tmp_path / "genuine"), "--event", "issues").stdout
    assert "replayed replay-" in done
    assert any(r.outcome == "replayed" for r in s.stack.audit())
