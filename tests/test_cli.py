"""The ``reactor`` command as users run it: help, one-line errors, ``reactor dev``, and Ctrl-C
stopping every long-running command with all its processes, even when it was started with
SIGINT ignored (as a background job, nohup or a CI runner start it)."""

from __future__ import annotations

import contextlib
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
from typing import Any

import httpx
import pytest
import redis

from ghsandbox.config import SandboxConfig
from ghsandbox.testing import run_sandbox
from reactor.store import audit
from tests.conftest import assert_no_failed_jobs, free_port, wait_for_port
from tests.process_tree import ProcessTree, process_tree

COMMANDS = ("dev", "serve", "worker", "sandbox", "audit")
WAIT_S = 60  # a deadline for processes to answer or stop, not a timing assertion


def reactor(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> (
    subprocess.CompletedProcess[str]
):
    return subprocess.run([sys.executable, "-m", "reactor", *args], capture_output=True,
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


def background_job(*args: str, **popen: Any) -> contextlib.AbstractContextManager[ProcessTree]:
    """``reactor ARGS`` started as a background job (``reactor … &`` in a script) starts it:
    with SIGINT ignored. Whatever is left of it is killed on the way out."""
    return process_tree([sys.executable, "-m", "reactor", *args], sigint_ignored=True,
                        **popen)


def dev_redis_url(banner: str) -> str:
    """``reactor dev``'s private Redis, password and all: read from the file its banner names
    (the banner shows the URL masked)."""
    url_file = re.search(r"full URL in (\S+)\)", banner)
    assert url_file, banner
    return Path(url_file[1]).read_text()


def test_reactor_dev_no_demo_runs_the_whole_reactor_against_a_quiet_sandbox(
    tmp_path: Path,
) -> None:
    """Started as a background job is (SIGINT ignored), Ctrl-C still stops it all."""
    port = free_port()
    with background_job("dev", "--no-demo", "--port", str(port), stdout=subprocess.PIPE,
                        text=True, env=clean_env(), cwd=tmp_path) as dev:
        banner = _read_until(_lines(dev.process.stdout), "Press Ctrl-C to stop.")
        sandbox_url = re.search(r"sandbox\s+(http://\S+)", banner)
        assert sandbox_url, banner
        redis_url = dev_redis_url(banner)
        assert f"http://127.0.0.1:{port}/api/github/webhooks" in banner

        created = httpx.post(
            f"{sandbox_url[1]}/repos/demo/agents/issues",
            headers={"Authorization": "token user:alice"},
            json={"title": "[titanic] planner: plan", "labels": ["agent:planner"]},
        )
        assert created.status_code == 201
        client = redis.Redis.from_url(redis_url)
        deadline = time.monotonic() + 20
        while not any(r.actor == "alice" and r.action == "opened" for r in audit.read(client)):
            assert time.monotonic() < deadline, "the worker did not audit the sandbox's webhook"
            time.sleep(0.1)
        client.close()
        issues = httpx.get(f"{sandbox_url[1]}/repos/demo/agents/issues?state=all",
                           headers={"Authorization": "token user:alice"}).json()
        assert [i["user"]["login"] for i in issues] == ["alice"]  # no demo agents at work

        assert_whole_dev_tree(dev)
        assert_no_failed_jobs(redis_url)
        assert dev.interrupt(signal.SIGINT) == 0  # and nothing of the tree is left running
    assert not _listening(port)


def test_the_children_of_a_killed_reactor_dev_stop_by_themselves(tmp_path: Path) -> None:
    """``kill -9`` leaves ``reactor dev`` no chance to stop its children (each in a session of
    its own, out of reach of its process group): they get SIGTERM from the kernel instead.
    (Redis stops at once then; a worker asked to stop no longer waits for Redis, so its
    last records fail at once rather than after its ride-through retries.)"""
    env = {**clean_env(), "TMPDIR": str(tmp_path)}  # its work directory, left behind
    with background_job("dev", "--no-demo", "--port", str(free_port()),
                        stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path) as dev:
        _read_until(_lines(dev.process.stdout), "Press Ctrl-C to stop.")
        assert_whole_dev_tree(dev)
        dev.process.kill()
        assert dev.process.wait(timeout=WAIT_S) == -signal.SIGKILL
        deadline = time.monotonic() + WAIT_S  # a deadline for them to stop, not a timing check
        while left := dev.leftovers():
            assert time.monotonic() < deadline, f"still running: {left}"
            time.sleep(0.1)


def assert_whole_dev_tree(dev: ProcessTree, *, demo: bool = False) -> None:
    """The tree holds every process ``reactor dev`` starts (so that a check that all of them
    stopped checks something)."""
    commands = dev.commands()
    wanted = ["redis-server", "reactor sandbox", "reactor serve",
              "reactor worker --name dev-0", "reactor worker --name dev-1"]
    wanted += ["reactor.ops.demo"] if demo else []
    for part in wanted:
        assert any(part in command for command in commands), (part, commands)


@pytest.mark.parametrize("command", ["serve", "worker", "sandbox"])
def test_a_long_running_command_started_with_sigint_ignored_stops_on_ctrl_c(
    command: str, redis_url: str, tmp_path: Path,
) -> None:
    """A background job, nohup, a CI runner or a pytest-xdist worker starts a process with
    SIGINT ignored; each command installs its own handler, so Ctrl-C stops it anyway, with
    its children (the worker's RQ scheduler process)."""
    port = free_port()
    env = {**clean_env(), "REDIS_URL": redis_url, "LOG_LEVEL": "warning"}
    args = {"serve": ["serve", "--port", str(port)],
            "worker": ["worker", "--name", f"sigint-{port}"],
            "sandbox": ["sandbox", "--port", str(port)]}[command]
    with contextlib.ExitStack() as stack:
        if command == "worker":  # a worker needs an App to act as: the sandbox's
            sandbox = stack.enter_context(run_sandbox(SandboxConfig.generate()))
            env.update(sandbox.env())
        tree = stack.enter_context(background_job(*args, env=env, cwd=tmp_path,
                                                  stdout=subprocess.DEVNULL))
        if command == "worker":
            client = redis.Redis.from_url(redis_url)
            deadline = time.monotonic() + WAIT_S
            while not any(b"sigint-" in name for name in client.smembers("rq:workers")):
                assert tree.process.poll() is None, "the worker exited at start"
                assert time.monotonic() < deadline, "the worker did not register with RQ"
                time.sleep(0.1)
            client.close()
            assert len(tree.members()) == 2, tree.commands()  # the worker and RQ's scheduler
            assert_no_failed_jobs(redis_url)
        else:
            wait_for_port(port)
        assert tree.interrupt(signal.SIGINT) == 0  # stopped as asked, with nothing left
