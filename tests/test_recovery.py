"""Surviving what passes: Redis restarts (with its append-only file) and rate limits at start-up.

Real processes throughout: ``redis-server`` stopped and started on its port, ``reactor serve``,
``reactor worker`` (each with RQ's scheduler as a child process) and the sandbox GitHub. The
jobs :func:`note` and :func:`hold` are enqueued by the tests and run by the worker processes,
which import this module (``python -m`` puts the working directory on their path).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.suspension import resume, suspend
from rq.worker import Worker, WorkerStatus

from ghsandbox.config import SandboxConfig
from ghsandbox.testing import RunningSandbox, SandboxClient, run_sandbox
from reactor.store import keys
from tests.conftest import RedisServer, Stack, assert_no_failed_jobs, stop_group

DEADLINE_S = 120.0  # generous: two cores, shared with other test runs
ON_TIME_S = 30.0  # for a job due in seconds; RQ's own scheduler came back after a minute or more


def note(path: str) -> str:
    """A job that leaves a line in ``path`` each time it runs."""
    with open(path, "a") as out:
        out.write("ran\n")
    return "noted"


def hold(flag: str, runs: str) -> str:
    """A job that notes each run in ``runs``, then waits until the file ``flag`` exists."""
    note(runs)
    while not os.path.exists(flag):
        time.sleep(0.05)
    return "released"


def wait_until(what: str, check: Callable[[], bool], *, stack: Stack | None = None,
               timeout: float = DEADLINE_S) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` (with the processes' logs)."""
    deadline = time.monotonic() + timeout
    while not check():
        if stack is not None:
            for process in stack.processes:
                assert process.poll() is None, f"{process.args} exited\n{stack.log_tails()}"
        if time.monotonic() > deadline:
            tails = stack.log_tails() if stack is not None else ""
            raise AssertionError(f"{what}: not within {timeout:.0f} s\n{tails}")
        time.sleep(0.1)


def job_status(connection: redis.Redis, job_id: str) -> JobStatus | None:
    try:
        return Job.fetch(job_id, connection=connection).get_status()
    except Exception:
        return None


def pause_workers(connection: redis.Redis, queue: Queue, stack: Stack) -> None:
    """Suspend the workers (``rq suspend``) and wait until none takes jobs any more.

    A worker waiting for a job takes one more before it sees the suspension: each is given a
    job to take, and what none took is removed.
    """
    wait_until("both workers start", lambda: len(Worker.all(queue=queue)) == 2, stack=stack)
    suspend(connection)
    for _ in range(2):
        queue.enqueue(note, os.devnull)
    wait_until("both workers pause", lambda: all(
        worker.get_state() == WorkerStatus.SUSPENDED for worker in Worker.all(queue=queue)),
        stack=stack)
    queue.empty()


def queued_guids(queue: Queue) -> set[str]:
    """The deliveries whose jobs are queued: a turn's job id ends with the GUID of the
    delivery that queued it (``turn-<scope>-<guid>``), a delivery's own job is its GUID."""
    return {job_id[-36:] for job_id in queue.get_job_ids()}


def issue_deliveries(sandbox: SandboxClient, repo: str, count: int) -> list[str]:
    """Open ``count`` plain issues as alice; the GUIDs of the webhooks they cause."""
    sandbox.drain(timeout=30)
    before = len(sandbox.webhooks())
    for n in range(count):
        response = sandbox.as_user("alice", "POST", f"/repos/{repo}/issues",
                                   json={"title": f"n{n}"})
        assert response.status_code == 201, response.text
    sandbox.drain(timeout=30)
    return [hook["guid"] for hook in sandbox.webhooks(since=before)]


def statuses(sandbox: SandboxClient, guids: list[str]) -> list[int | None]:
    found = {hook["guid"]: hook["status_code"] for hook in sandbox.webhooks()}
    return [found.get(guid) for guid in guids]


