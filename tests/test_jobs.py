"""RQ jobs: a rate-limited installation's delivery waits in RQ's scheduler, not in a worker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
import redis.asyncio
from rq import Queue
from rq.registry import ScheduledJobRegistry

from ghsandbox.testing import run_sandbox
from reactor.core.errors import RateLimited
from reactor.core.routing import Scope
from reactor.core.view import Repo
from reactor.entrypoints import jobs
from reactor.process.settings import Settings
from reactor.shell.runtime import Runtime
from reactor.shell.schedule import wake
from reactor.store import keys
from reactor.store.accept import JOB_RETRY
from reactor.store.deliveries import Delivery
from reactor.store.ingest import Ingest
from tests.conftest import work_burst


@pytest.fixture
def runtime(redis_url: str) -> Iterator[Runtime]:
    with run_sandbox() as sandbox:
        settings = Settings.parse({**sandbox.env(), "REDIS_URL": redis_url})
        current = jobs.open_runtime(settings)
        try:
            yield current
        finally:
            jobs.close_runtime()


def test_a_rate_limited_delivery_is_rescheduled_for_the_limits_end(
    runtime: Runtime, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    retry_at = datetime.now(UTC) + timedelta(minutes=5)

    async def limited(ctx: object, guid: str) -> None:
        raise RateLimited("limited", retry_at=retry_at, installation_id=7, status=403)

    monkeypatch.setattr(jobs, "handle_delivery", limited)
    guid = str(uuid.uuid4())
    delivery = Delivery(guid=guid, event="issues", body=b"{}", received_at=time.time())

    async def accept() -> bool:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            async with Ingest(client) as ingest:
                return await ingest.accept(delivery)
        finally:
            await client.aclose()

    assert runtime.run(accept())
    connection = redis.Redis.from_url(redis_url)
    queue = Queue(keys.QUEUE_EVENTS, connection=connection)
    work_burst([queue], connection)

    job = queue.fetch_job(guid)
    assert job is not None and job.return_value() == f"deferred until {retry_at.isoformat()}"
    scheduled = ScheduledJobRegistry(queue=queue)
    [deferred] = scheduled.get_job_ids()
    assert deferred == f"{guid}-after-{int(retry_at.timestamp())}"
    assert abs(scheduled.get_scheduled_time(deferred) - retry_at) < timedelta(seconds=1)


@pytest.mark.parametrize("why", ["settle", "lease"])
def test_a_scheduled_wake_is_retried_like_a_delivery(redis_url: str, why: str) -> None:
    """GitHub failing a scheduled re-check (a 502) must not leave it in the failed registry
    for good: it carries a delivery's retries."""
    connection = redis.Redis.from_url(redis_url)
    scope = Scope(Repo("acme", "lab", 1), 7, "titanic")
    owner = wake(connection, scope, at=datetime.now(UTC) + timedelta(minutes=5), why=why)
    [job_id] = ScheduledJobRegistry(queue=Queue(keys.QUEUE_EVENTS, connection=connection)
                                    ).get_job_ids()  # type: ignore[no-untyped-call]
    job = Queue(keys.QUEUE_EVENTS, connection=connection).fetch_job(job_id)
    assert job_id == owner
    assert job is not None and job.retries_left == JOB_RETRY.max
    assert job.func_name == "reactor.entrypoints.jobs.offer"
    assert job.args == (scope.dumps(), "w", owner)
    connection.close()
