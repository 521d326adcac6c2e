"""Rate limits: primary and secondary, on 403 and 429, pause only the limited installation
(in Redis, for every process) and raise RateLimited with the moment to retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from reactor.core.errors import GitHubError, RateLimited
from reactor.github import CallRecord, GitHubClient, LimitKind
from reactor.github.ratelimit import budget_from_headers, exhausted, limit_from_error
from reactor.store import keys
from tests.github.conftest import FakeClock, MakeClient, Reply, StandIn

REPO = "/repos/octo/demo"
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
EPOCH = int(NOW.timestamp())


def test_primary_limit_waits_until_the_reset() -> None:
    headers = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0",
               "x-ratelimit-reset": str(EPOCH + 600)}
    for status in (403, 429):
        limit = limit_from_error(status, headers, "API rate limit exceeded", now=NOW)
        assert limit is not None
        assert (limit.until, limit.kind) == (NOW + timedelta(minutes=10), LimitKind.PRIMARY)


def test_retry_after_wins_and_means_a_secondary_limit() -> None:
    headers = {"retry-after": "30", "x-ratelimit-remaining": "0",
               "x-ratelimit-reset": str(EPOCH + 600)}
    limit = limit_from_error(403, headers, "You have exceeded a secondary rate limit", now=NOW)
    assert limit is not None
    assert (limit.until, limit.kind) == (NOW + timedelta(seconds=30), LimitKind.SECONDARY)


def test_retry_after_may_be_an_http_date() -> None:
    limit = limit_from_error(429, {"retry-after": "Sat, 01 Mar 2025 12:02:00 GMT"}, "", now=NOW)
    assert limit is not None
    assert limit.until == NOW + timedelta(minutes=2)


def test_a_limit_without_headers_waits_one_minute() -> None:
    for status, message in [(429, ""), (403, "You have exceeded a secondary rate limit.")]:
        limit = limit_from_error(status, {}, message, now=NOW)
        assert limit is not None
        assert limit.until == NOW + timedelta(minutes=1)


def test_an_ordinary_403_is_not_a_limit() -> None:
    headers = {"x-ratelimit-remaining": "4999", "x-ratelimit-reset": str(EPOCH + 600)}
    assert limit_from_error(403, headers, "Resource not accessible by integration", now=NOW) is None
    assert limit_from_error(404, {"retry-after": "5"}, "Not Found", now=NOW) is None


def test_a_success_that_spends_the_last_call_announces_the_limit() -> None:
    budget = budget_from_headers({"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0",
                                  "x-ratelimit-reset": str(EPOCH + 60)})
    limit = exhausted(budget, now=NOW)
    assert limit is not None
    assert limit.until == NOW + timedelta(minutes=1)
    assert exhausted(budget, now=NOW + timedelta(minutes=2)) is None
    assert budget_from_headers({"x-ratelimit-remaining": "zero"}) is None


async def test_primary_limit_pauses_that_installation_only(
    client: GitHubClient, stand_in: StandIn, clock: FakeClock, redis: Redis[Any]
) -> None:
    stand_in.resources[REPO] = {"name": "demo"}
    reset = int(clock.now.timestamp()) + 120
    stand_in.script("GET", REPO, Reply(403, {"message": "API rate limit exceeded"}, headers={
        "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}))
    limited, other = client.for_installation(42), client.for_installation(43)

    with pytest.raises(RateLimited) as caught:
        await limited.getitem(REPO)

    assert caught.value.retry_at == datetime.fromtimestamp(reset, UTC)
    assert (caught.value.installation_id, caught.value.status) == (42, 403)
    recorded = await redis.get(keys.rate_limited_until(42))
    assert recorded is not None
    assert float(recorded) == reset
    assert 0 < await redis.ttl(keys.rate_limited_until(42)) <= 122

    calls_before = len(stand_in.seen)
    with pytest.raises(RateLimited) as again:
        await limited.getitem(REPO)
    assert again.value.retry_at == datetime.fromtimestamp(reset, UTC)
    assert len(stand_in.seen) == calls_before  # refused without touching the network

    assert (await other.getitem(REPO))["name"] == "demo"

    clock.advance(timedelta(seconds=121))
    assert (await limited.getitem(REPO))["name"] == "demo"


async def test_429_with_retry_after_sets_retry_at(
    client: GitHubClient, stand_in: StandIn, clock: FakeClock
) -> None:
    stand_in.script("GET", REPO, Reply(429, {"message": "Too many"}, headers={"retry-after": "30"}))

    with pytest.raises(RateLimited) as caught:
        await client.for_installation(42).getitem(REPO)

    assert caught.value.retry_at == clock.now + timedelta(seconds=30)
    assert caught.value.status == 429


async def test_secondary_403_with_retry_after_pauses_every_process(
    make_client: MakeClient, stand_in: StandIn, clock: FakeClock
) -> None:
    path = f"{REPO}/issues"
    stand_in.script("POST", path, Reply(
        403, {"message": "You have exceeded a secondary rate limit."}, headers={"retry-after": "45"}
    ))
    first, second = await make_client(), await make_client()

    with pytest.raises(RateLimited) as caught:
        await first.for_installation(42).post(path, data={"title": "x"})
    with pytest.raises(RateLimited) as elsewhere:
        await second.for_installation(42).post(path, data={"title": "y"})

    assert caught.value.retry_at == clock.now + timedelta(seconds=45)
    assert elsewhere.value.retry_at == caught.value.retry_at
    assert len(stand_in.calls("POST", path)) == 1


async def test_an_ordinary_403_is_an_error_and_pauses_nothing(
    client: GitHubClient, stand_in: StandIn, redis: Redis[Any]
) -> None:
    stand_in.script("GET", REPO, Reply(403, {"message": "Resource not accessible by integration"}))

    with pytest.raises(GitHubError) as caught:
        await client.for_installation(42).getitem(REPO)

    assert not isinstance(caught.value, RateLimited)
    assert caught.value.status == 403
    assert "Resource not accessible by integration" in str(caught.value)
    assert not await redis.exists(keys.rate_limited_until(42))


async def test_spending_the_last_call_pauses_before_the_next_one(
    client: GitHubClient, stand_in: StandIn, clock: FakeClock
) -> None:
    reset = int(clock.now.timestamp()) + 300
    stand_in.script("GET", REPO, Reply(200, {"name": "demo"}, headers={
        "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}))
    gh = client.for_installation(42)

    assert (await gh.getitem(REPO))["name"] == "demo"
    with pytest.raises(RateLimited) as caught:
        await gh.getitem(REPO)

    assert caught.value.retry_at == datetime.fromtimestamp(reset, UTC)
    assert len(stand_in.calls("GET", REPO)) == 1


async def test_app_level_limits_are_kept_apart_from_installations(
    client: GitHubClient, stand_in: StandIn, redis: Redis[Any]
) -> None:
    stand_in.resources[REPO] = {"name": "demo"}
    await client.tokens.get(42)
    too_many = Reply(429, {"message": "Too many"}, headers={"retry-after": "9"})
    stand_in.script("GET", "/app", too_many)

    with pytest.raises(RateLimited) as caught:
        await client.app.getitem("/app")

    assert caught.value.installation_id is None
    assert await redis.exists(keys.rate_limited_until("app"))
    assert (await client.for_installation(42).getitem(REPO))["name"] == "demo"


async def test_last_seen_budget_and_call_records(
    make_client: MakeClient, stand_in: StandIn
) -> None:
    records: list[CallRecord] = []
    client = await make_client(on_response=records.append)
    stand_in.resources[f"{REPO}/issues/7"] = {"number": 7}

    await client.for_installation(42).getitem(f"{REPO}/issues/7")

    budget = client.rate_budget(42)
    assert budget is not None
    assert budget.limit == 5000
    assert budget.remaining == stand_in.remaining
    assert client.rate_budget(43) is None
    assert [(r.method, r.route, r.status, r.installation_id) for r in records] == [
        ("POST", "/app/installations/{installation_id}/access_tokens", 201, None),
        ("GET", "/repos/{owner}/{repo}/issues/{id}", 200, 42),
    ]
    assert records[-1].rate_remaining == budget.remaining
    assert all(r.elapsed_s >= 0 for r in records)
