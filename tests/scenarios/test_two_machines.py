"""Two machines on one Redis (README "Running on more than one machine").

Each "machine" is a web process and a worker of its own (separate processes with their own
in-process caches, as on separate hosts); a round-robin load balancer in front spreads
GitHub's deliveries over both web processes and hands one in four to *both* at once — a
delivery arriving twice, on different machines, at the same moment. Agents play several
competitions, mistakes included (``chaos.py``'s workload). Afterwards each web process has
accepted deliveries, the second copy of a doubled delivery was answered as a duplicate, and
every invariant of ``chaos_checks.py`` holds (every delivery accounted for, no hand-off,
issue or comment made twice, no valid move undone, no violation left).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ghsandbox.config import SandboxConfig
from ghsandbox.serving import serve_in_thread
from ghsandbox.testing import run_sandbox
from tests.conftest import Stack, free_port, stop_groups, wait_for_port
from tests.scenarios.chaos import Workload, history, scenario_players
from tests.scenarios.chaos_checks import check, counts
from tests.scenarios.conftest import STAGES, Scenario, make_scenario, names, wait_until

COMPETITIONS = int(os.environ.get("MACHINES_COMPETITIONS", 4))
BOTH_EVERY = 4  # one delivery in this many goes to both web processes at once
CONVERGE_S = 240.0  # a generous bound for a test's wait, never a claim about speed
HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding"}


class Balancer:
    """Round-robin over ``backends``, each request forwarded whole; every
    :data:`BOTH_EVERY`-th also goes to the next backend at the same moment, and the first
    answer is the one returned."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self.answered: Counter[tuple[str, int]] = Counter()
        self._turn = itertools.count()
        self._client: httpx.AsyncClient | None = None

    async def forward(self, request: Request) -> Response:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=15)
        n = next(self._turn)
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        targets = [self.backends[n % len(self.backends)]]
        if n % BOTH_EVERY == 0:
            targets.append(self.backends[(n + 1) % len(self.backends)])
        answers = await asyncio.gather(*(
            self._client.post(target + request.url.path, content=body, headers=headers)
            for target in targets))
        for target, answer in zip(targets, answers, strict=True):
            self.answered[(target, answer.status_code)] += 1
        first = answers[0]
        return Response(first.content, status_code=first.status_code,
                        media_type=first.headers.get("content-type"))

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.forward, methods=["POST"])])


@contextmanager
def two_machines(redis_url: str, log_dir: Path) -> Iterator[tuple[Stack, Balancer]]:
    """Two web processes and two workers on one Redis, behind a balancer the sandbox's
    App webhook points at."""
    ports = [free_port(), free_port()]
    balancer = Balancer([f"http://127.0.0.1:{port}" for port in ports])
    with serve_in_thread(balancer.app()) as front:
        hook = f"{front}/api/github/webhooks"
        with run_sandbox(SandboxConfig.generate(webhook_urls=(hook,))) as sandbox:
            env = {**os.environ, **sandbox.env(), "REDIS_URL": redis_url,
                   "LOG_LEVEL": "warning", "CONTENT_WRITES_PER_MINUTE": "10000",
                   "CONTENT_WRITES_PER_HOUR": "100000"}
            stack = Stack(front, redis_url, sandbox, [], [], env, log_dir)
            try:
                for machine, port in zip("ab", ports, strict=True):
                    stack.start("serve", "--port", str(port))
                    stack.start("worker", "--name", f"machine-{machine}-{port}")
                for port in ports:
                    wait_for_port(port)
                yield stack, balancer
                stack.assert_no_failed_jobs()
            finally:
                stop_groups(stack.processes)


@pytest.fixture
def machines(redis_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[
    tuple[Scenario, Balancer]
]:
    with two_machines(redis_url, tmp_path) as (stack, balancer):
        for scenario in make_scenario(stack, request):
            yield scenario, balancer


@pytest.mark.timeout(600)
def test_two_web_processes_and_workers_on_one_redis_keep_every_rule(
    machines: tuple[Scenario, Balancer],
) -> None:
    s, balancer = machines
    comps = [f"m{i:02d}" for i in range(COMPETITIONS)]
    players = scenario_players(s)
    workload = Workload(players, comps, until=time.monotonic() + 300, stagger_s=1.0)
    failures: list[str] = []
    runner = threading.Thread(target=lambda: failures.extend(workload.run()), daemon=True)
    runner.start()
    runner.join(330)

    def finished() -> bool:
        return not s.busy() and all(
            any("status:completed" in names(i) for i in s.agent_issues(c, STAGES[-1]))
            for c in comps)

    wait_until(finished, timeout=CONVERGE_S, interval=0.5,
               what="every competition complete", describe=lambda: {"busy": s.busy()})
    s.settle()
    findings = check(history(players, comps, webhook_url=s.stack.webhook_url,
                             redis_url=s.stack.redis_url,
                             failed=[job for job, _ in s.failed_jobs()]))
    print(json.dumps({"run": "two machines", "competitions": len(comps),
                      "answered": {f"{url} {status}": n
                                   for (url, status), n in balancer.answered.items()},
                      "counts": counts(findings)}))
    assert failures == [], failures
    assert {k: v for k, v in findings.items() if v} == {}
    for backend in balancer.backends:  # each machine took its share, the doubles included
        assert balancer.answered[(backend, 202)] > 0, balancer.answered
    doubled = sum(n for (_, status), n in balancer.answered.items() if status == 200)
    assert doubled > 0, balancer.answered  # the second of a delivery sent to both: a duplicate
