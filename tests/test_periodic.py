"""Periodic jobs (catch-up, sweep, audit trim) are retried within their period when they fail
— a Redis restart mid-job, GitHub away — rather than left in RQ's failed registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis
from rq import Queue, get_current_job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from reactor.entrypoints.scheduler import PERIODIC, Periodic
from reactor.store import keys
from tests.conftest import work_burst


def fails_once() -> str:
    """A job that fails the first time it runs, as one Redis left mid-way does."""
    job = get_current_job()
    assert job is not None
    if job.connection.incr("test:fails-once") == 1:
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1. Connection refused.")
    return "ran"


def test_every_periodic_job_is_enqueued_with_retries_within_its_period(redis_url: str) -> None:
    connection = redis.Redis.from_url(redis_url)
    now = datetime.now(UTC)
    for periodic in PERIODIC:
        job = periodic.enqueue_if_due(Queue(periodic.queue, connection=connection), now=now)
        assert job is not None
        assert job.retries_left == len(periodic.retry_in) > 0
        assert sum(periodic.retry_in) < periodic.every.total_seconds() * 3, periodic.name


def test_a_periodic_job_that_fails_is_scheduled_again_not_failed(redis_url: str) -> None:
    connection = redis.Redis.from_url(redis_url)
    periodic = Periodic("flaky", f"{__name__}.fails_once", every=timedelta(minutes=10),
                        timeout=timedelta(minutes=1), queue=keys.QUEUE_SWEEP)
    queue = Queue(periodic.queue, connection=connection)
    job = periodic.enqueue_if_due(queue, now=datetime.now(UTC))
    assert job is not None

    work_burst([queue], connection)

    assert FailedJobRegistry(queue=queue).get_job_ids() == []
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == [job.id]
    job.refresh()
    assert job.retries_left == len(periodic.retry_in) - 1
