"""Sentinel: every client the reactor makes follows the master through a failover.

A real master, replica and three Sentinels (``tests/redis_ha.py``); the master is SIGKILLed
and the Sentinels promote the replica. The synchronous client (RQ's, the scheduler's, the
commands'), the asyncio client (the jobs', the web process's) and the ingest's own pipelined
connection are all made by ``reactor.store.connect`` from the settings, and each finds the
promoted replica by itself. (The whole reactor under load through a failover is
``tests/scenarios/test_sentinel.py``.)
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from reactor.core.errors import StoreUnavailable
from reactor.process.settings import Settings
from reactor.store import connect, keys
from reactor.store.audit import AuditRecord
from reactor.store.deliveries import Delivery
from reactor.store.ingest import Ingest
from tests.redis_ha import SentinelSet, running_sentinels
from tests.test_cli import clean_env, reactor

QUEUE = f"rq:queue:{keys.QUEUE_EVENTS}"


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    with running_sentinels(tmp_path) as ha:
        yield ha


def delivery() -> Delivery:
    return Delivery(guid=str(uuid.uuid4()), event="issues", body=b'{"action": "opened"}',
                    received_at=time.time(), hook_id="7", target_type="integration")


def test_sentinel_settings_are_read_and_checked() -> None:
    settings = Settings.parse({"REDIS_SENTINELS": "10.0.0.1:26379, sentinel-b ,[::1]:26380",
                               "REDIS_SENTINEL_MASTER": "reactor",
                               "REDIS_SENTINEL_PASSWORD": "s3cret"})
    assert settings.redis_sentinels == (("10.0.0.1", 26379), ("sentinel-b", 26379),
                                        ("::1", 26380))
    assert settings.require_redis_url() == "redis://reactor/0"
    assert "s3cret" not in repr(settings)
    assert connect.describe(settings) == (
        "redis master 'reactor' of the sentinels 10.0.0.1:26379,sentinel-b:26379,::1:26380")


@pytest.mark.parametrize(("values", "message"), [
    ({"REDIS_SENTINELS": "a:26379"}, "REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together"),
    ({"REDIS_SENTINEL_MASTER": "reactor"}, "go together"),
    ({"REDIS_SENTINELS": "a:70000", "REDIS_SENTINEL_MASTER": "m"}, "host:port addresses"),
    ({"REDIS_SENTINELS": "a:1", "REDIS_SENTINEL_MASTER": "m m"}, "REDIS_SENTINEL_MASTER must"),
    ({"REDIS_SENTINELS": "a:1", "REDIS_SENTINEL_MASTER": "m",
      "REDIS_URL": "unix:///run/redis.sock"}, "REDIS_URL must be a redis/rediss URL"),
    ({"REDIS_WAIT_REPLICAS": "one"}, "REDIS_WAIT_REPLICAS must be a whole number"),
])
def test_malformed_sentinel_settings_are_one_line(values: dict[str, str], message: str) -> None:
    from reactor.core.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        Settings.parse(values)


async def test_clients_and_the_ingest_follow_the_master_through_a_failover(
    sentinels: SentinelSet, caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings.parse(sentinels.env())
    old = sentinels.ports["master"]
    sync_client = connect.sync_client(settings, socket_timeout=5)
    async_client = connect.async_client(settings, socket_timeout=5)
    first, second = delivery(), delivery()
    try:
        async with Ingest(async_client) as ingest:
            assert await ingest.accept(first) is True
            sync_client.set("written-before", "1")
            await async_client.set("written-before-async", "1")
            with sentinels.client(old) as master:
                assert master.exists(keys.delivery(first.guid), "written-before",
                                     "written-before-async") == 3
            # The ingest's own connection asked the Sentinels from the first: it never tried
            # an address of its own (redis-py's default, localhost:6379) and waited for Redis.
            assert not [r.message for r in caplog.records if "does not answer" in r.message]

            sentinels.kill(old)
            loop = asyncio.get_running_loop()
            # The ingest rides the failover out (a generous deadline here: the Sentinels
            # take a few seconds, more on a busy machine).
            assert await ingest.accept(second, deadline=loop.time() + 60) is True

        new = sentinels.wait_for_failover(old)
        sync_client.set("written-after", "1")
        await async_client.set("written-after-async", "1")
        with sentinels.client(new) as promoted:
            assert promoted.exists(keys.delivery(first.guid), keys.delivery(second.guid),
                                   "written-after", "written-after-async") == 4
            assert promoted.lrange(QUEUE, 0, -1) == [first.guid.encode(), second.guid.encode()]
    finally:
        sync_client.close()
        await async_client.aclose()


def test_a_command_finds_the_promoted_master_through_the_sentinels(
    sentinels: SentinelSet,
) -> None:
    """``reactor audit`` (a synchronous client, in a process of its own) reads the audit log
    from whichever server the Sentinels name as the master, before and after a failover."""
    record = AuditRecord(at="2026-01-01T00:00:00+00:00", delivery="g1", event="issues",
                         outcome="accepted", detail="kept through the failover")
    old = sentinels.ports["master"]
    with sentinels.client(old) as master:
        master.xadd(keys.AUDIT, record.to_fields())  # type: ignore[arg-type]
        master.wait(1, 5000)  # on the replica too
    env = {**clean_env(), **sentinels.env()}
    before = reactor("audit", "--json", env=env)
    assert before.returncode == 0 and "kept through the failover" in before.stdout, before
    sentinels.kill(old)
    sentinels.wait_for_failover(old)
    after = reactor("audit", "--json", env=env)
    assert after.returncode == 0 and "kept through the failover" in after.stdout, after


async def test_with_wait_replicas_a_delivery_no_replica_has_is_refused_but_kept_once(
    sentinels: SentinelSet,
) -> None:
    """REDIS_WAIT_REPLICAS=1: a 202 means a replica has the delivery too. With the replica
    lost, the delivery is answered 503 (GitHub shows it failed) though the master accepted
    it: its redelivery is then a duplicate, queued once."""
    settings = Settings.parse({**sentinels.env(), "REDIS_WAIT_REPLICAS": "1"})
    client = connect.async_client(settings, socket_timeout=5)
    held, alone = delivery(), delivery()
    try:
        async with Ingest(client, replicas=settings.redis_wait_replicas) as ingest:
            assert await ingest.accept(held) is True
            with sentinels.client(sentinels.ports["replica"]) as replica:
                assert replica.exists(keys.delivery(held.guid)) == 1  # on the replica before 202
            sentinels.kill(sentinels.ports["replica"])
            with pytest.raises(StoreUnavailable, match="0 of 1 replicas"):
                await ingest.accept(alone)
            assert await ingest.accept(alone) is False  # GitHub's redelivery: a duplicate
        with sentinels.client(sentinels.ports["master"]) as master:
            assert master.lrange(QUEUE, 0, -1) == [held.guid.encode(), alone.guid.encode()]
    finally:
        await client.aclose()
