"""The worker process: an RQ worker that runs jobs in-process on one long-lived event loop.

RQ's default worker forks a child per job; for jobs of a few milliseconds the fork costs more
than the job, and every child would open its own Redis and GitHub connections. The reactor's
jobs are short, I/O-bound and idempotent, so the worker (RQ's ``SimpleWorker``) runs them in
its own process on a persistent event loop, keeping connection pools, the installation-token
cache and the App's identity warm across jobs. RQ still enforces each
job's timeout, retries failures and keeps the failed registry.

A worker never exits for a condition that passes (SPEC §6):

- **At start-up**, ``GET /app`` is tried until it answers: a rate limit is waited out until
  its end, a network error, a 5xx or an unreachable Redis with backoff. Only what waiting
  cannot fix (a wrong App id or key: 401) stops the worker, with one line.
- **A Redis restart.** Every Redis call rides out a short restart (redis-py's ``Retry``, about
  five seconds of backoff). A longer outage ends RQ's work loop; :func:`work_until_stopped`
  starts it again, under the same name, once Redis answers. A job whose outcome could not be
  recorded stays in RQ's StartedJobRegistry: RQ's maintenance (every
  ``MAINTENANCE_INTERVAL_S``, and at once after an outage) finds it once its heartbeat has
  lapsed (job timeout + ``ABANDONED_AFTER_S``) and retries it, or keeps it in the failed
  registry once its retries are spent.
- **The scheduler** (:class:`Scheduler`) runs in every worker, as a standby in all but the
  one holding RQ's lock, and retries through Redis outages instead of exiting, so scheduled
  jobs run on time after a restart; the lock holder also enqueues the :data:`PERIODIC` jobs.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from types import FrameType
from typing import Any, TypeVar
from uuid import uuid4

import redis
import redis.asyncio
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.rate_limit import release_slot
from rq.worker import WorkerStatus
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_when_event_set,
    wait_random_exponential,
)

from reactor.entrypoints import jobs
from reactor.entrypoints.scheduler import PERIODIC, Scheduler, stop_scheduler
from reactor.process.observability import configure_logging, init_sentry
from reactor.process.settings import Settings
from reactor.store import connect, keys, turns

log = logging.getLogger(__name__)
T = TypeVar("T")

REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)

MAINTENANCE_INTERVAL_S = 30  # RQ's default, 10 minutes, would leave abandoned jobs that long
HEARTBEAT_S = 10  # a worker's registration lives worker_ttl (~8 min): renewed this often
# Jobs run without RQ's execution record (Worker.execute_job), and how long such a job's hash
# may outlive a worker that died running it.
LEAN_JOBS = frozenset({"reactor.entrypoints.jobs.take_turn"})
LEAN_JOB_TTL_S = 24 * 3600
ABANDONED_AFTER_S = 15  # past a job's timeout, its execution counts as abandoned
# How often the worker's pub/sub thread (RQ's commands: stop a job, shut down) looks whether
# it is asked to end. RQ waits 60 s; redis-py's stop() joins the thread, so a worker asked to
# stop waited up to a minute on it whenever the thread had read its unsubscribe first.
PUBSUB_WAKE_S = 1.0
OTHER_QUEUES_EVERY_S = 1  # the sweeps' queue is looked at this often (an idle worker waits
# on the webhooks' queue as long, then looks again)
SUSPENSION_EVERY_S = 1.0  # `rq suspend` is noticed within this (RQ asks before every job)
REDIS_BACKOFF = wait_random_exponential(multiplier=0.5, max=5)


class WorkedQueue(Queue):
    """RQ's queue, taking a job from several queues as safely as from one.

    From one queue, RQ moves a job into an intermediate list (``LMOVE``) that its maintenance
    hands back should the worker die before registering the job. From several queues it
    pops the job with ``BLPOP``, and a worker SIGKILLed between the pop and the registration
    loses it — a delivery answered 202 and never handled. So each queue is tried in turn
    through RQ's one-queue path, and the wait blocks on the first (the webhooks' queue) for
    at most :data:`OTHER_QUEUES_EVERY_S`, after which the other queues are looked at again.
    Between those looks a worker asks only the first queue, with the blocking move that
    answers at once when a job waits there: one command a job rather than three.
    """

    looked_at = -float(OTHER_QUEUES_EVERY_S)  # this process's last look at every queue

    @classmethod
    def dequeue_any(  # type: ignore[override]
        cls, queues: Iterable[Queue], timeout: int | None, connection: redis.Redis,
        **kwargs: Any,
    ) -> tuple[Job, Queue] | None:
        ordered = list(queues)
        if len(ordered) > 1:
            now = time.monotonic()
            if timeout is None or now - cls.looked_at >= OTHER_QUEUES_EVERY_S:
                cls.looked_at = now
                for queue in ordered:
                    found = super().dequeue_any([queue], None, connection, **kwargs)
                    if found is not None:
                        return found
                if timeout is None:
                    return None
            ordered, timeout = ordered[:1], min(timeout, OTHER_QUEUES_EVERY_S)
        return super().dequeue_any(ordered, timeout, connection, **kwargs)


class Worker(SimpleWorker):
    """RQ's in-process worker, quick to find Redis again and to give up abandoned jobs, and
    with the per-job bookkeeping cut to what the reactor uses.

    RQ spends about 57 Redis commands on each job's bookkeeping (measured with ``MONITOR``
    on RQ 3.0): the worker's registration renewed up to five times a job, its state written
    twice, the job's heartbeat three times, worker statistics, the result stream, the
    finished registry, the job's dependents. What the reactor relies on stays exactly RQ's:
    taking a job through the queue's intermediate list, its execution in the started
    registry (how a dead worker's job is handed back), timeouts, retries and the failed
    registry. Of the rest, the registration is renewed at most every :data:`HEARTBEAT_S`,
    idle and busy are kept in memory, and a job that keeps no result (``result_ttl=0``: a
    competition's turn, whose outcome is in the audit log) is deleted once done, without a
    result or a finished-registry entry: 18 commands a job. A turn's job goes further
    (:data:`LEAN_JOBS`): it has no execution record in the started registry, since the
    turn's own watchdog recovers what a dead worker's turn took, from the moment the job
    leaves RQ's intermediate list — 5 commands, and the watchdog's entry.
    """

    max_connection_wait_time = 5.0  # RQ's default waits up to a minute between reconnections
    queue_class = WorkedQueue
    stopping = False  # a stop was asked for (SIGTERM, SIGINT)
    suspension_looked_at = -SUSPENSION_EVERY_S

    def check_for_suspension(self, burst: bool) -> None:
        """RQ's check for ``rq suspend`` (a transaction of its own) at most every
        :data:`SUSPENSION_EVERY_S` rather than before every job."""
        now = time.monotonic()
        if now - self.suspension_looked_at >= SUSPENSION_EVERY_S:
            self.suspension_looked_at = now
            super().check_for_suspension(burst)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if self.last_heartbeat is not None and \
                (datetime.now(UTC) - self.last_heartbeat).total_seconds() < HEARTBEAT_S:
            return
        super().heartbeat(timeout, pipeline)

    def set_state(self, state: str, pipeline: Any = None) -> None:
        """Idle and busy, twice a job, stay in memory; the rest (suspended, started) is
        written as RQ writes it, for ``rq info``."""
        if state in (WorkerStatus.IDLE, WorkerStatus.BUSY):
            self._state = state
        else:
            super().set_state(state, pipeline)

    def execute_job(self, job: Job, queue: Queue) -> None:
        """A competition's turn runs without RQ's execution record: should its worker die,
        the turn's own watchdog (the scheduler waking a round that outlived its lease:
        :func:`reactor.store.turns.overdue`) takes its work up again, sooner than RQ's
        abandoned-job handling would. Every other job runs as RQ runs it."""
        if job.func_name not in LEAN_JOBS:
            super().execute_job(job, queue)
            return
        self.perform_job(job, queue, None)  # type: ignore[arg-type]

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        job.ended_at = datetime.now(UTC)

    def handle_job_success(self, job: Job, queue: Queue, started_job_registry: Any,
                           execution: Any) -> None:
        if job.get_result_ttl(self.default_result_ttl) != 0 or job.repeats_left:
            super().handle_job_success(job, queue, started_job_registry, execution)
            return
        with self.connection.pipeline(transaction=False) as pipeline:
            self.cleanup_execution(job, pipeline=pipeline, execution=execution)
            pipeline.delete(job.key)
            pipeline.execute()
        release_slot(job)

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False
                              ) -> None:
        """The job is marked started and leaves its queue's intermediate list. RQ leaves that
        entry only when the worker has one queue; each queue here is dequeued the one-queue
        way (:class:`WorkedQueue`), so it always does.

        A turn's job (:data:`LEAN_JOBS`) is in no registry once it leaves that list, so RQ
        would never hand it back: in the same round trip its scope enters the turn's
        watchdog (:func:`reactor.store.turns.queue_start`), which wakes the scope should the
        worker die before the turn's first round begins."""
        with self.connection.pipeline(transaction=False) as pipeline:
            job.prepare_for_execution(self.name, pipeline=pipeline)
            if job.func_name in LEAN_JOBS:  # no registry holds it: it must not outlive a day,
                pipeline.expire(job.key, LEAN_JOB_TTL_S)
                # and RQ no longer hands it back: the turn's watchdog covers it from here
                turns.queue_start(pipeline, str(job.args[0]), owner=job.id)
            pipeline.lrem(Queue(job.origin, connection=self.connection).intermediate_queue_key,
                          1, job.id)
            pipeline.execute()

    def subscribe(self) -> None:
        """RQ's subscription to the worker's command channel, with a thread that ends within
        :data:`PUBSUB_WAKE_S` of being asked to."""
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=PUBSUB_WAKE_S, daemon=True,
            exception_handler=self._pubsub_exception_handler)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        connect.stop_riding_through(self.connection)
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """How long a running job's execution stays registered without news from the worker.

        RQ allows a job's timeout plus 60 s; an in-process job cannot outlive its timeout
        (RQ interrupts it), so a shorter margin lets RQ's maintenance retry the job of a worker
        that died, or lost Redis, sooner.
        """
        if job.timeout is None or job.timeout <= 0:
            return super().get_heartbeat_ttl(job, working_time)
        return int(job.timeout) + ABANDONED_AFTER_S