@pytest.mark.timeout(300)
def test_queued_deliveries_survive_a_redis_restart_and_workers_and_scheduler_carry_on(
    stack: Stack, redis_server: RedisServer, tmp_path: Path
) -> None:
    connection = redis.Redis.from_url(stack.redis_url)
    queue = Queue(keys.QUEUE_EVENTS, connection=connection)
    sandbox = stack.sandbox.client()
    sandbox.create_repo("acme", "widgets")
    pause_workers(connection, queue, stack)
    queued = issue_deliveries(sandbox, "acme/widgets", 3)
    assert statuses(sandbox, queued) == [202, 202, 202]
    assert queued_guids(queue) == set(queued)
    before = queue.enqueue_in(timedelta(seconds=8), note, str(tmp_path / "before"))

    redis_server.stop()
    redis_server.start()

    assert set(queued) <= queued_guids(queue)  # kept by the append-only file
    first_after = issue_deliveries(sandbox, "acme/widgets", 1)
    assert statuses(sandbox, first_after) == [202]
    after = queue.enqueue_in(timedelta(seconds=2), note, str(tmp_path / "after"))
    resume(connection)
    for guid in queued + first_after:
        stack.wait_for_audit(lambda record, guid=guid: record.delivery == guid, timeout=DEADLINE_S)
    for job in (before, after):
        wait_until(f"scheduled job {job.id} runs on time", lambda job=job: job_status(
            connection, job.id) == JobStatus.FINISHED, stack=stack, timeout=ON_TIME_S)


@pytest.mark.timeout(600)
def test_workers_outlive_a_long_redis_outage_and_the_interrupted_job_runs_again(
    stack: Stack, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Redis stays away longer than the clients ride out: the job running then cannot record
    its end, RQ's work loop ends, and the worker starts it again once Redis is back; RQ's
    abandoned-job handling retries the job."""
    connection = redis.Redis.from_url(stack.redis_url)
    queue = Queue(keys.QUEUE_EVENTS, connection=connection)
    flag, runs = tmp_path / "flag", tmp_path / "runs"
    job = queue.enqueue(hold, str(flag), str(runs), job_timeout=10, retry=Retry(max=2, interval=1))
    wait_until("the job starts", runs.exists, stack=stack)

    redis_server.stop()
    flag.touch()
    time.sleep(20)  # an outage: what the worker does meanwhile is the point of the test
    redis_server.start()

    wait_until("the interrupted job finishes", lambda: job_status(
        connection, job.id) == JobStatus.FINISHED, stack=stack, timeout=2 * DEADLINE_S)
    assert runs.read_text() == "ran\nran\n"  # its first end was never recorded
    later = queue.enqueue_in(timedelta(seconds=2), note, str(tmp_path / "later"))
    wait_until("a job scheduled after the outage runs on time", lambda: job_status(
        connection, later.id) == JobStatus.FINISHED, stack=stack, timeout=ON_TIME_S)
    sandbox = stack.sandbox.client()
    sandbox.create_repo("acme", "gadgets")
    guids = issue_deliveries(sandbox, "acme/gadgets", 1)
    assert statuses(sandbox, guids) == [202]
    stack.wait_for_audit(lambda record: record.delivery == guids[0], timeout=DEADLINE_S)


@contextmanager
def worker_process(sandbox: RunningSandbox, redis_url: str, log: Path) -> Iterator[
    subprocess.Popen[bytes]
]:
    env = {**os.environ, **sandbox.env(), "REDIS_URL": redis_url, "LOG_LEVEL": "info"}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "reactor", "worker"], env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
        assert_no_failed_jobs(redis_url)  # the test's job and the worker's start-up sweep
    finally:
        stop_group(process, timeout=30)


def running(process: subprocess.Popen[bytes], log: Path) -> bool:
    assert process.poll() is None, f"the worker exited:\n{log.read_text()}"
    return True


# Windows long enough to outlast the worker's own start on a busy machine.
@pytest.mark.parametrize("fault", [
    {"rate_limit": {"remaining": 0, "reset_in": 12}},
    {"secondary_limit": {"retry_after": 4, "for_s": 10}},
], ids=["primary", "secondary"])
def test_a_worker_started_inside_a_rate_limit_waits_for_its_end_and_works(
    fault: dict[str, object], redis_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    connection = redis.Redis.from_url(redis_url)
    with run_sandbox(SandboxConfig.generate()) as sandbox, sandbox.client() as client:
        client.control("POST", "faults", fault)
        with worker_process(sandbox, redis_url, log) as worker:
            wait_until("the worker says it waits", lambda: running(worker, log)
                       and "cannot start yet" in log.read_text())
            job = Queue(keys.QUEUE_EVENTS, connection=connection).enqueue(
                note, str(tmp_path / "ran"), job_id=str(uuid.uuid4()))
            wait_until("the worker starts and works", lambda: running(worker, log)
                       and job_status(connection, job.id) == JobStatus.FINISHED)
    waits = [line for line in log.read_text().splitlines() if "cannot start yet" in line]
    assert 1 <= len(waits) <= 4 and "rate limited" in waits[0], log.read_text()
