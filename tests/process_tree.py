"""Processes a test starts, found and stopped whole however the test ends.

A test that starts ``reactor dev`` starts a tree: Redis, the sandbox, web, workers (each with
RQ's scheduler process) and the demo agents, each in a session of its own. A test that fails
or times out must leave none of it running, and a test of Ctrl-C must be able to tell that
all of it is gone. :class:`ProcessTree` starts the command in a session of its own and finds
its descendants through ``/proc`` by parent (no psutil); every process it has seen is
remembered with its start time, so it is recognised — and killed, with its process group —
even after its parent died, and a reused pid is never mistaken for it.

``sigint_ignored=True`` starts the command as a shell starts a background job (``cmd &`` in
a script), ``nohup`` or a CI runner may: with SIGINT ignored, inherited across ``exec``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ``trap '' INT`` ignores SIGINT and ``exec`` keeps it ignored: exactly a background job's lot.
IGNORING_SIGINT = ("sh", "-c", 'trap "" INT; exec "$0" "$@"')
KILL_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Proc:
    """One running process as ``/proc`` shows it."""

    pid: int
    ppid: int
    pgid: int
    started: int  # clock ticks after boot: a process that reuses the pid starts later


def _read(pid: int) -> Proc | None:
    """The process ``pid``, or None when there is none or it has exited (a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    if fields[0] in ("Z", "X"):
        return None
    return Proc(pid, ppid=int(fields[1]), pgid=int(fields[2]), started=int(fields[19]))


def running() -> dict[int, Proc]:
    """Every running process, by pid."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (proc := _read(int(entry))) is not None:
            found[proc.pid] = proc
    return found


def group_exists(pgid: int) -> bool:
    """Whether any process is left in the process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class ProcessTree:
    """A command started in a session of its own, and every process it started."""

    def __init__(self, args: Sequence[str], *, sigint_ignored: bool = False,
                 **popen: Any) -> None:
        command = [*IGNORING_SIGINT, *args] if sigint_ignored else list(args)
        self.process: subprocess.Popen[Any] = subprocess.Popen(
            command, start_new_session=True, **popen)
        self.seen: dict[int, Proc] = {}

    def members(self) -> list[Proc]:
        """The processes of the tree running now: the command, its descendants, and every
        process seen before that still runs (remembered, so orphans are not lost)."""
        now = running()
        children: dict[int, list[Proc]] = defaultdict(list)
        for proc in now.values():
            children[proc.ppid].append(proc)
        roots = [self.process.pid, *self.seen]
        todo = [now[pid] for pid in roots
                if pid in now and self.seen.get(pid, now[pid]) == now[pid]]  # not a reused pid
        found: dict[int, Proc] = {}
        while todo:
            proc = todo.pop()
            if proc.pid not in found:
                found[proc.pid] = proc
                todo += children[proc.pid]
        self.seen.update(found)
        return sorted(found.values(), key=lambda p: p.pid)

    def commands(self) -> list[str]:
        """The command lines of the tree's running processes (``redis-server 127.0.0.1:…``,
        ``… -m reactor worker …``), to check a test saw the whole tree."""
        lines = []
        for proc in self.members():
            with contextlib.suppress(OSError):
                raw = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
                lines.append(raw.replace(b"\0", b" ").decode(errors="replace").strip())
        return lines

    def interrupt(self, signum: int = signal.SIGINT, *, timeout: float = 60.0) -> int:
        """Send ``signum`` to the command's process group, as a terminal's Ctrl-C does; the
        command's exit status once it has stopped. Fails the test if it does not stop within
        ``timeout`` or leaves any process of its tree (or of their process groups) behind."""
        self.members()  # the whole tree, as it stands before the signal
        os.killpg(self.process.pid, signum)
        name = signal.Signals(signum).name
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{name} did not stop {self.process.args!r} within "
                                 f"{timeout:.0f}s; still running: {self.commands()}") from None
        assert self.leftovers() == [], f"{name} left these running: {self.leftovers()}"
        assert [g for g in self.groups() if group_exists(g)] == []
        return code

    def groups(self) -> set[int]:
        """The process groups of every process of the tree seen so far."""
        return {proc.pgid for proc in self.seen.values()}

    def leftovers(self) -> list[Proc]:
        """What still runs of the tree: its members, and anything left in their groups."""
        members = self.members()
        groups = self.groups()
        return members + [p for p in running().values()
                          if p.pgid in groups and p.pid not in {m.pid for m in members}]

    def kill(self) -> None:
        """SIGKILL every process and process group of the tree; reap the command."""
        deadline = time.monotonic() + KILL_TIMEOUT_S
        while (left := self.leftovers()) and time.monotonic() < deadline:
            for pgid in {p.pgid for p in left}:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
            for proc in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(proc.pid, signal.SIGKILL)
            time.sleep(0.05)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=max(0.1, deadline - time.monotonic()))


@contextlib.contextmanager
def process_tree(args: Sequence[str], *, sigint_ignored: bool = False,
                 **popen: Any) -> Iterator[ProcessTree]:
    """Run ``args`` as a :class:`ProcessTree`; whatever is left of it is killed on the way
    out, passed or failed."""
    tree = ProcessTree(args, sigint_ignored=sigint_ignored, **popen)
    try:
        yield tree
    finally:
        tree.kill()