WORKED_QUEUES = (keys.QUEUE_EVENTS, keys.QUEUE_SWEEP)  # in order: a sweep waits for webhooks


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None) -> bool:
    """Work the events queue until stopped (or, with ``burst``, until it is empty)."""
    configure_logging(settings.log_level)
    init_sentry(settings, component="worker")
    current = jobs.open_runtime(settings)
    connection = connect.sync_client(settings, retry=connect.redis_retry())
    scheduler = Scheduler(
        [keys.QUEUE_EVENTS], connection, periodic=PERIODIC,
        make_client=lambda: connect.sync_client(settings, retry=connect.redis_retry()))
    log.info("worker started; the App acts as %s", current.context.app_login)
    if settings.unsafe_disable:
        log.warning("UNSAFE_DISABLE=%s: these safety mechanisms are OFF (a benchmark or "
                    "test switch; never run so in production)",
                    ",".join(sorted(settings.unsafe_disable)))
    try:
        if not burst:  # a burst worker enqueues due jobs once, as RQ's own does
            scheduler.start()  # type: ignore[no-untyped-call]
        return work_until_stopped(connection, name=name, burst=burst)
    finally:
        stop_scheduler(scheduler)
        jobs.close_runtime()


def work_until_stopped(
    connection: redis.Redis, *, name: str | None = None, burst: bool = False
) -> bool:
    """RQ's work loop, started again under the same name whenever it ends unasked.

    RQ ends it on a Redis error it does not retry itself (outside waiting for a job); once
    Redis answers again, a new worker object takes over, with the old one's registration
    retired, and runs RQ's maintenance at once. Returns whether any job was done.
    """
    name = name or uuid4().hex
    stop = threading.Event()
    worker: Worker | None = None
    worked = False
    while _redis_answers(connection, stop):
        try:
            if worker is not None:
                _retire(worker)
            worker = Worker(
                list(WORKED_QUEUES),
                connection=connection,
                name=name, maintenance_interval=MAINTENANCE_INTERVAL_S,
            )
            if stop.is_set():
                break
            worked = bool(worker.work(burst=burst, with_scheduler=burst,
                                      logging_level="WARNING")) or worked
        except REDIS_DOWN as exc:  # gone again, or RQ could not record the worker's death
            log.warning("worker %s: Redis went away: %s", name, exc)
        if burst or (worker is not None and worker.stopping):
            break
        log.warning("worker %s: RQ's work loop ended unasked (Redis away?); it starts again "
                    "once Redis answers", name)
    return worked


def _redis_answers(connection: redis.Redis, stop: threading.Event) -> bool:
    """Wait, with backoff, until Redis answers (True) or SIGTERM or SIGINT arrives (False)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: stop.set())

    def sleep(seconds: float) -> None:  # a stop ends the wait at once
        stop.wait(seconds)

    retrying = Retrying(
        retry=retry_if_exception_type(REDIS_DOWN), wait=REDIS_BACKOFF,
        stop=stop_when_event_set(stop), sleep=sleep, before_sleep=connect.log_waiting("worker"),
    )
    try:
        retrying(connection.ping)
    except RetryError:
        return False
    return not stop.is_set()


def _retire(worker: Worker) -> None:
    """Free the name of a worker whose loop ended with Redis away (RQ could not)."""
    if worker.pubsub_thread is not None and worker.pubsub_thread.is_alive():
        worker.unsubscribe()
    worker.register_death()  # type: ignore[no-untyped-call]
