"""RQ jobs: a rate-limited installation's delivery waits in RQ's scheduler, not in a worker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
import redis.asyncio
from rq import Queue, SimpleWorker
from rq.registry import ScheduledJobRegistry

from reactor import jobs, worker
from reactor.errors import RateLimited
from reactor.sandbox.testing import run_sandbox
from reactor.settings import Settings
from reactor.store import keys
from reactor.store.deliveries import Delivery
from reactor.store.ingest import Ingest


@pytest.fixture
def runtime(redis_url: str) -> Iterator[worker.Runtime]:
    with run_sandbox() as sandbox:
        settings = Settings.parse({**sandbox.env(), "REDIS_URL": redis_url})
        current = worker.Runtime(settings)
        worker._runtime = current
        try:
            yield current
        finally:
            worker._runtime = None
            current.close()


def test_a_rate_limited_delivery_is_rescheduled_for_the_limits_end(
    runtime: worker.Runtime, redis_url: str, monkeypatch: pytest.MonkeyPatch
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
    SimpleWorker([queue], connection=connection).work(burst=True)

    job = queue.fetch_job(guid)
    assert job is not None and job.return_value() == f"deferred until {retry_at.isoformat()}"
    scheduled = ScheduledJobRegistry(queue=queue)
    [deferred] = scheduled.get_job_ids()
    assert deferred == f"{guid}-after-{int(retry_at.timestamp())}"
    assert abs(scheduled.get_scheduled_time(deferred) - retry_at) < timedelta(seconds=1)
