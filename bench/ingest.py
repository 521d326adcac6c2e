"""Webhook ingest throughput and latency (SPEC §7), printed as one JSON line per figure.

In one run, one server at a time on 127.0.0.1 (the machine has 2 cores):

- ``reactor``: ``reactor serve``'s ``POST /api/github/webhooks`` (verify, dedupe, durable
  store, enqueue) against a private redis-server;
- ``bare_starlette``: ``bench/bare_starlette.py`` under the reactor's uvicorn settings;
- ``probot``: Probot 14 on Node with a no-op handler (``bench/probot/``, installed with npm
  into ``.cache/bench/probot/``; skipped with a reason when that fails).

Each gets a warm-up, then ``wrk`` for ``--duration`` seconds with ``--connections``, posting
the signed 12 KB ``issues.labeled`` webhook of ``bench/_payload.py`` with a fresh delivery id
per request. Redis is flushed between runs. Then the reactor and the bare endpoint are held at
1,000 req/s (``bench/_load.py``), and the reactor's RSS is read. Progress goes to stderr.

    python bench/ingest.py [--duration 10] [--connections 32] [--threads 1] [--skip-probot]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as `python bench/ingest.py`: import from the repository
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis
from rq import Queue

from bench import _load
from bench._payload import SECRET, PayloadUnavailable, Webhook, issues_labeled
from bench._processes import cpu_seconds, others_cpu_seconds, rss_mb, serving, unwind_on_sigterm
from reactor.ops.processes import free_port, private_redis
from reactor.store import keys

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CACHE = ROOT / ".cache" / "bench"  # gitignored: node_modules, logs, Redis files
WARMUP_S = 3.0
SETTLE_S = 0.5  # lets requests in flight when wrk stops finish before FLUSHALL
FIXED_RATE, FIXED_RATE_S = 1000, 5.0
TARGET_VS_BARE, TARGET_P99_MS, TARGET_RSS_MB = 0.40, 10.0, 150.0
# Redis rewrites its AOF by itself once it doubles past 64 MB: at 12 KB a request that is every
# few seconds, and each rewrite forks and freezes Redis for 3.5–22 ms (measured), which the
# fixed-rate p99 then shows. The bench compacts the AOF between runs itself instead.
AOF_REWRITE_MIN_SIZE = "16gb"
UVICORN = ("--host", "127.0.0.1", "--loop", "uvloop", "--http", "httptools",
           "--no-access-log", "--log-level", "warning")  # as `reactor serve` runs it


@dataclass(frozen=True, slots=True)
class Target:
    """A server under test: its command line for a port, extra environment, description."""

    name: str
    argv: Callable[[int], list[str]]
    server: str
    env: tuple[tuple[str, str], ...] = ()
    cwd: Path = ROOT


@dataclass(frozen=True, slots=True)
class Run:
    """What every measurement shares: the options, the tools, the webhook, Redis."""

    args: argparse.Namespace
    wrk_bin: str
    webhook: Webhook
    body_file: Path
    redis: redis.Redis

    def measure(self, target: Target, *, fixed_rate: bool = False) -> _load.Latencies:
        """Warm ``target`` up, run wrk against it, and emit its ingest line (and more)."""
        port = free_port()
        env = {**dict(target.env), "PORT": str(port)}
        progress(f"{target.name}: starting ({target.server})")
        with serving(target.argv(port), port=port, env=env, cwd=target.cwd,
                     log=CACHE / f"{target.name}.log") as process:
            self.wrk(port, WARMUP_S, f"{target.name}-warmup")
            self.reset_redis()
            before = self.cpu(process.pid)
            result = self.wrk(port, self.args.duration, f"{target.name}-run")
            after = self.cpu(process.pid)
            server, redis_cpu, others = (b - a for a, b in zip(before, after, strict=True))
            emit(figure="ingest", target=target.name, **_figures(result),
                 connections=self.args.connections, threads=self.args.threads,
                 server_cpu_us_per_req=round(server / result.requests * 1e6),
                 **self.reactor_extras(target, redis_cpu / result.requests),
                 others_cpu_cores=round(max(others, 0.0) / result.seconds, 1),
                 payload_bytes=len(self.webhook.body), payload=self.webhook.describe(),
                 server=target.server)
            self.reset_redis()
            if fixed_rate:
                self.fixed_rate(target, port, process.pid)
            if target.name == "reactor":
                emit(figure="memory", process="web", rss_mb=round(rss_mb(process.pid), 1),
                     target_mb=TARGET_RSS_MB)
        return result

    def wrk(self, port: int, seconds: float, tag: str) -> _load.Latencies:
        progress(f"  wrk {seconds:g} s ({tag})")
        return _load.wrk(self.wrk_bin, port, self.body_file, self.webhook, seconds=seconds,
                         connections=self.args.connections, threads=self.args.threads, tag=tag)

    def fixed_rate(self, target: Target, port: int, pid: int) -> None:
        progress(f"  {FIXED_RATE}/s for {FIXED_RATE_S:g} s")
        others = self.cpu(pid)[2]
        result, lag = _load.fixed_rate(port, self.webhook, rate=FIXED_RATE,
                                       seconds=FIXED_RATE_S, tag=f"{target.name}-fixed")
        others = self.cpu(pid)[2] - others  # this process's own client counts as ours
        emit(figure="ingest_fixed_rate", target=target.name, rate=FIXED_RATE,
             seconds=FIXED_RATE_S, answered=result.requests, failed=result.failed,
             p50_ms=round(result.p50_ms, 2), p99_ms=round(result.p99_ms, 2),
             target_p99_ms=TARGET_P99_MS, client_send_lag_p99_ms=round(lag, 2),
             others_cpu_cores=round(max(others, 0.0) / FIXED_RATE_S, 1),
             client="bench/_load.py open loop on uvloop")

    def reactor_extras(self, target: Target, redis_cpu_s: float) -> dict[str, int]:
        """For the reactor: jobs queued (= requests answered, give or take those in flight
        when wrk stopped) and Redis's CPU per request, AOF rewrites included."""
        if target.name != "reactor":
            return {}
        return {"stored": int(Queue(keys.QUEUE_EVENTS, connection=self.redis).count),
                "redis_cpu_us_per_req": round(redis_cpu_s * 1e6)}

    def cpu(self, pid: int) -> tuple[float, float, float]:
        """CPU seconds so far of the server, of Redis, and of everything else on the machine
        (other people's work: on 2 shared cores it moves throughput, so the lines show it)."""
        info = self.redis.info("cpu")
        server, redis_cpu = cpu_seconds(pid), sum(float(info[f"used_cpu_{kind}"]) for kind in
                                                  ("sys", "user", "sys_children", "user_children"))
        return server, redis_cpu, others_cpu_seconds(server, redis_cpu)

    def reset_redis(self) -> None:
        """Empty Redis and compact its AOF, so no run inherits the last one's queue or log."""
        time.sleep(SETTLE_S)
        self.wait_for_rewrite()  # Redis refuses BGREWRITEAOF while one is running
        self.redis.flushall()
        self.redis.bgrewriteaof()
        self.wait_for_rewrite()

    def wait_for_rewrite(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.redis.info("persistence")
            if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
                return
            time.sleep(0.05)
        raise TimeoutError(f"Redis still rewrote its AOF after {timeout:g} s")


def reactor(redis_url: str) -> Target:
    return Target(
        "reactor", lambda port: [sys.executable, "-m", "reactor", "serve", "--port", str(port)],
        server="reactor serve: uvicorn, uvloop + httptools, 1 process",
        env=(("REDIS_URL", redis_url), ("WEBHOOK_SECRET", SECRET), ("SENTRY_DSN", "")),
    )


def bare_starlette() -> Target:
    return Target(
        "bare_starlette",
        lambda port: [sys.executable, "-m", "uvicorn", "bench.bare_starlette:app",
                      "--port", str(port), *UVICORN],
        server="starlette, uvicorn, uvloop + httptools, 1 process",
    )


def probot() -> Target | str:
    """Probot installed into the cache (once), or why it cannot be."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return "node or npm is not installed"
    home = CACHE / "probot"
    home.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "app.mjs"):
        shutil.copy2(BENCH / "probot" / name, home / name)
    wanted = json.loads((home / "package.json").read_text())["dependencies"]["probot"]
    installed = home / "node_modules" / "probot" / "package.json"
    if not installed.is_file() or json.loads(installed.read_text())["version"] != wanted:
        progress(f"probot: npm install probot@{wanted} into {home}")
        install = [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"]
        try:
            subprocess.run(install, cwd=home, capture_output=True, text=True,
                           timeout=300, check=True)
        except subprocess.CalledProcessError as exc:
            return f"npm install probot@{wanted} failed: {exc.stderr.strip()[-300:]}"
        except subprocess.TimeoutExpired:
            return f"npm install probot@{wanted} took over 300 s"
    version = subprocess.run([node, "--version"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
    return Target(
        "probot", lambda port: [node, "app.mjs"], server=f"probot {wanted}, node {version}",
        env=(("APP_ID", "1"), ("WEBHOOK_SECRET", SECRET), ("HOST", "127.0.0.1"),
             ("LOG_LEVEL", "warn"), ("NODE_ENV", "production")),
        cwd=home,
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    unwind_on_sigterm()
    wrk_bin = shutil.which("wrk")
    if wrk_bin is None:
        progress("bench: wrk is not installed: apt-get install -y wrk")
        return 2
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        webhook = issues_labeled()
    except PayloadUnavailable as exc:
        progress(f"bench: {exc}")
        return 2
    body_file = CACHE / "issues.labeled.json"
    body_file.write_bytes(webhook.body)
    probot_target = "--skip-probot was given" if args.skip_probot else probot()
    with tempfile.TemporaryDirectory(dir=CACHE) as data, private_redis(Path(data)) as url:
        client = redis.Redis.from_url(url)
        client.config_set("auto-aof-rewrite-min-size", AOF_REWRITE_MIN_SIZE)
        run = Run(args, wrk_bin, webhook, body_file, client)
        try:
            ours = run.measure(reactor(url), fixed_rate=True)
            bare = run.measure(bare_starlette(), fixed_rate=True)
            theirs = None
            if isinstance(probot_target, Target):
                theirs = run.measure(probot_target)
            else:
                emit(figure="ingest", target="probot", skipped=probot_target)
        except subprocess.CalledProcessError as exc:
            progress(f"bench: {exc.cmd[0]} failed: {(exc.stderr or '').strip()[-500:]}")
            return 1
        finally:
            client.close()
    emit(figure="ingest_ratio", vs_bare_starlette=round(ours.rps / bare.rps, 3),
         vs_probot=round(ours.rps / theirs.rps, 3) if theirs else None,
         target_vs_bare=TARGET_VS_BARE, target_vs_probot=1.0)
    return 0


def _figures(result: _load.Latencies) -> dict[str, Any]:
    return {"rps": round(result.rps, 1), "p50_ms": round(result.p50_ms, 2),
            "p99_ms": round(result.p99_ms, 2), "requests": result.requests,
            "seconds": round(result.seconds, 2), "failed": result.failed}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1; 2 cores)")
    parser.add_argument("--skip-probot", action="store_true", help="do not install or run Probot")
    return parser


def emit(**figure: Any) -> None:
    print(json.dumps(figure), flush=True)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the servers were stopped on the way out
        progress("bench: interrupted")
        sys.exit(130)
