"""``reactor dev``: the whole reactor on one machine, for trying it and for developing it.

It starts, as separate processes: Redis (the ``REDIS_URL`` one, else a private append-only
``redis-server``), the web process and the workers. With no App credentials configured it
also starts the sandbox GitHub, takes the App's id, key and webhook secret from it, creates
a demo repository with the App installed, and (unless ``--no-demo``) starts the demo agents
(:mod:`reactor.ops.demo`). Its own console then prints one line per decision, read from the
audit log (:mod:`reactor.ops.console`).

Ctrl-C or SIGTERM stops everything it started — web, workers and demo agents, then the
sandbox, then Redis — even when it was started with SIGINT ignored (a background job, nohup),
and a child that does not stop within ten seconds is killed with its process group
(:mod:`reactor.ops.processes`); should ``reactor dev`` itself be killed, its children get SIGTERM.

What it prints never carries a password: Redis's URL is shown masked, and the private Redis's
full URL (with its generated password) is written to a file only this user can read.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis

from reactor.core.errors import ConfigError
from reactor.ops.console import Console
from reactor.ops.processes import (
    free_port,
    hold_signals,
    private_redis,
    spawn,
    stop,
    stop_on_signals,
    wait_for_port,
)
from reactor.process.settings import Settings, mask_url
from reactor.store import audit

DEMO_OWNER, DEMO_REPO = "demo", "agents"


def run_dev(settings: Settings, *, port: int, workers: int, demo: bool = True) -> int:
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    with stop_on_signals(), ExitStack() as stack:  # handlers first: children inherit none
        try:
            procs = _start(stack, settings, port=port, workers=workers, demo=demo)
            return _supervise(procs)
        finally:
            hold_signals()  # the stack now stops everything; a second Ctrl-C cannot cut it


def _start(stack: ExitStack, settings: Settings, *, port: int, workers: int,
           demo: bool) -> list[subprocess.Popen[bytes]]:
    """Start everything, each process stopped by ``stack``; print the banner; the web,
    worker and demo processes."""
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="reactor-dev-")))
    env = dict(os.environ, PORT=str(port), LOG_LEVEL=settings.log_level)
    env["REDIS_URL"] = settings.redis_url or stack.enter_context(
        private_redis(workdir / "redis")
    )
    lines = _redis_lines(env["REDIS_URL"], workdir, private=not settings.redis_url)
    if not settings.has_app:
        sandbox_url = stack.enter_context(_sandbox(port, workdir))
        env.update(_sandbox_app(sandbox_url))
        lines.append(f"  sandbox    {sandbox_url}  (GitHub stand-in, repository "
                     f"{DEMO_OWNER}/{DEMO_REPO}; see README 'The sandbox GitHub')")
    procs = [_spawn(["serve", "--port", str(port)], env)]
    procs += [_spawn(["worker", "--name", f"dev-{i}"], env) for i in range(workers)]
    stack.callback(stop, procs)
    wait_for_port(port, procs[0])
    demo = demo and not settings.has_app
    if demo:
        procs.append(_spawn(["--sandbox", env["GITHUB_API_URL"]], env, module="reactor.ops.demo"))
    print("reactor dev is running", *lines,
          f"  dashboard  http://127.0.0.1:{port}/",
          f"  webhooks   http://127.0.0.1:{port}/api/github/webhooks",
          f"  workers    {workers}" + ("; demo agents play two competitions" if demo
                                       else ""),
          "Press Ctrl-C to stop. What the reactor decides follows, one line each:",
          sep="\n", flush=True)
    quit_console = threading.Event()
    stack.callback(quit_console.set)
    threading.Thread(target=_print_decisions, args=(env["REDIS_URL"], quit_console),
                     daemon=True).start()
    return procs


def _redis_lines(url: str, workdir: Path, *, private: bool) -> list[str]:
    """The banner's lines about Redis. The private Redis's URL, password and all, goes to a
    file readable by this user only, which the ``reactor audit`` line reads."""
    if not private:
        return [f"  redis      {mask_url(url)}", "  audit log  reactor audit"]
    url_file = workdir / "redis-url"
    descriptor = os.open(url_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(url)
    return [f"  redis      {mask_url(url)} (private; full URL in {url_file})",
            f"  audit log  REDIS_URL=$(cat {url_file}) reactor audit"]


def _print_decisions(url: str, done: threading.Event) -> None:
    """The console's live log: each new decision in the audit log, one readable line."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    console = Console()
    try:
        last = audit.newest_id(client)
        while not done.is_set():
            records, last = audit.read_after(client, last, block_ms=300)
            lines = [line for record in records for line in console.feed(record)]
            for line in lines + console.due(datetime.now(UTC)):
                print(line, flush=True)
    except redis.RedisError:
        return  # Redis stopped: reactor dev is shutting down
    finally:
        client.close()


def _spawn(args: list[str], env: dict[str, str], *, module: str = "reactor",
           log: Path | None = None) -> subprocess.Popen[bytes]:
    """A child in its own session: Ctrl-C reaches only ``reactor dev``, which then stops the
    children in order (web, workers and demo agents, the sandbox, Redis last). With ``log``,
    its output goes to that file instead of the console."""
    output = None if log is None else log.open("ab")
    try:
        return spawn([sys.executable, "-m", module, *args], env=env, stdout=output,
                     stderr=output)
    finally:
        if output is not None:
            output.close()


@contextmanager
def _sandbox(port: int, workdir: Path) -> Iterator[str]:
    sandbox_port = free_port()
    webhook = f"http://127.0.0.1:{port}/api/github/webhooks"
    proc = _spawn(["sandbox", "--port", str(sandbox_port), "--webhook-url", webhook,
                   "--state-dir", str(workdir / "sandbox")], dict(os.environ),
                  log=workdir / "sandbox.log")
    try:
        wait_for_port(sandbox_port, proc)
        yield f"http://127.0.0.1:{sandbox_port}"
    finally:
        stop([proc])


def _sandbox_app(url: str) -> dict[str, str]:
    """The environment that points the reactor at the sandbox's App, with a demo repository."""
    with httpx.Client(base_url=url, timeout=10) as client:
        app = client.get("/_sandbox/app").raise_for_status().json()
        client.post("/_sandbox/repos", json={"owner": DEMO_OWNER, "name": DEMO_REPO})
    return {
        "APP_ID": str(app["app_id"]), "PRIVATE_KEY": app["private_key"],
        "WEBHOOK_SECRET": app["webhook_secret"], "GITHUB_API_URL": url,
    }


def _supervise(procs: list[subprocess.Popen[bytes]]) -> int:
    """Wait until Ctrl-C or SIGTERM (0), or until a child exits on its own (1); the caller
    then stops the others."""
    try:
        while True:
            for proc in procs:
                if proc.poll() is not None:
                    name = " ".join(map(str, proc.args[3:])) if isinstance(proc.args, list) else ""
                    print(f"reactor dev: {name} exited with code {proc.returncode}; stopping",
                          file=sys.stderr)
                    return 1
            time.sleep(0.2)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (reactor.ops.processes.Interrupted)
        return 0
