"""The ``reactor`` command as users run it: help, one-line errors, and ``reactor dev``."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import redis

from reactor.store import audit
from tests.conftest import free_port

COMMANDS = ("dev", "serve", "worker", "sandbox", "audit")


def reactor(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> (
    subprocess.CompletedProcess[str]
):
    return subprocess.run([sys.executable, "-m", "reactor.cli", *args], capture_output=True,
                          text=True, timeout=60, env=env, cwd=cwd)


def clean_env() -> dict[str, str]:
    """The environment without any App, Redis or webhook settings of the developer's."""
    names = ("APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "WEBHOOK_SECRET", "REDIS_URL",
             "GITHUB_API_URL", "SENTRY_DSN", "PORT")
    return {k: v for k, v in os.environ.items() if k not in names}


def test_help_lists_every_command() -> None:
    done = reactor("--help")
    assert done.returncode == 0
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s", done.stdout, re.M), command


def test_every_command_has_help() -> None:
    for command in COMMANDS:
        done = reactor(command, "--help")
        assert done.returncode == 0 and "usage:" in done.stdout, command


def test_a_user_mistake_is_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    done = reactor("audit", env=clean_env(), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == "reactor: REDIS_URL is not set: e.g. redis://127.0.0.1:6379/0\n"
    nowhere = f"redis://127.0.0.1:{free_port()}"
    unreachable = reactor("audit", env={**clean_env(), "REDIS_URL": nowhere})
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("reactor: cannot reach Redis")
    assert "Traceback" not in unreachable.stderr


def _lines(stream: object) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _read_until(lines: queue.Queue[str], marker: str, timeout: float = 60) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        seen += lines.get(timeout=max(0.1, deadline - time.monotonic()))
    return seen


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_reactor_dev_no_demo_runs_the_whole_reactor_against_a_quiet_sandbox(
    tmp_path: Path,
) -> None:
    port = free_port()
    dev = subprocess.Popen(
        [sys.executable, "-m", "reactor.cli", "dev", "--no-demo", "--port", str(port)],
        stdout=subprocess.PIPE, text=True, env=clean_env(), cwd=tmp_path)
    try:
        banner = _read_until(_lines(dev.stdout), "Press Ctrl-C to stop.")
        sandbox_url = re.search(r"sandbox\s+(http://\S+)", banner)
        url_file = re.search(r"full URL in (\S+)\)", banner)
        assert sandbox_url and url_file, banner
        assert f"http://127.0.0.1:{port}/api/github/webhooks" in banner

        created = httpx.post(
            f"{sandbox_url[1]}/repos/demo/agents/issues",
            headers={"Authorization": "token user:alice"},
            json={"title": "[titanic] planner: plan", "labels": ["agent:planner"]},
        )
        assert created.status_code == 201
        client = redis.Redis.from_url(Path(url_file[1]).read_text())
        deadline = time.monotonic() + 20
        while not any(r.actor == "alice" and r.action == "opened" for r in audit.read(client)):
            assert time.monotonic() < deadline, "the worker did not audit the sandbox's webhook"
            time.sleep(0.1)
        client.close()
        issues = httpx.get(f"{sandbox_url[1]}/repos/demo/agents/issues?state=all",
                           headers={"Authorization": "token user:alice"}).json()
        assert [i["user"]["login"] for i in issues] == ["alice"]  # no demo agents at work
    finally:
        dev.send_signal(signal.SIGINT)
        code = dev.wait(timeout=30)
    assert code == 0
    assert not _listening(port)
