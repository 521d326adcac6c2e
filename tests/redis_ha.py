"""A Redis master, its replica and three Sentinels on loopback ports, as real processes.

:class:`SentinelSet` starts Debian's ``redis-server`` twice (the master, and a replica of
it) and three Sentinels (``redis-sentinel``, or ``redis-server --sentinel``: the same
program), each in a session of its own and stopped with its process group however the test
ends. The master and the replica require a password, as do the Sentinels (their own); the
Sentinels declare the master down after a second, so a failover takes a few seconds.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from tests.conftest import free_port, signal_group, stop_groups, wait_for_port
from tests.prerequisites import missing

MASTER_NAME = "reactor"
PASSWORD = "redis-secret"
SENTINEL_PASSWORD = "sentinel-secret"
DOWN_AFTER_MS = 1000


@contextmanager
def running_sentinels(directory: Path) -> Iterator[SentinelSet]:
    """A started :class:`SentinelSet`, stopped whole however the block ends."""
    ha = SentinelSet(directory)
    try:
        ha.start()
        yield ha
    finally:
        ha.stop()


class SentinelSet:
    """A master, a replica and three Sentinels watching them."""

    def __init__(self, directory: Path) -> None:
        server = shutil.which("redis-server")
        if server is None:
            missing("Debian's redis-server is not installed (apt-get install redis-server)")
        self.server = server
        sentinel = shutil.which("redis-sentinel")
        self.sentinel_command = [sentinel] if sentinel else [server]
        self.sentinel_flag = [] if sentinel else ["--sentinel"]
        self.directory = directory
        self.ports = {"master": free_port(), "replica": free_port()}
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    # -- what a test gives the reactor ---------------------------------------------------

    def env(self) -> dict[str, str]:
        """The reactor's settings for this set: Sentinel, with both passwords."""
        return {
            "REDIS_URL": f"redis://:{PASSWORD}@{MASTER_NAME}/0",
            "REDIS_SENTINELS": ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports),
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
            "REDIS_SENTINEL_PASSWORD": SENTINEL_PASSWORD,
        }

    @staticmethod
    def url(port: int) -> str:
        """A direct URL of one server (for the test's own looks, not the reactor's)."""
        return f"redis://:{PASSWORD}@127.0.0.1:{port}/0"

    # -- starting and stopping -----------------------------------------------------------

    def start(self, *, timeout: float = 60.0) -> None:
        self._server("master", [])
        self._server("replica", ["--replicaof", "127.0.0.1", str(self.ports["master"])])
        for port in self.sentinel_ports:
            self._sentinel(port)
        self._wait_until_watched(timeout)

    def stop(self) -> None:
        stop_groups(self.processes.values())
        self.processes.clear()

    def kill(self, port: int) -> None:
        """SIGKILL the server on ``port`` (and its process group): a machine lost."""
        process = self.processes.pop(port)
        signal_group(process, signal.SIGKILL)
        process.wait(10)

    def _spawn(self, port: int, args: list[str], log: str) -> None:
        with (self.directory / log).open("wb") as out:
            self.processes[port] = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(port)

    def _server(self, role: str, extra: list[str]) -> None:
        port = self.ports[role]
        directory = self.directory / role
        directory.mkdir(parents=True, exist_ok=True)
        self._spawn(port, [
            self.server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--requirepass", PASSWORD, "--masterauth", PASSWORD, "--daemonize", "no", *extra,
        ], f"{role}.log")

    def _sentinel(self, port: int) -> None:
        directory = self.directory / f"sentinel-{port}"
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "sentinel.conf"  # Sentinel rewrites it: its own, writable copy
        config.write_text("\n".join([
            f"port {port}", "bind 127.0.0.1", "daemonize no", f'dir "{directory}"',
            f"requirepass {SENTINEL_PASSWORD}",
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.ports['master']} 2",
            f"sentinel auth-pass {MASTER_NAME} {PASSWORD}",
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {MASTER_NAME} 10000",
            f"sentinel parallel-syncs {MASTER_NAME} 1", "",
        ]))
        self._spawn(port, [*self.sentinel_command, str(config), *self.sentinel_flag],
                    f"sentinel-{port}.log")

    def _wait_until_watched(self, timeout: float) -> None:
        """Until every Sentinel knows the replica and the other two (a failover needs their
        quorum), and the replica has copied the master."""
        deadline = time.monotonic() + timeout
        while not self._watched():
            if time.monotonic() > deadline:
                raise AssertionError(f"the Sentinels never saw the whole set:\n{self.logs()}")
            time.sleep(0.2)

    def _watched(self) -> bool:
        with self.client(self.ports["replica"]) as replica:
            if replica.info("replication").get("master_link_status") != "up":
                return False
        for port in self.sentinel_ports:
            state = self.sentinel_state(port)
            if int(state.get("num-slaves", 0)) != 1 or int(state.get("num-other-sentinels",
                                                                     0)) != 2:
                return False
        return True

    # -- looking -------------------------------------------------------------------------

    @contextmanager
    def client(self, port: int) -> Iterator[redis.Redis]:
        client = redis.Redis(port=port, password=PASSWORD, socket_timeout=5)
        try:
            yield client
        finally:
            client.close()

    def sentinel_state(self, port: int) -> dict[str, Any]:
        sentinel = redis.Redis(port=port, password=SENTINEL_PASSWORD, socket_timeout=5,
                               decode_responses=True)
        try:
            state: dict[str, Any] = sentinel.sentinel_master(MASTER_NAME)
            return state
        finally:
            sentinel.close()

    def master_port(self) -> int:
        """The master's port, as the Sentinels that answer agree it is."""
        named = set()
        for port in self.sentinel_ports:
            sentinel = redis.Redis(port=port, password=SENTINEL_PASSWORD, socket_timeout=5)
            try:
                named.add(int(sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)[1]))
            except redis.RedisError:
                continue
            finally:
                sentinel.close()
        assert len(named) == 1, f"the Sentinels disagree on the master: {named}"
        return named.pop()

    def wait_for_failover(self, old: int, *, timeout: float = 60.0) -> int:
        """Until the Sentinels name another master and it serves as one; its port."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                port = self.master_port()
                if port != old:
                    with self.client(port) as promoted:
                        if promoted.info("replication")["role"] == "master":
                            return port
            except (AssertionError, redis.RedisError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"no failover within {timeout} s:\n{self.logs()}")
            time.sleep(0.2)

    def logs(self, chars: int = 2000) -> str:
        return "\n".join(f"--- {log.name} ---\n{log.read_text(errors='replace')[-chars:]}"
                         for log in sorted(self.directory.glob("*.log")))
