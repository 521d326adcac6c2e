"""How long a violation stands (SPEC §7 ``violation_latency``), and what an event costs Redis.

- :func:`violation_latency` measures, from the sandbox's request log (one clock for both
  ends), the time from an agent's violating request to the App's first write that undoes it.
  Two workloads: ``throughput`` — an agent makes an invalid lifecycle move (``idle →
  completed``, R1) in a competition of its own while the throughput benchmark's agents keep
  the workers busy; ``churn`` — an executor starts before its planner completed (R2) and then
  keeps adding and removing an unrelated label on the same issue, every ``pause_s`` (0: as
  fast as the sandbox answers), until the reactor undoes the start: a violation must never be
  shielded by later activity.
- :class:`CommandCount` reads Redis's ``INFO commandstats`` before and after a workload: every
  command Redis ran, from the web process, the workers and RQ, commands inside scripts
  included.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import redis

from bench._stack import Stack, at

STAGES_BEFORE_EXECUTOR = ("planner", "analyzer")


class CommandCount:
    """Redis's per-command call counts, read now, for a difference later."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._before = self._read()

    def _read(self) -> dict[str, int]:
        stats: dict[str, Any] = self._client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}

    def since(self) -> dict[str, int]:
        """Calls per command since this count began (the ``INFO`` calls themselves left out)."""
        now = self._read()
        grown = {name: calls - self._before.get(name, 0) for name, calls in now.items()}
        grown["info"] = grown.get("info", 0) - 1
        return {name: calls for name, calls in grown.items() if calls > 0}


def _undone_at(stack: Stack, mark: int, issue_path: str) -> float | None:
    """When the App first wrote a label of the issue after request ``mark``, if it has."""
    for entry in stack.requests(mark):
        if entry["actor"] == stack.bot and entry["method"] in ("POST", "DELETE") \
                and entry["path"].startswith(f"{issue_path}/labels"):
            return at(entry)
    return None


def _wait_undone(stack: Stack, mark: int, issue_path: str, *, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while (found := _undone_at(stack, mark, issue_path)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the violation on {issue_path} was not undone in {timeout}s")
        time.sleep(0.02)
    return found


def _requested_at(stack: Stack, mark: int, method: str, path: str) -> float:
    entry = next(e for e in stack.requests(mark)
                 if e["actor"] != stack.bot and e["method"] == method and e["path"] == path)
    return at(entry)


def invalid_moves(stack: Stack, path: str, samples: int, *, stop: threading.Event) -> list[float]:
    """``samples`` times: a planner issue of its own competition moved ``idle → completed``
    in one request; the time until the App's undoing write, in ms."""
    latencies: list[float] = []
    for i in range(samples):
        if stop.is_set():
            break
        comp, agent = f"v{i}", f"violator-{i}"
        number = stack.call(agent, "POST", f"{path}/issues", {
            "title": f"[{comp}] planner: plan", "labels": _labels(comp, "idle")})["number"]
        time.sleep(0.3)
        issue_path = f"{path}/issues/{number}"
        mark = len(stack.requests())
        stack.call(agent, "PUT", f"{issue_path}/labels", {"labels": _labels(comp, "completed")})
        made = _requested_at(stack, mark, "PUT", f"{issue_path}/labels")
        latencies.append((_wait_undone(stack, mark, issue_path) - made) * 1000)
    return latencies


def churned_starts(stack: Stack, path: str, samples: int, *, pause_s: float) -> list[float]:
    """``samples`` times: an executor issue set ``starting`` while its planner is ``idle``,
    then an unrelated label added and removed on it every ``pause_s`` until the App undoes
    the start; the time from the start's request to the undoing write, in ms."""
    latencies: list[float] = []
    for i in range(samples):
        comp = f"churn{i}-{int(pause_s * 1000)}"
        agent = f"churner-{comp}"  # a rate limit of its own: it makes thousands of requests
        for stage in STAGES_BEFORE_EXECUTOR:
            stack.call(agent, "POST", f"{path}/issues", {
                "title": f"[{comp}] {stage}: work", "labels": [f"agent:{stage}", f"comp:{comp}"]})
        number = stack.call(agent, "POST", f"{path}/issues", {
            "title": f"[{comp}] executor: run", "labels": ["agent:executor", f"comp:{comp}"]}
        )["number"]
        stack.idle()
        issue_path = f"{path}/issues/{number}"
        mark = len(stack.requests())
        stack.call(agent, "POST", f"{issue_path}/labels", {"labels": ["status:starting"]})
        made = _requested_at(stack, mark, "POST", f"{issue_path}/labels")
        asyncio.run(_churn(stack, agent, issue_path, mark, pause_s))
        latencies.append((_wait_undone(stack, mark, issue_path) - made) * 1000)
        stack.idle()
    return latencies


async def _churn(stack: Stack, agent: str, issue_path: str, mark: int, pause_s: float,
                 limit_s: float = 40.0) -> None:
    """Add and remove ``note:churn`` until the App has written to the issue (or ``limit_s``,
    or GitHub's rate limit stops the agent)."""
    headers = {"Authorization": f"token user:{agent}"}
    deadline = time.monotonic() + limit_s
    async with httpx.AsyncClient(base_url=stack.sandbox.url, headers=headers,
                                 timeout=30) as http:
        while time.monotonic() < deadline:
            added = await http.post(f"{issue_path}/labels", json={"labels": ["note:churn"]})
            await asyncio.sleep(pause_s)
            await http.delete(f"{issue_path}/labels/note:churn")
            await asyncio.sleep(pause_s)
            if added.status_code == 403 or await asyncio.to_thread(
                    _undone_at, stack, mark, issue_path) is not None:
                return


def under_load(load: Callable[[threading.Event], Any],
               probe: Callable[[threading.Event], list[float]]) -> tuple[Any, list[float]]:
    """Run ``probe`` in a thread while ``load`` runs here; the probe stops once the load sets
    the event it is given (its agents done sending), or ends."""
    stop = threading.Event()
    found: list[float] = []
    thread = threading.Thread(target=lambda: found.extend(probe(stop)), daemon=True)
    thread.start()
    try:
        result = load(stop)
    finally:
        stop.set()
        thread.join(timeout=120)
    return result, found


def _labels(comp: str, status: str) -> list[str]:
    return ["agent:planner", f"comp:{comp}", f"status:{status}"]
