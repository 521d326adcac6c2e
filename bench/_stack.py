"""The whole reactor for a benchmark: a private redis-server, the sandbox GitHub, ``reactor
serve`` and N ``reactor worker`` processes — each a process of its own, so the benchmark's
client shares no interpreter with them — with helpers to act as the agents."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import redis
from rq import Queue
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from bench._processes import cpu_seconds, rss_mb, stop
from ghsandbox.config import SandboxConfig
from ghsandbox.testing import RunningSandbox, SandboxProcess
from reactor.ops.processes import free_port, private_redis, wait_for_port
from reactor.store import keys

STAGES = ("planner", "analyzer", "executor", "monitor", "retrospective")
AGENT = "planner-bot"
# The benchmark's agents move as fast as the sandbox answers: far over R11's default budget.
CONFIG = (f"stages: [{', '.join(STAGES)}]\nsettle: 1s\n"
          "limits: {moves_per_minute: 1000000, issues_per_hour: 1000000}\n")


@dataclass
class Stack:
    sandbox: RunningSandbox
    sandbox_pid: int
    redis: redis.Redis
    web: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    @property
    def bot(self) -> str:
        return f"{self.sandbox.config.app_slug}[bot]"

    def call(self, login: str, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, self.sandbox.url + path, json=body,
                                     headers={"Authorization": f"token user:{login}"})
        response.raise_for_status()
        return response.json() if response.content else None

    def repo(self, name: str) -> str:
        """A repository ``bench/<name>`` with the App installed and its config written."""
        self.http.post(f"{self.sandbox.url}/_sandbox/repos",
                       json={"owner": "bench", "name": name}).raise_for_status()
        path = f"/repos/bench/{name}"
        self.call("octocat", "PUT", f"{path}/contents/.github/reactor.yml", {
            "message": "config", "content": base64.b64encode(CONFIG.encode()).decode()})
        return path

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.http.get(
            f"{self.sandbox.url}/_sandbox/requests", params={"since": since}).json()
        return found

    def busy(self) -> int:
        """Work the reactor still has: jobs queued, running or due within the settle window,
        held leases, turns queued or running, and changes pending, in flight or parked."""
        queue = Queue(keys.QUEUE_EVENTS, connection=self.redis)
        scheduled = ScheduledJobRegistry(queue=queue)  # type: ignore[no-untyped-call]
        soon = scheduled.get_jobs_to_schedule(int(time.time()) + 3)
        work = queue.count + StartedJobRegistry(queue=queue).count + len(soon)
        for template in (keys.LEASE, keys.TURN):
            work += sum(1 for _ in self.redis.scan_iter(template.format(scope="*"), count=1000))
        for template in (keys.PENDING, keys.INFLIGHT):
            work += sum(int(self.redis.llen(k)) for k in self.redis.scan_iter(
                template.format(scope="*"), count=1000) if self.redis.type(k) == b"list")
        return work

    def idle(self, *, timeout: float = 120.0) -> None:
        """Wait until the webhooks are sent and the reactor has had no work for a few polls."""
        deadline, quiet = time.monotonic() + timeout, 0
        while quiet < 4:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the reactor did not go idle in {timeout}s")
            self.http.post(f"{self.sandbox.url}/_sandbox/drain", json={"timeout": timeout})
            quiet = quiet + 1 if self.busy() == 0 else 0
            time.sleep(0.05)

    def still(self, *, still_s: float = 1.0, timeout: float = 120.0) -> None:
        """Wait, sending Redis no command, until the sandbox has sent every webhook and the
        web process and workers have used no CPU for ``still_s`` (longer than a busy
        competition's pause between reads): a run's Redis commands are then read without
        :meth:`idle`'s own polling among them."""
        self.http.post(f"{self.sandbox.url}/_sandbox/drain", json={"timeout": timeout})
        pids = [self.web.pid, *(w.pid for w in self.workers)]
        deadline, before = time.monotonic() + timeout, sum(cpu_seconds(p) for p in pids)
        while time.monotonic() < deadline:
            time.sleep(still_s)
            now = sum(cpu_seconds(p) for p in pids)
            if now - before < 0.01:  # an idle worker's heartbeat and queue polls
                return
            before = now
        raise TimeoutError(f"the reactor did not go still in {timeout}s")

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds used so far: the benchmark's own process (its agents), the sandbox,
        the web process, all workers, Redis."""
        info = self.redis.info("cpu")
        return {"agents": cpu_seconds(os.getpid()), "sandbox": cpu_seconds(self.sandbox_pid),
                "web": cpu_seconds(self.web.pid),
                "workers": sum(cpu_seconds(w.pid) for w in self.workers),
                "redis": float(info["used_cpu_sys"]) + float(info["used_cpu_user"])}

    def rss_mb(self) -> dict[str, float]:
        return {"web": rss_mb(self.web.pid),
                "worker": max(rss_mb(w.pid) for w in self.workers)}


def at(entry: dict[str, Any]) -> float:
    """A request log entry's time, in seconds since the epoch."""
    return datetime.fromisoformat(entry["at"].replace("Z", "+00:00")).timestamp()


@contextmanager
def running(workers: int, *, workdir: Path, env: dict[str, str] | None = None,
            hook_concurrency: int = 1) -> Iterator[Stack]:
    """The reactor with ``workers`` worker processes (``env`` added to theirs); logs in
    ``workdir``. The sandbox sends the webhooks one at a time, in order, or
    ``hook_concurrency`` at once (as GitHub does, in no order)."""
    with ExitStack() as stack:
        redis_url = stack.enter_context(private_redis(workdir / "redis"))
        port = free_port()
        hook = f"http://127.0.0.1:{port}/api/github/webhooks"
        config = SandboxConfig.generate(webhook_urls=(hook,) if hook_concurrency == 1 else ())
        process = SandboxProcess(config)
        sandbox = process.start()
        stack.callback(process.stop)
        environ = {**os.environ, **sandbox.env(), "REDIS_URL": redis_url,
                   "LOG_LEVEL": "warning", **(env or {})}

        def spawn(*args: str) -> subprocess.Popen[bytes]:
            log = (workdir / f"{args[0]}-{len(list(workdir.glob('*.log')))}.log").open("wb")
            process = subprocess.Popen([sys.executable, "-m", "reactor", *args], env=environ,
                                       stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
            stack.callback(stop, process)
            return process

        web = spawn("serve", "--port", str(port))
        pool = [spawn("worker", "--name", f"bench-{i}") for i in range(workers)]
        wait_for_port(port, web)
        client = redis.Redis.from_url(redis_url)
        stack.callback(client.close)
        assert process.process is not None
        result = Stack(sandbox, process.process.pid, client, web, pool)
        if hook_concurrency > 1:
            result.http.post(f"{sandbox.url}/_sandbox/hooks", json={
                "url": hook, "concurrency": hook_concurrency}).raise_for_status()
        stack.callback(result.http.close)
        yield result
