"""Shared fixtures: real processes on loopback, no network.

``redis_server`` starts a private ``redis-server`` (append-only, on a free port, in a temp dir)
once per test session; ``redis_url`` hands each test its own flushed database; ``stack`` runs
the reactor's web process and two RQ worker processes against a sandbox GitHub.

Every process a fixture starts runs in a process group of its own and is stopped with its
whole group (RQ's scheduler process included) however the test ends. A test that ran workers
and passed also checks that RQ's failed registry is empty (SPEC §6: a worker never crashes
on a delivery), whichever folder the test is in.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue, SimpleWorker

from ghsandbox.config import SandboxConfig
from ghsandbox.testing import RunningSandbox, run_sandbox
from reactor.core.errors import ConfigError
from reactor.ops.processes import find_binary
from reactor.store import audit, keys
from reactor.store.audit import AuditRecord
from tests.prerequisites import missing


def sign(body: bytes, secret: str) -> str:
    """The ``X-Hub-Signature-256`` GitHub sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_headers(
    body: bytes, secret: str, *, event: str = "issues", guid: str = "d1"
) -> dict[str, str]:
    return {
        "X-GitHub-Event": event, "X-GitHub-Delivery": guid,
        "X-Hub-Signature-256": sign(body, secret), "Content-Type": "application/json",
    }


_PORTS = range(20000, 32000)  # below Linux's ephemeral range (32768-60999)
_PORT_CLAIMS = Path(tempfile.gettempdir()) / "reactor-test-ports"
_next_ports: Iterator[int] | None = None


def free_port() -> int:
    """A loopback port nothing listens on, for a server a test starts next.

    It lies below the ephemeral range, so no outgoing connection and no server bound to
    port 0 takes it; and it is claimed (a file naming this process) so that no other test
    process — another pytest-xdist worker, another test session — hands it out while this
    one's server is starting."""
    global _next_ports
    if _next_ports is None:
        start = random.randrange(len(_PORTS))
        _next_ports = itertools.cycle([*_PORTS[start:], *_PORTS[:start]])
    _PORT_CLAIMS.mkdir(exist_ok=True)
    for port in _next_ports:
        if not _claim(_PORT_CLAIMS / str(port)):
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("unreachable")


