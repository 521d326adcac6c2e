"""The servers under test: each in its own process group, always stopped on the way out."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from reactor.ops.processes import wait_for_port

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


@contextmanager
def serving(
    argv: Sequence[str], *, port: int, env: Mapping[str, str], cwd: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` until the block ends, once it listens on the loopback ``port``.

    Its output goes to ``log``: a server that fails to start says why there.
    """
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, env={**os.environ, **env}, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: npm/node children are stopped with it
        )
        try:
            wait_for_port(port, process, timeout=START_TIMEOUT_S)
            yield process
        finally:
            stop(process)


def unwind_on_sigterm() -> None:
    """A benchmark told to stop (SIGTERM, as ``timeout`` or a CI runner sends) unwinds like
    Ctrl-C, so every server it started (each in a session of its own) is stopped."""
    def terminate(signum: int, frame: object) -> NoReturn:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL it if it outstays ``STOP_TIMEOUT_S``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
            return
        except subprocess.TimeoutExpired:
            continue


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time ``pid`` (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def others_cpu_seconds(*ours: float) -> float:
    """CPU time the machine has spent so far on work that is neither this process, nor its
    finished children (wrk), nor ``ours`` (the servers' CPU seconds, read just before)."""
    # user, nice, system: interrupt time is left out, loopback traffic is partly counted there
    ticks = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:4]
    busy = sum(int(t) for t in ticks) / os.sysconf("SC_CLK_TCK")
    own = (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    return busy - sum(ours) - sum(r.ru_utime + r.ru_stime for r in own)


def rss_mb(pid: int) -> float:
    """The resident set size of ``pid`` in MiB (Linux ``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no VmRSS for process {pid}")
