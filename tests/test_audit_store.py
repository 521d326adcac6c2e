"""The audit stream on a real redis-server: bounded records, paging, delivery lookup."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
import redis.asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactor.store import audit, keys
from reactor.store.audit import ELLIPSIS, AuditRecord, Query
from reactor.store.counters import AuditLog


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


async def record(redis_url: str, entry: AuditRecord) -> None:
    connection = redis.asyncio.Redis.from_url(redis_url)
    try:
        await AuditLog(connection).record(entry)
    finally:
        await connection.aclose()


async def test_every_field_is_size_capped_when_written(
    client: redis.Redis, redis_url: str
) -> None:
    """Issue 11, item 10: one tenant's text cannot make an audit entry grow without bound."""
    guids = [str(uuid.uuid4()) for _ in range(500)]
    await record(redis_url, AuditRecord(
        at="2025-01-01T00:00:00.000+00:00", delivery="g" * 5000, event="issues",
        outcome="rejected", label="l" * 300, actor="a" * 300, detail="d" * 100_000,
        deliveries=",".join(guids),
    ))
    [stored] = audit.read(client)
    assert stored.detail == "d" * (audit.DETAIL_CAP - 1) + ELLIPSIS
    for name in ("delivery", "label", "actor"):
        value = getattr(stored, name)
        assert len(value) == audit.FIELD_CAP and value.endswith(ELLIPSIS), name
    kept = stored.deliveries.split(",")
    assert len(stored.deliveries) <= audit.DELIVERIES_CAP and kept[-1] == ELLIPSIS
    assert kept[:-1] == guids[: len(kept) - 1]  # whole GUIDs only, still findable
    assert guids[0] in stored.guids() and ELLIPSIS not in stored.guids()
    assert client.memory_usage(keys.AUDIT) < 16_000  # type: ignore[operator]


async def test_short_fields_are_written_unchanged(client: redis.Redis, redis_url: str) -> None:
    entry = AuditRecord(at="2025-01-01T00:00:00.000+00:00", delivery="g1", event="issues",
                        outcome="applied", detail="d" * audit.DETAIL_CAP, label="status:x")
    await record(redis_url, entry)
    assert list(audit.read(client)) == [entry]


def test_the_whole_stream_is_read_back_in_pages_newest_first(client: redis.Redis) -> None:
    pipe = client.pipeline()
    for n in range(2 * audit.PAGE + 7):
        pipe.xadd(keys.AUDIT, {"at": "t", "delivery": f"g{n}", "event": "issues",
                               "outcome": "accepted"})
    pipe.execute()
    found = [r.delivery for r in audit.select(client, Query(), limit=None)]
    assert found == [f"g{n}" for n in reversed(range(2 * audit.PAGE + 7))]
    assert [r.delivery for r in audit.select(client, Query(delivery="g3"), limit=None)] == ["g3"]
    newest = audit.newest_id(client)
    client.xadd(keys.AUDIT, {"at": "t", "delivery": "late", "event": "issues",
                             "outcome": "accepted"})
    assert next(audit.select(client, Query(), upto=newest)).delivery == f"g{2 * audit.PAGE + 6}"


def test_paging_steps_below_an_id_in_the_same_millisecond_and_across_one() -> None:
    assert audit._before("1700000000000-5") == "1700000000000-4"
    assert audit._before("1700000000000-0") == f"1699999999999-{2**64 - 1}"


WORDS = st.sampled_from(["g1", "g10", " g1 ", "G1", "r2", "R2", "comp:ti", "comp:titanic",
                         "acme/a", "7", "", "é", "g1,g2"])


@st.composite
def records(draw: st.DrawFn) -> AuditRecord:
    text = st.lists(WORDS, max_size=3).map(" ".join)
    return AuditRecord(
        at="t", event="issues", outcome="applied", delivery=draw(WORDS) or "g", repo=draw(WORDS),
        issue=draw(WORDS), rule=draw(WORDS), detail=draw(text),
        deliveries=",".join(draw(st.lists(WORDS, max_size=3))),
    )


def maybe(values: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
    """A filter that is as often absent as given, so matches on every filter are common."""
    return st.one_of(st.none(), values)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(records(), min_size=1, max_size=8), repo=maybe(WORDS),
       issue=st.sampled_from([None, 7]), comp=maybe(st.sampled_from(["ti", "titanic"])),
       delivery=maybe(WORDS), rule=maybe(WORDS))
def test_the_server_side_prefilter_never_drops_a_match(
    client: redis.Redis, entries: list[AuditRecord], repo: str | None, issue: int | None,
    comp: str | None, delivery: str | None, rule: str | None,
) -> None:
    """Redis narrows the scan; :meth:`Query.matches` alone decides what is a match."""
    client.delete(keys.AUDIT)
    for entry in entries:
        client.xadd(keys.AUDIT, entry.to_fields())  # type: ignore[arg-type]
    query = Query(repo=repo, issue=issue, comp=comp, delivery=delivery, rule=rule)
    stored = list(audit.select(client, Query(), limit=None))
    assert list(audit.select(client, query, limit=None)) == [r for r in stored if query.matches(r)]


async def test_records_older_than_the_age_bound_are_trimmed(
    client: redis.Redis, redis_url: str
) -> None:
    """Issue 17, finding 8: an uninstalled tenant's records, like everyone's, are kept for
    at most ``MAX_AGE`` (the stream's cap by count alone made it depend on traffic)."""
    now = datetime.now(UTC)
    for n, age in enumerate((audit.MAX_AGE + timedelta(days=5), audit.MAX_AGE + timedelta(
            minutes=1), audit.MAX_AGE - timedelta(minutes=1), timedelta(0))):
        millis = int((now - age).timestamp() * 1000)
        client.xadd(keys.AUDIT, AuditRecord(at=audit.now_iso(now - age), delivery=f"g{n}",
                                            event="issues", outcome="accepted").to_fields(),
                    id=f"{millis}-0")
    connection = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert await audit.trim(connection, now=now) == 2
        assert await audit.trim(connection, now=now) == 0
    finally:
        await connection.aclose()
    assert [r.delivery for r in audit.read(client)] == ["g3", "g2"]
