"""Conditional GETs: a 304 is answered from the cache every process shares in Redis."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from redis.asyncio import Redis

from reactor.github import GitHubClient
from tests.github.conftest import MakeClient, Reply, StandIn

ISSUE = "/repos/octo/demo/issues/5"


async def test_304_serves_the_cached_body_to_another_client_instance(
    make_client: MakeClient, stand_in: StandIn
) -> None:
    stand_in.resources[ISSUE] = {"number": 5, "labels": [{"name": "status:idle"}]}
    first, second = await make_client(), await make_client()

    fresh = await first.for_installation(42).getitem(ISSUE)
    remaining = stand_in.remaining
    replayed = await second.for_installation(42).getitem(ISSUE)

    assert replayed == fresh
    first_call, second_call = stand_in.calls("GET", ISSUE)
    assert (first_call.status, first_call.if_none_match) == (200, None)
    assert second_call.status == 304
    assert second_call.if_none_match is not None
    assert stand_in.remaining == remaining  # the 304 cost nothing


async def test_a_changed_resource_is_read_again_and_cached_anew(
    client: GitHubClient, stand_in: StandIn
) -> None:
    gh = client.for_installation(42)
    stand_in.resources[ISSUE] = {"number": 5, "state": "open"}
    await gh.getitem(ISSUE)

    stand_in.resources[ISSUE] = {"number": 5, "state": "closed"}
    assert (await gh.getitem(ISSUE))["state"] == "closed"
    assert (await gh.getitem(ISSUE))["state"] == "closed"

    assert [c.status for c in stand_in.calls("GET", ISSUE)] == [200, 200, 304]


async def test_installations_and_media_types_do_not_share_entries(
    client: GitHubClient, stand_in: StandIn
) -> None:
    stand_in.resources[ISSUE] = {"number": 5}
    await client.for_installation(42).getitem(ISSUE)

    await client.for_installation(43).getitem(ISSUE)
    await client.for_installation(42).getitem(ISSUE, accept="application/vnd.github.raw+json")

    assert [c.if_none_match is None for c in stand_in.calls("GET", ISSUE)] == [True, True, True]


async def test_entries_expire(
    make_client: MakeClient, stand_in: StandIn, redis: Redis[Any]
) -> None:
    client = await make_client(etag_ttl=timedelta(minutes=10))
    stand_in.resources[ISSUE] = {"number": 5}

    await client.for_installation(42).getitem(ISSUE)

    [key] = [k async for k in redis.scan_iter("reactor:etag2:42:*")]
    assert 0 < await redis.ttl(key) <= 600


async def test_pages_replayed_from_the_cache_keep_their_next_link(
    client: GitHubClient, stand_in: StandIn
) -> None:
    path = "/repos/octo/demo/issues"
    next_page = f'<{stand_in.url}{path}?page=2>; rel="next"'
    stand_in.script(
        "GET", path,
        Reply(200, [{"number": 1}], headers={"etag": '"p1"', "link": next_page}),
        Reply(200, [{"number": 2}], headers={"etag": '"p2"'}),
        Reply(304, headers={"etag": '"p1"'}),
        Reply(304, headers={"etag": '"p2"'}),
    )
    gh = client.for_installation(42)

    first = [issue["number"] async for issue in gh.getiter(path)]
    second = [issue["number"] async for issue in gh.getiter(path)]

    assert first == second == [1, 2]
    assert [c.if_none_match for c in stand_in.calls("GET", path)] == [None, None, '"p1"', '"p2"']


async def test_writes_are_never_served_from_the_cache(
    client: GitHubClient, stand_in: StandIn
) -> None:
    path = f"{ISSUE}/labels"
    stand_in.script(
        "POST", path,
        Reply(200, [{"name": "a"}], headers={"etag": '"x"'}),
        Reply(200, [{"name": "b"}], headers={"etag": '"x"'}),
    )
    gh = client.for_installation(42)

    assert await gh.post(path, data={"labels": ["a"]}) == [{"name": "a"}]
    assert await gh.post(path, data={"labels": ["b"]}) == [{"name": "b"}]
    assert [c.if_none_match for c in stand_in.calls("POST", path)] == [None, None]
