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

import contextlib
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any, TypeVar
from uuid import uuid4

import redis
import redis.asyncio
import uvloop
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.rate_limit import release_slot
from rq.scheduler import RQScheduler
from rq.worker import WorkerStatus
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_when_event_set,
    wait_random_exponential,
)

from reactor.context import Context
from reactor.errors import GitHubError, RateLimited, is_transient
from reactor.github import AppInfo, GitHubClient, get_app
from reactor.github.metrics import CallCounter
from reactor.observability import configure_logging, init_sentry
from reactor.settings import Settings
from reactor.shell import schedule
from reactor.store import connect, keys
from reactor.store.audit import AuditLog

log = logging.getLogger(__name__)
T = TypeVar("T")

REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)

RIDE_THROUGH_RETRIES = 5  # 0.2 + 0.4 + 0.8 + 1.6 + 2 s: a Redis restart of ~5 s goes unnoticed
MAINTENANCE_INTERVAL_S = 30  # RQ's default, 10 minutes, would leave abandoned jobs that long
HEARTBEAT_S = 10  # a worker's registration lives worker_ttl (~8 min): renewed this often
SCHEDULER_TICK_S = 0.2  # how often the scheduler holding RQ's lock looks for due jobs
# Jobs run without RQ's execution record (Worker.execute_job), and how long such a job's hash
# may outlive a worker that died running it.
LEAN_JOBS = frozenset({"reactor.jobs.take_turn"})
LEAN_JOB_TTL_S = 24 * 3600
ABANDONED_AFTER_S = 15  # past a job's timeout, its execution counts as abandoned
# How often the worker's pub/sub thread (RQ's commands: stop a job, shut down) looks whether
# it is asked to end. RQ waits 60 s; redis-py's stop() joins the thread, so a worker asked to
# stop waited up to a minute on it whenever the thread had read its unsubscribe first.
PUBSUB_WAKE_S = 1.0
OTHER_QUEUES_EVERY_S = 1  # an idle worker's wait on the webhooks' queue, before the sweeps'
START_BACKOFF = wait_random_exponential(multiplier=1, max=30)
REDIS_BACKOFF = wait_random_exponential(multiplier=0.5, max=5)


def redis_retry() -> Retry:
    """Backoff for a synchronous client's connection errors (RQ's, the scheduler's)."""
    return Retry(ExponentialBackoff(cap=2.0, base=0.1), RIDE_THROUGH_RETRIES,
                 supported_errors=(redis.ConnectionError,))


def stop_riding_through(connection: redis.Redis) -> None:
    """A process asked to stop no longer waits for Redis: its remaining commands (RQ's
    records of its death, the scheduler's lock) fail at once if Redis is gone, as it is when
    ``reactor dev`` is killed and its Redis goes with it."""
    connection.set_retry(Retry(NoBackoff(), 0))


def async_redis_retry() -> AsyncRetry:
    """The same backoff for the jobs' asyncio client."""
    return AsyncRetry(ExponentialBackoff(cap=2.0, base=0.1), RIDE_THROUGH_RETRIES,
                      supported_errors=(redis.ConnectionError,))


class Runtime:
    """One worker process's event loop and clients, opened once and reused by every job."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = uvloop.new_event_loop()
        self.context = self.loop.run_until_complete(open_context(settings))

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        self.loop.run_until_complete(self.context.aclose())
        self.loop.close()


_runtime: Runtime | None = None


def runtime() -> Runtime:
    """This process's runtime, opened on first use (so a plain ``rq worker`` works too)."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime(Settings.from_env())
    return _runtime


async def open_context(settings: Settings) -> Context:
    client = connect.async_client(settings, socket_timeout=10, retry=async_redis_retry())
    calls = CallCounter(client)
    github = GitHubClient.from_settings(settings, redis=client, on_response=calls)
    app = await identify_app(github)
    sync_client = connect.sync_client(settings, retry=redis_retry())
    return Context(
        settings=settings, redis=client, sync_redis=sync_client, audit_log=AuditLog(client),
        github=github, app_login=app.bot_login, calls=calls,
    )


async def identify_app(github: GitHubClient) -> AppInfo:
    """The App (``GET /app``), waiting out whatever passes by itself (see the module doc)."""
    retrying = AsyncRetrying(
        retry=retry_if_exception(_passes), wait=_until_it_may_pass,
        before_sleep=_say_why_waiting, reraise=True,
    )
    app: AppInfo = await retrying(get_app, github.app)
    return app


def _passes(exc: BaseException) -> bool:
    """Whether ``exc`` is a condition that ends by itself: a rate limit, GitHub or Redis away."""
    return isinstance(exc, REDIS_DOWN) or (isinstance(exc, GitHubError) and is_transient(exc))


