"""The worker side of SPEC §7: hand-off latency, worker throughput, GitHub calls per event and
the processes' memory, against the sandbox GitHub, one JSON line per figure.

For each worker count (1, 2, 4) a fresh stack runs (``bench/_stack.py``: private
redis-server, the sandbox in a thread, ``reactor serve``, the workers):

- ``handoff_latency``: a planner issue moved ``running → completed`` in one request (and
  again in two: the running label taken off, then the completed one put on), until the
  App's request that creates the analyzer issue (born ``status:starting``), both times taken
  from the sandbox's request log (one clock). ``--samples`` competitions, one at a time.
- ``worker_throughput``: agents toggle ``status:idle`` ↔ ``status:error`` (valid moves: the
  reactor reads and judges, and writes nothing) on one issue in each of 20 competitions, as
  fast as one client sends; events are the webhooks the sandbox sent, handled when the last
  of them is audited; with the agents' own rate, the run's tail after their last request,
  and what the machine's cores allow the whole workload.
- ``redis_commands_per_event`` and ``worker_cpu_ms_per_event``: on the throughput run, every
  command Redis ran (``INFO commandstats``: web, workers and RQ, commands inside scripts
  included) and the workers' CPU (with the web process's and Redis's beside it), per event
  sent.
- ``violation_latency`` (largest worker count only, ``bench/promptness.py``): from an agent's
  violating request to the App's undoing write, while the throughput workload offers
  :data:`LOADED_RATE` events a second, and for an agent that keeps touching the issue after
  its violation (every 0.2 s, and with no pause).
- ``calls_per_event`` (4 workers only): the App's GitHub calls from the request log, 304s
  apart, for an event that needs nothing, a valid transition, a hand-off, bursts of
  k = 1, 10, 100 label events no rule reads on one competition, and *status bursts*: k valid
  status moves (``idle`` ↔ ``error``, one request each, two webhooks) on one issue as fast as
  one client sends them, each of which the rules must read.
- ``memory``: the web process's and the largest worker's RSS after the runs.
- ``safety_overhead`` (4 workers only): the hand-off and throughput workloads again on a
  stack started with ``UNSAFE_DISABLE=lease,fresh,journal`` (no per-competition lease, no
  fresh read before writes, no hand-off journal: a switch for this benchmark and the chaos
  suite's negative control, never for production), beside a stack with them,
  ``--overhead-runs`` times; ``ratio`` is the median of the pairs' extra end-to-end time the
  mechanisms cost, as a fraction of the time without them (target < 0.10).

    python -m bench.pipeline [--samples 30] [--events 4000] [--workers 1 2 4]
                             [--overhead-runs 5] [--hook-concurrency 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import promptness
from bench._load import Agent
from bench._processes import unwind_on_sigterm
from bench._stack import AGENT, Stack, at, running
from reactor.store import audit

COMPETITIONS = 20
BURSTS = (1, 10, 100)
TARGETS = {"handoff_p50_ms": 100, "handoff_p99_ms": 500, "events_per_s": 300,
           "safety_overhead": 0.10, "redis_commands_per_event": 15,
           "worker_cpu_ms_per_event": 4, "violation_latency_p99_ms": 3000}
CHURN_PAUSES_S = (0.2, 0.0)
# violation_latency under load: the throughput workload offers SPEC's throughput (a load the
# reactor sustains: unpaced, the agents outrun it and every queue only grows), and lasts
# about PROBE_S a violation probed.
LOADED_RATE = 300
PROBE_S = 2.5
MECHANISMS = "lease,fresh,journal"  # UNSAFE_DISABLE: every safety mechanism off


def emit(figure: str, **values: Any) -> None:
    """One figure as a JSON line (floats to 0.1, ratios to 0.001), with the machine's core
    count."""
    shown = {k: round(v, 3 if "ratio" in k else 1) if isinstance(v, float) else v
             for k, v in values.items()}
    print(json.dumps({"figure": figure, **shown, "cores": os.cpu_count()}), flush=True)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def labels(comp: str, status: str) -> list[str]:
    return ["agent:planner", f"comp:{comp}", f"status:{status}"]


def wait_for(found: Callable[[], Any], *, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while (value := found()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError("the reactor did not act in time")
        time.sleep(0.01)
    return value


def handoff_latency(stack: Stack, samples: int, *, lost_ok: bool = False,
                    requests: int = 1) -> list[float]:
    """Each sample's hand-off latency (ms), from the agent's completing request — its one
    ``PUT``, or with ``requests=2`` the second of a ``DELETE`` of ``status:running`` and a
    ``POST`` of ``status:completed`` — to the App's create. ``lost_ok`` (the safety
    mechanisms off, where racing workers may undo the completion): a hand-off not made
    within 5 s is left out."""
    path = stack.repo(f"handoff-{requests}")
    completing = "POST" if requests == 2 else "PUT"  # the method of the agent's last request
    stack.idle()
    latencies = []
    for i in range(samples):
        comp = f"c{i}"
        issue = stack.call(AGENT, "POST", f"{path}/issues", {
            "title": f"[{comp}] planner: plan", "labels": labels(comp, "starting")})
        number = issue["number"]
        stack.call(AGENT, "PUT", f"{path}/issues/{number}/labels",
                   {"labels": labels(comp, "running")})
        stack.idle()
        mark = len(stack.requests())
        if requests == 2:
            stack.call(AGENT, "DELETE", f"{path}/issues/{number}/labels/status:running")
            stack.call(AGENT, "POST", f"{path}/issues/{number}/labels",
                       {"labels": ["status:completed"]})
        else:
            stack.call(AGENT, "PUT", f"{path}/issues/{number}/labels",
                       {"labels": labels(comp, "completed")})

        def created(mark: int = mark) -> tuple[float, float] | None:
            log = stack.requests(mark)
            done = next((r for r in log if r["actor"] == AGENT and r["method"] == completing),
                        None)
            made = next((r for r in log if r["actor"] == stack.bot and r["method"] == "POST"
                         and r["path"] == f"{path}/issues"), None)
            return None if done is None or made is None else (at(done), at(made))

        try:
            done_at, made_at = wait_for(created, timeout=5.0 if lost_ok else 30.0)
        except TimeoutError:
            if not lost_ok:
                raise
        else:
            latencies.append((made_at - done_at) * 1000)
        stack.idle()
    return latencies


@dataclass
class Throughput:
    """A throughput run: the events the sandbox sent, their rate from the agents' first
    request to the last audit record, the agents' own sending rate and how long the reactor
    went on after their last request (``tail_s``: the backlog they left, and each busy
    competition's last pause between reads), the CPU each process spent per event, and the
    Redis commands the run cost, by command."""

    sent: int
    events_per_s: float
    sent_per_s: float
    tail_s: float
    cpu_ms: dict[str, float]
    commands: dict[str, int]

    def figures(self) -> dict[str, Any]:
        total = sum(self.cpu_ms.values())
        return {"events": self.sent, "events_per_s": self.events_per_s,
                "agents_sent_per_s": self.sent_per_s, "tail_s": round(self.tail_s, 2),
                **{f"cpu_ms_per_event_{k}": round(v, 2) for k, v in self.cpu_ms.items()},
                "cpu_ms_per_event_all": round(total, 2),
                # what the machine's cores allow this whole workload — agents, sandbox and
                # reactor — if no process ever waited for another
                "cores_allow_events_per_s": round(1000 * (os.cpu_count() or 1) / total)}


def worker_throughput(stack: Stack, events: int, *, repo: str = "throughput",
                      rate: float | None = None, sent: threading.Event | None = None
                      ) -> Throughput:
    """The throughput run (see :class:`Throughput`): the agents as fast as they can, or
    offering ``rate`` events a second between them; ``sent`` is set once they are done."""
    path = stack.repo(repo)
    numbers = [stack.call(AGENT, "POST", f"{path}/issues", {
        "title": f"[t{c}] planner: plan", "labels": labels(f"t{c}", "idle")})["number"]
        for c in range(COMPETITIONS)]
    stack.idle()
    sent_before = len(stack.http.get(f"{stack.sandbox.url}/_sandbox/webhooks").json())
    start, cpu_before = time.time(), stack.cpu_s()
    commands = promptness.CommandCount(stack.redis)
    asyncio.run(_toggle(stack.sandbox.url, path, numbers, events // (2 * COMPETITIONS),
                        gap_s=None if rate is None else 2 * COMPETITIONS / rate))
    done = time.time()
    if sent is not None:
        sent.set()
    stack.still()  # read before idle()'s polling adds commands of its own
    cpu = {k: v - cpu_before[k] for k, v in stack.cpu_s().items()}
    ran = commands.since()
    stack.idle()
    count = len(stack.http.get(f"{stack.sandbox.url}/_sandbox/webhooks").json()) - sent_before
    end = int(audit.newest_id(stack.redis).split("-")[0]) / 1000  # Redis's clock, in ms
    return Throughput(count, count / (end - start), count / (done - start), end - done,
                      {k: 1000 * v / count for k, v in cpu.items()}, ran)


def emit_handoffs(workers: int, latencies: list[float], *, requests: int) -> None:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    emit("handoff_latency", workers=workers, requests=requests,
         p50_ms=statistics.median(latencies), p99_ms=cuts[98], samples=len(latencies),
         target_p50_ms=TARGETS["handoff_p50_ms"], target_p99_ms=TARGETS["handoff_p99_ms"])


def emit_costs(workers: int, run: Throughput) -> None:
    sent, ran, cpu = run.sent, run.commands, run.cpu_ms
    top = dict(sorted(ran.items(), key=lambda item: -item[1])[:12])
    emit("redis_commands_per_event", workers=workers, events=sent,
         commands_per_event=round(sum(ran.values()) / sent, 1),
         top={name: round(calls / sent, 2) for name, calls in top.items()},
         target=TARGETS["redis_commands_per_event"])
    emit("worker_cpu_ms_per_event", workers=workers, events=sent, cpu_ms=cpu["workers"],
         target=TARGETS["worker_cpu_ms_per_event"], web_cpu_ms=cpu["web"],
         redis_cpu_ms=cpu["redis"])


def violation_latency(stack: Stack, args: argparse.Namespace, workers: int) -> None:
    """Violations undone while the throughput workload offers :data:`LOADED_RATE` events a
    second (long enough for ``--samples`` violations, each probed while the agents send),
    and under an agent's churn."""
    path = stack.repo("violations")
    events = int(LOADED_RATE * args.samples * PROBE_S)
    _, loaded = promptness.under_load(
        lambda sent: worker_throughput(stack, events, repo="throughput-violated",
                                       rate=LOADED_RATE, sent=sent),
        lambda stop: promptness.invalid_moves(stack, path, args.samples, stop=stop))
    _emit_latency("throughput", workers, loaded, offered_events_per_s=LOADED_RATE)
    stack.idle()
    for pause in CHURN_PAUSES_S:
        churned = promptness.churned_starts(stack, path, args.churn_samples, pause_s=pause)
        _emit_latency("churn", workers, churned, pause_s=pause)


def _emit_latency(workload: str, workers: int, latencies: list[float], **extra: Any) -> None:
    if not latencies:
        emit("violation_latency", workload=workload, workers=workers, samples=0, **extra)
        return
    cuts = (statistics.quantiles(latencies, n=100, method="inclusive")
            if len(latencies) > 1 else latencies * 99)
    emit("violation_latency", workload=workload, workers=workers, **extra,
         p50_ms=statistics.median(latencies), p99_ms=cuts[98], max_ms=max(latencies),
         samples=len(latencies), target_p99_ms=TARGETS["violation_latency_p99_ms"])


async def _toggle(url: str, path: str, numbers: list[int], rounds: int, *,
                  gap_s: float | None = None) -> None:
    """Each competition's agent swaps its issue's status ``rounds`` times, one request after
    another (each PUT swaps one label: two webhooks), or one every ``gap_s`` (the agents
    staggered); the competitions act at once. Each agent is a user of its own, as each has
    its own rate limit on GitHub."""
    where = httpx.URL(url)
    host, port = where.host, where.port or 80

    start = time.monotonic()

    async def agent(c: int) -> None:
        client = Agent(host, port, f"user:{AGENT}-{c}")
        try:
            for i in range(rounds):
                if gap_s is not None:
                    await asyncio.sleep(start + gap_s * (i + c / len(numbers)) - time.monotonic())
                status = "error" if i % 2 == 0 else "idle"
                await client.send("PUT", f"{path}/issues/{numbers[c]}/labels",
                                  {"labels": labels(f"t{c}", status)})
        finally:
            client.close()
    await asyncio.gather(*(agent(c) for c in range(len(numbers))))


def calls_per_event(stack: Stack) -> list[dict[str, Any]]:
    path = stack.repo("calls")
    plain = stack.call("mallory", "POST", f"{path}/issues", {"title": "flaky CI"})["number"]
    planner = stack.call(AGENT, "POST", f"{path}/issues", {
        "title": "[k] planner: plan", "labels": ["agent:planner", "comp:k"]})["number"]
    stack.idle()

    def measure(event: str, act: Callable[[], None], **extra: Any) -> dict[str, Any]:
        stack.idle()
        mark = len(stack.requests())
        act()
        stack.idle()
        calls = [r for r in stack.requests(mark) if r["actor"] == stack.bot]
        charged = [r for r in calls if r["status"] != 304]
        return {"event": event, **extra, "calls": len(charged),
                "conditional_304": len(calls) - len(charged)}

    def put(status: str) -> Callable[[], None]:
        return lambda: stack.call(AGENT, "PUT", f"{path}/issues/{planner}/labels",
                                  {"labels": labels("k", status)})

    def burst(k: int) -> Callable[[], None]:
        def act() -> None:
            for i in range(k):
                stack.call(AGENT, "POST", f"{path}/issues/{planner}/labels",
                           {"labels": [f"note:{k}-{i}"]})
        return act

    toggled = stack.call(AGENT, "POST", f"{path}/issues", {
        "title": "[s] planner: plan", "labels": labels("s", "idle")})["number"]

    def status_burst(k: int) -> Callable[[], None]:  # k valid moves, each read by the rules
        def act() -> None:
            for i in range(k):
                stack.call(AGENT, "PUT", f"{path}/issues/{toggled}/labels",
                           {"labels": labels("s", "error" if i % 2 == 0 else "idle")})
        return act

    rows = [measure("nothing to do", lambda: stack.call(
        "mallory", "POST", f"{path}/issues/{plain}/labels", {"labels": ["bug"]}))]
    rows.append(measure("valid transition", put("starting")))
    stack.call(AGENT, "PUT", f"{path}/issues/{planner}/labels", {"labels": labels("k", "running")})
    rows.append(measure("hand-off", put("completed")))
    rows += [measure("burst", burst(k), k=k) for k in BURSTS]
    rows += [measure("status burst", status_burst(k), k=k) for k in BURSTS]
    return rows


def run_one(workers: int, args: argparse.Namespace, workdir: Path,
            rates: dict[int, float]) -> None:
    say(f"bench: {workers} worker(s)")
    with running(workers, workdir=workdir / f"w{workers}",
                 hook_concurrency=args.hook_concurrency) as stack:
        latencies = handoff_latency(stack, args.samples)
        emit_handoffs(workers, latencies, requests=1)
        emit_handoffs(workers, handoff_latency(stack, args.samples, requests=2), requests=2)
        run = worker_throughput(stack, args.events)
        rates[workers] = run.events_per_s
        single = rates.get(1)
        emit("worker_throughput", workers=workers, **run.figures(),
             scaling_vs_1=None if single is None else round(run.events_per_s / single, 2),
             competitions=COMPETITIONS, target_events_per_s=TARGETS["events_per_s"])
        emit_costs(workers, run)
        if workers == max(args.workers):
            violation_latency(stack, args, workers)
            for row in calls_per_event(stack):
                emit("calls_per_event", workers=workers, **row)
            for process, rss in stack.rss_mb().items():
                emit("memory", process=process, rss_mb=rss, workers=workers)
    if workers == max(args.workers):
        safety_overhead(workers, args, workdir, (latencies, run.events_per_s))


def safety_overhead(workers: int, args: argparse.Namespace, workdir: Path,
                    first: tuple[list[float], float]) -> None:
    """The same two workloads with the safety mechanisms off, ``--overhead-runs`` times,
    each beside a run with them (the first is the run already made): each pair's extra
    time with the mechanisms, and the median of the pairs."""
    pairs: list[tuple[float | None, float]] = []  # (hand-off ratio, throughput ratio)
    lost = 0
    for n in range(args.overhead_runs):
        if n == 0:
            latencies, rate = first
        else:
            say(f"bench: {workers} worker(s), run {n + 1} of {args.overhead_runs}")
            with running(workers, workdir=workdir / f"w{workers}-safe-{n}",
                         hook_concurrency=args.hook_concurrency) as stack:
                latencies = handoff_latency(stack, args.samples)
                rate = worker_throughput(stack, args.events).events_per_s
        say(f"bench: {workers} worker(s), UNSAFE_DISABLE={args.disable}, run {n + 1}")
        with running(workers, workdir=workdir / f"w{workers}-unsafe-{n}",
                     env={"UNSAFE_DISABLE": args.disable},
                     hook_concurrency=args.hook_concurrency) as stack:
            bare = handoff_latency(stack, args.samples, lost_ok=True)
            bare_rate = worker_throughput(stack, args.events).events_per_s
        lost += args.samples - len(bare)
        handoff = statistics.mean(latencies) / statistics.mean(bare) - 1 if bare else None
        pairs.append((handoff, bare_rate / rate - 1))
    handoffs = [h for h, _ in pairs if h is not None]
    emit("safety_overhead", workers=workers, workload="hand-off", disabled=args.disable,
         ratio=round(statistics.median(handoffs), 3) if handoffs else None,
         ratios=[None if h is None else round(h, 3) for h, _ in pairs],
         samples=args.samples, lost_unsafe=lost, target_ratio=TARGETS["safety_overhead"])
    emit("safety_overhead", workers=workers, workload="throughput", disabled=args.disable,
         ratio=round(statistics.median(t for _, t in pairs), 3),
         ratios=[round(t, 3) for _, t in pairs], target_ratio=TARGETS["safety_overhead"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=30, help="hand-offs per worker count")
    parser.add_argument("--events", type=int, default=4000, help="webhooks for throughput")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--churn-samples", type=int, default=5,
                        help="churned violations per pause (violation_latency)")
    parser.add_argument("--hook-concurrency", type=int, default=1,
                        help="webhooks the sandbox sends at once (1: one at a time, in order)")
    parser.add_argument("--overhead-runs", type=int, default=5,
                        help="pairs of runs, with and without the mechanisms, whose median "
                             "safety_overhead reports")
    parser.add_argument("--disable", default=MECHANISMS,
                        help="the mechanisms safety_overhead switches off (UNSAFE_DISABLE); "
                             "one at a time shows what each costs")
    args = parser.parse_args(argv)
    unwind_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="reactor-bench-") as workdir:
        rates: dict[int, float] = {}
        for workers in sorted(args.workers):
            run_one(workers, args, Path(workdir), rates)
    return 0


if __name__ == "__main__":
    sys.exit(main())
