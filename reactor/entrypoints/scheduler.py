"""RQ's scheduler, one in every worker (its own process), standing by in all but the one
holding RQ's lock and outliving Redis outages; the lock holder enqueues what is due, the
:data:`PERIODIC` jobs among it."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType

import redis
from rq import Queue, Retry
from rq.job import Job
from rq.scheduler import RQScheduler
from tenacity import RetryError, Retrying, retry_if_exception_type, wait_random_exponential

from reactor.shell import schedule
from reactor.store import keys
from reactor.store.connect import log_waiting, stop_riding_through

REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)
SCHEDULER_TICK_S = 0.2  # how often the scheduler holding RQ's lock looks for due jobs


@dataclass(frozen=True)
class Periodic:
    """A job enqueued every ``every`` by whichever scheduler holds RQ's lock, and retried
    within its period (``retry_in``: the pauses before each retry) when it fails — a Redis
    restart or GitHub away — rather than left in the failed registry until the next."""

    name: str
    func: str
    every: timedelta
    timeout: timedelta
    queue: str = keys.QUEUE_EVENTS
    retry_in: tuple[int, ...] = (5, 30, 120)

    def enqueue_if_due(self, queue: Queue, *, now: datetime) -> Job | None:
        """Enqueue the job unless its period is still running (a key that lives as long)."""
        period = int(self.every.total_seconds())
        if not queue.connection.set(keys.periodic(self.name), now.isoformat(), nx=True,
                                    ex=period):
            return None
        return queue.enqueue(
            self.func, job_id=f"{self.name}-{int(now.timestamp())}",
            job_timeout=int(self.timeout.total_seconds()), result_ttl=period * 10,
            failure_ttl=7 * 24 * 3600,
            retry=Retry(max=len(self.retry_in), interval=list(self.retry_in)),
        )


# Catch-up of missed deliveries: often enough that nothing ages out of GitHub's log. The
# sweep (reactor reconcile over every repository) runs on its own queue, which workers take
# only when no webhook waits, so fan-out work never delays a delivery.
PERIODIC = (
    Periodic("catchup", "reactor.entrypoints.jobs.catch_up", every=timedelta(minutes=1),
             timeout=timedelta(minutes=10), retry_in=(5, 20)),
    # The sweep only fans out: one job per installation on the same queue, each bounded
    # (reactor/shell/sweep.py; its SWEEP_EVERY is this period).
    Periodic("sweep", "reactor.entrypoints.jobs.sweep", every=timedelta(minutes=10),
             timeout=timedelta(minutes=5), queue=keys.QUEUE_SWEEP),
    # Audit records older than reactor.store.audit.MAX_AGE go, an uninstalled tenant's too.
    Periodic("audit-trim", "reactor.entrypoints.jobs.trim_audit", every=timedelta(hours=1),
             timeout=timedelta(minutes=5), queue=keys.QUEUE_SWEEP),
)


class Scheduler(RQScheduler):
    """RQ's scheduler (its own process), standing by in every worker and outliving outages.

    RQ's exits on the first Redis error, and a worker without the lock tries to take it only
    every 10 minutes, so after a restart scheduled jobs ran a minute or more late. This one
    retries each round with backoff, tries for the lock every round it lacks it, and stops
    (releasing the lock) when its worker is gone. The lock holder looks for due jobs every
    :data:`SCHEDULER_TICK_S` rather than RQ's second: a settle window's re-check is due a
    second after the change, and a second's lateness would double it. It also wakes each
    competition whose turn's round outlived its lease, its worker dead
    (:func:`reactor.shell.schedule.wake_overdue`), so what that round took is judged some
    16 s later rather than when RQ hands the dead job back; and queues the job of each turn
    whose pause before its next read is over (:func:`reactor.shell.schedule.resume_paused`):
    RQ's own scheduler keeps whole seconds, too coarse for a pause of 0.75 s.
    """

    def __init__(
        self, queues: Sequence[str], connection: redis.Redis, *,
        periodic: Sequence[Periodic] = (), make_client: Callable[[], redis.Redis] | None = None,
    ) -> None:
        super().__init__(queues, connection=connection, logging_level="WARNING")
        self.periodic = tuple(periodic)
        self.worker_pid = os.getpid()  # read before the fork: the worker may die before it
        self._make_client = make_client

    @property
    def connection(self) -> redis.Redis:
        """The scheduler process's own client, made by ``make_client`` (from the worker's
        settings: a Sentinel-managed or TLS client) rather than rebuilt from the options of
        the worker's pool, as RQ's is."""
        if self._connection is None and self._make_client is not None:
            self._connection = self._make_client()  # type: ignore[assignment]
        return super().connection  # type: ignore[no-any-return]

    def request_stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        if self._connection is not None:
            stop_riding_through(self._connection)
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def ending(self) -> bool:
        """Whether to stop: asked to (SIGTERM, SIGINT), or the worker is gone."""
        return self._stop_requested or os.getppid() != self.worker_pid

    @property
    def should_reacquire_locks(self) -> bool:
        return bool(self._queue_names - self.acquired_locks)

    def work(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.request_stop)
        retrying = Retrying(
            retry=retry_if_exception_type(REDIS_DOWN), wait=wait_random_exponential(max=2),
            stop=lambda state: self.ending(), before_sleep=log_waiting("scheduler"),
        )
        while not self.ending():
            try:
                retrying(self._round)
            except RetryError:
                break
            time.sleep(SCHEDULER_TICK_S if self.acquired_locks else self.interval)
        stop_riding_through(self.connection)
        with contextlib.suppress(*REDIS_DOWN):
            self.stop()  # type: ignore[no-untyped-call]

    def _round(self) -> None:
        """One round: hold (or try for) the lock; the holder enqueues what is due. The lock
        and the periodic jobs are looked at once a second, due jobs every tick."""
        now = time.monotonic()
        if now - self._looked_at >= self.interval:
            self._looked_at = now
            if not self.pid:
                self.register_birth()
            if self.should_reacquire_locks:
                self.acquire_locks()  # type: ignore[no-untyped-call]
            self.heartbeat()  # type: ignore[no-untyped-call]
            for job in self.periodic if self.acquired_locks else ():
                job.enqueue_if_due(Queue(job.queue, connection=self.connection),
                                   now=datetime.now(UTC))
        if self.acquired_locks:
            self.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
            schedule.wake_overdue(self.connection)
            schedule.resume_paused(self.connection)

    _looked_at = float("-inf")  # time.monotonic() of the last look at the lock


def stop_scheduler(scheduler: Scheduler, *, timeout: float = 30.0) -> None:
    """Ask the scheduler's process to stop (it releases its lock), then wait for it."""
    process = scheduler._process
    if process is None or not process.is_alive():
        return
    process.terminate()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