def _until_it_may_pass(state: RetryCallState) -> float:
    """A rate limit's end (and a second, GitHub's clock is not ours), else backoff."""
    failure = state.outcome.exception() if state.outcome is not None else None
    if isinstance(failure, RateLimited):
        left = failure.retry_at.timestamp() - time.time()
        return max(0.0, left) + 1.0 + random.random()  # noqa: S311 - jitter, not a secret
    return float(START_BACKOFF(state))


def _say_why_waiting(state: RetryCallState) -> None:
    failure = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning("worker cannot start yet (%s); trying again in %.0f s", failure, wait)


class WorkedQueue(Queue):
    """RQ's queue, taking a job from several queues as safely as from one.

    From one queue, RQ moves a job into an intermediate list (``LMOVE``) that its maintenance
    hands back should the worker die before registering the job. From several queues it
    pops the job with ``BLPOP``, and a worker SIGKILLed between the pop and the registration
    loses it — a delivery answered 202 and never handled. So each queue is tried in turn
    through RQ's one-queue path, and the wait blocks on the first (the webhooks' queue) for
    at most :data:`OTHER_QUEUES_EVERY_S`, after which the other queues are looked at again.
    """

    @classmethod
    def dequeue_any(  # type: ignore[override]
        cls, queues: Iterable[Queue], timeout: int | None, connection: redis.Redis,
        **kwargs: Any,
    ) -> tuple[Job, Queue] | None:
        ordered = list(queues)
        if len(ordered) > 1:
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
    turn's own watchdog recovers what a dead worker's round took — 5 commands.
    """

    max_connection_wait_time = 5.0  # RQ's default waits up to a minute between reconnections
    queue_class = WorkedQueue
    stopping = False  # a stop was asked for (SIGTERM, SIGINT)

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
        way (:class:`WorkedQueue`), so it always does."""
        with self.connection.pipeline(transaction=False) as pipeline:
            job.prepare_for_execution(self.name, pipeline=pipeline)
            if job.func_name in LEAN_JOBS:  # no registry holds it: it must not outlive a day
                pipeline.expire(job.key, LEAN_JOB_TTL_S)
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
        stop_riding_through(self.connection)
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


@dataclass(frozen=True)
class Periodic:
    """A job enqueued every ``every`` by whichever scheduler holds RQ's lock."""

    name: str
    func: str
    every: timedelta
    timeout: timedelta
    queue: str = keys.QUEUE_EVENTS

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
        )


# Catch-up of missed deliveries: often enough that nothing ages out of GitHub's log. The
# sweep (reactor reconcile over every repository) runs on its own queue, which workers take
# only when no webhook waits, so fan-out work never delays a delivery.
PERIODIC = (
    Periodic("catchup", "reactor.catchup.run_job", every=timedelta(minutes=1),
             timeout=timedelta(minutes=10)),
    # The sweep only fans out: one job per installation on the same queue, each bounded
    # (reactor/shell/sweep.py; its SWEEP_EVERY is this period).
    Periodic("sweep", "reactor.jobs.sweep", every=timedelta(minutes=10),
             timeout=timedelta(minutes=5), queue=keys.QUEUE_SWEEP),
)


WORKED_QUEUES = (keys.QUEUE_EVENTS, keys.QUEUE_SWEEP)  # in order: a sweep waits for webhooks


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
            stop=lambda state: self.ending(), before_sleep=_log_failure("scheduler"),
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


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None) -> bool:
    """Work the events queue until stopped (or, with ``burst``, until it is empty)."""
    global _runtime
    configure_logging(settings.log_level)
    init_sentry(settings, component="worker")
    _runtime = Runtime(settings)
    connection = connect.sync_client(settings, retry=redis_retry())
    scheduler = Scheduler([keys.QUEUE_EVENTS], connection, periodic=PERIODIC,
                          make_client=lambda: connect.sync_client(settings, retry=redis_retry()))
    log.info("worker started; the App acts as %s", _runtime.context.app_login)
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
        _runtime.close()
        _runtime = None


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
        stop=stop_when_event_set(stop), sleep=sleep, before_sleep=_log_failure("worker"),
    )
    try:
        retrying(connection.ping)
    except RetryError:
        return False
    return not stop.is_set()


def _log_failure(who: str) -> Callable[[RetryCallState], None]:
    def log_failure(state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome is not None else None
        log.warning("%s waits for Redis: %s", who, failure)

    return log_failure


def _retire(worker: Worker) -> None:
    """Free the name of a worker whose loop ended with Redis away (RQ could not)."""
    if worker.pubsub_thread is not None and worker.pubsub_thread.is_alive():
        worker.unsubscribe()
    worker.register_death()  # type: ignore[no-untyped-call]
