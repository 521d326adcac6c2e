"""The sweep's fan-out (issue 17, finding 4): one job per installation, starting from a
different installation each period, and each installation once per period however often the
fan-out runs.

The fan-out runs as the periodic job runs it (``reactor.shell.sweep.fan_out`` with a
worker's context), against a sandbox GitHub whose App has four installations (one of them
suspended) and a real redis-server; no worker takes the jobs, so the sweep queue shows what
was enqueued, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis
from gidgethub.routing import Router
from rq import Queue

from ghsandbox.config import SandboxConfig
from ghsandbox.testing import run_sandbox
from reactor.process.settings import Settings
from reactor.shell import sweep
from reactor.shell.runtime import open_context
from reactor.store import keys

OWNERS = ("one", "two", "three", "four")


@pytest.fixture
def installations(redis_url: str) -> Iterator[tuple[Settings, list[int], int]]:
    """Settings for a sandbox App installed once per owner; the installations that are not
    suspended, in order of id, and the suspended one."""
    with run_sandbox(SandboxConfig.generate()) as sandbox, sandbox.client() as client:
        ids = [int(client.create_repo(owner, "agents")["installation_id"]) for owner in OWNERS]
        client.control("POST", "suspend", {"installation_id": ids[2]})
        settings = Settings.from_env({**sandbox.env(), "REDIS_URL": redis_url}, env_file=None)
        yield settings, sorted(ids[:2] + ids[3:]), ids[2]


def fan_out(settings: Settings, now: datetime) -> str:
    async def run() -> str:
        ctx = await open_context(settings, router=Router(), turn_router=Router())
        try:
            return await sweep.fan_out(ctx, now=now)
        finally:
            await ctx.aclose()

    return asyncio.run(run())


def enqueued(redis_url: str) -> list[int]:
    """The installations of the sweep jobs waiting on the sweep queue, in queue order."""
    client = redis.Redis.from_url(redis_url)
    try:
        jobs = Queue(keys.QUEUE_SWEEP, connection=client).get_jobs()
        assert all(job.retries_left == sweep.RETRY.max for job in jobs)  # a failed run retried
        return [int(job.args[0]) for job in jobs]
    finally:
        client.close()


def test_each_period_starts_from_the_next_installation_and_sweeps_each_once(
    redis_url: str, installations: tuple[Settings, list[int], int],
) -> None:
    settings, ids, suspended = installations
    everyone = sorted([*ids, suspended])
    period = 4 * 1000 + 1  # starts from the second installation by id, then the third
    first = datetime.fromtimestamp(period * sweep.SWEEP_EVERY.total_seconds() + 5, UTC)
    second = first + sweep.SWEEP_EVERY

    said = fan_out(settings, first)
    rotated = everyone[1:] + everyone[:1]
    assert enqueued(redis_url) == [i for i in rotated if i != suspended], said
    assert said == "3 installation sweep(s) enqueued; 1 suspended installation(s) skipped"

    again = fan_out(settings, first + sweep.SWEEP_EVERY / 2)  # the same period, run again
    assert again.startswith("0 installation sweep(s) enqueued"), again
    assert enqueued(redis_url) == [i for i in rotated if i != suspended]

    fan_out(settings, second)
    rotated_again = everyone[2:] + everyone[:2]
    assert enqueued(redis_url)[3:] == [i for i in rotated_again if i != suspended]
