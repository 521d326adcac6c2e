"""``python -m bench.pipeline`` runs and prints its figures as JSON lines (a short run: the
figures themselves are read by people, never asserted on here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_pipeline_benchmark_prints_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.pipeline", "--samples", "2", "--events", "40",
         "--workers", "1", "--overhead-runs", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    figures = {line["figure"] for line in lines}
    assert figures == {"handoff_latency", "worker_throughput", "calls_per_event", "memory",
                       "safety_overhead", "redis_commands_per_event",
                       "worker_cpu_ms_per_event", "violation_latency"}
    overheads = [line for line in lines if line["figure"] == "safety_overhead"]
    assert {line["workload"] for line in overheads} == {"hand-off", "throughput"}
    assert all(len(line["ratios"]) == 2 for line in overheads)  # the median of two pairs
    throughput = next(line for line in lines if line["figure"] == "worker_throughput")
    assert throughput["cpu_ms_per_event_agents"] > 0 and throughput["tail_s"] >= 0
    assert throughput["cores_allow_events_per_s"] > 0
    assert all(line["cores"] >= 1 for line in lines)
    assert {line["requests"] for line in lines if line["figure"] == "handoff_latency"} == {1, 2}
    calls = {(line["event"], line.get("k")): line["calls"]
             for line in lines if line["figure"] == "calls_per_event"}
    assert calls[("nothing to do", None)] == 0
    assert set(calls) == {("nothing to do", None), ("valid transition", None),
                          ("hand-off", None), ("burst", 1), ("burst", 10), ("burst", 100),
                          ("status burst", 1), ("status burst", 10), ("status burst", 100)}
    commands = [line for line in lines if line["figure"] == "redis_commands_per_event"]
    assert commands and all(line["commands_per_event"] > 0 for line in commands)
    assert {line["workload"] for line in lines if line["figure"] == "violation_latency"} == {
        "throughput", "churn"}