def _claim(path: Path) -> bool:
    """Claim a port for this process, taking over a claim whose process is gone."""
    try:
        with path.open("x") as claim:
            claim.write(str(os.getpid()))
        return True
    except FileExistsError:
        pass
    try:
        owner = int(path.read_text() or "0")
    except (OSError, ValueError):
        return False
    if owner == os.getpid() or _alive(owner):
        return False
    stale = path.with_name(f"{path.name}.{os.getpid()}.stale")
    try:
        path.rename(stale)  # one process wins the takeover
    except OSError:
        return False
    stale.unlink(missing_ok=True)
    return _claim(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def wait_for_port(port: int, *, timeout: float = 30.0) -> None:
    """Wait for a server to listen. Generous: with four test workers on two cores, a web
    process that imports everything and reads GitHub at start-up can take several seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class RedisServer:
    """A private redis-server process that tests may stop and start again on the same port."""

    def __init__(self, directory: Path) -> None:
        try:
            self.binary = find_binary()
        except ConfigError as exc:
            missing(str(exc))
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.directory), "--appendonly", "yes",
                "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port)
        self._wait_until_loaded()

    def _wait_until_loaded(self, timeout: float = 10.0) -> None:
        """Redis listens while it loads its append-only file; it serves only after."""
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.exceptions.BusyLoadingError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)
            self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A clean database on the session's redis-server (restarted if a test stopped it)."""
    if redis_server.process is None:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


# -- processes and outcomes --------------------------------------------------------------------


def work_burst(queues: list[Queue], connection: redis.Redis) -> None:
    """Run RQ's SimpleWorker in this process until ``queues`` are empty."""
    _BurstWorker(queues, connection=connection).work(burst=True)


class _BurstWorker(SimpleWorker):
    """RQ's SimpleWorker without its command channel: a burst needs no ``rq`` commands, and
    RQ's pub/sub thread (it wakes every 60 s) held the burst's end for up to a minute."""

    def subscribe(self) -> None:
        return None


def signal_group(process: subprocess.Popen[Any], signum: int) -> None:
    """Send ``signum`` to the process group ``process`` leads (started in a new session)."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def stop_groups(processes: Iterable[subprocess.Popen[Any]]) -> None:
    """SIGTERM every group at once (they stop in parallel), then wait for each to be empty."""
    processes = list(processes)
    for process in processes:
        signal_group(process, signal.SIGTERM)
    for process in processes:
        stop_group(process)


def stop_group(process: subprocess.Popen[Any], *, timeout: float = 10.0) -> None:
    """SIGTERM ``process``'s group, SIGKILL it after ``timeout``; return once it is empty."""
    signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        signal_group(process, signal.SIGKILL)
        process.wait()
    deadline = time.monotonic() + timeout
    while True:  # the rest of the group: the process's own children
        try:
            os.killpg(process.pid, signal.SIGKILL if time.monotonic() > deadline else 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)


@dataclass
class _Outcome:
    """Whether the running test has failed so far (its call phase), for teardown checks."""

    failed: bool = False


_TEST = _Outcome()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """Keep each phase's report on the item (``item.rep_call``), so that fixtures can tell
    whether the test failed, and note the running test's failure for :func:`running_stack`."""
    outcome: Any = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
    if report.when == "setup":
        _TEST.failed = report.failed
    elif report.failed:
        _TEST.failed = True


@dataclass
class Stack:
    """The whole reactor as separate processes (web + RQ workers) against a sandbox GitHub."""

    web_url: str
    redis_url: str
    sandbox: RunningSandbox
    processes: list[subprocess.Popen[bytes]]
    logs: list[Path]
    env: dict[str, str] | None = None
    log_dir: Path | None = None

    def start(self, *args: str, crash_at: str | None = None, **env: str
              ) -> subprocess.Popen[bytes]:
        """Start one more ``reactor`` process (``args``: its subcommand and flags), with
        ``env`` added to the stack's environment; it is stopped with the stack. ``crash_at``:
        a crash point it exits at as if killed (tests/crashing_worker.py)."""
        assert self.env is not None and self.log_dir is not None
        log = self.log_dir / f"proc{len(self.logs)}-{args[0]}.log"
        entry = ["tests.crashing_worker", crash_at] if crash_at else ["reactor"]
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", *entry, *args], env={**self.env, **env},
                cwd=Path(__file__).parent.parent,  # where ``tests`` is a package
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.processes.append(process)
        self.logs.append(log)
        return process

    @property
    def webhook_url(self) -> str:
        return f"{self.web_url}/api/github/webhooks"

    def audit(self) -> list[AuditRecord]:
        client = redis.Redis.from_url(self.redis_url)
        try:
            return list(reversed(list(audit.read(client, limit=10_000))))
        finally:
            client.close()

    def failed_jobs(self) -> list[tuple[str, str]]:
        """(queue/job id, its traceback's last lines) of every job in RQ's failed registries."""
        return failed_jobs(self.redis_url)

    def assert_no_failed_jobs(self) -> None:
        """SPEC §6: a worker never crashes; nothing a passing test did may end in RQ's failed
        registry (run for every test that ran workers, by :func:`running_stack`)."""
        assert_no_failed_jobs(self.redis_url)

    def log_tails(self, chars: int = 3000) -> str:
        """The end of each process's output, for a failing test's report."""
        tails = [(log.name, log.read_text(errors="replace")[-chars:]) for log in self.logs]
        return "\n".join(f"--- {name} (tail) ---\n{tail}" for name, tail in tails if tail.strip())

    def wait_for_audit(
        self, predicate: Callable[[AuditRecord], bool], *, timeout: float = 20.0
    ) -> AuditRecord:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.audit():
                if predicate(record):
                    return record
            for process in self.processes:
                assert process.poll() is None, f"{process.args!r} exited with {process.returncode}"
            time.sleep(0.05)
        raise TimeoutError(f"no matching audit record after {timeout}s: {self.audit()[-5:]}")


def failed_jobs(redis_url: str) -> list[tuple[str, str]]:
    """(queue/job id, its traceback's last lines) of every job in the failed registry of each
    queue the workers take: the webhooks' and the sweeps' (every worker's start-up sweep)."""
    connection = redis.Redis.from_url(redis_url)
    try:
        found = []
        known = {q.name for q in Queue.all(connection=connection)}  # any other queue RQ has seen
        for name in sorted({keys.QUEUE_EVENTS, keys.QUEUE_SWEEP} | known):
            queue = Queue(name, connection=connection)
            for job_id in queue.failed_job_registry.get_job_ids():
                job = queue.fetch_job(job_id)
                found.append((f"{name}/{job_id}",
                              (job.exc_info or "")[-1500:] if job else "(gone)"))
        return found
    finally:
        connection.close()


def assert_no_failed_jobs(redis_url: str) -> None:
    """SPEC §6: a worker never crashes; nothing a passing test did may end in a failed
    registry. Every test that ran workers checks it: :func:`running_stack` for its stack, and
    each fixture that runs workers on its own (``reactor dev``, a lone ``reactor worker``)."""
    failed = failed_jobs(redis_url)
    assert failed == [], "jobs in RQ's failed registries:\n" + "\n".join(
        f"--- {job_id} ---\n{reason}" for job_id, reason in failed)


@contextmanager
def running_stack(redis_url: str, *, workers: int, log_dir: Path,
                  env: dict[str, str] | None = None) -> Iterator[Stack]:
    """``reactor serve`` and ``workers`` × ``reactor worker`` against an in-thread sandbox.

    Each process writes its output to a file in ``log_dir`` (see :meth:`Stack.log_tails`).
    """
    port = free_port()
    webhook_url = f"http://127.0.0.1:{port}/api/github/webhooks"
    commands = [["serve", "--port", str(port)]]
    commands += [["worker", "--name", f"w{i}-{port}"] for i in range(workers)]
    with run_sandbox(SandboxConfig.generate(webhook_urls=(webhook_url,))) as sandbox:
        env = {**os.environ, **sandbox.env(), "REDIS_URL": redis_url, "LOG_LEVEL": "warning",
               **(env or {})}
        stack = Stack(f"http://127.0.0.1:{port}", redis_url, sandbox, [], [], env, log_dir)
        for args in commands:
            stack.start(*args)
        try:
            wait_for_port(port)
            serve = stack.processes[0]
            assert serve.poll() is None, f"reactor serve exited:\n{stack.log_tails()}"
            yield stack
            if not _TEST.failed:
                stack.assert_no_failed_jobs()
        finally:
            stop_groups(stack.processes)


@pytest.fixture
def stack(redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    """web + 2 RQ worker processes on a real redis-server, wired to an in-thread sandbox."""
    with running_stack(redis_url, workers=2, log_dir=tmp_path) as running:
        yield running
