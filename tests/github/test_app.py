"""App-level calls with the JWT, their typed answers, error messages and route templates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from redis.asyncio import Redis

from reactor.core.errors import GitHubError
from reactor.github import (
    GitHubClient,
    HookDelivery,
    find_delivery,
    get_app,
    list_deliveries,
    list_installations,
    needing_redelivery,
    redeliver,
    repo_installation,
    route_of,
)
from tests.github.conftest import Reply, StandIn

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def _delivery(id: int, guid: str, minutes: int, status_code: int) -> dict[str, object]:
    return {
        "id": id, "guid": guid, "delivered_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "redelivery": False, "duration": 0.2, "status": "OK" if status_code == 200 else "failed",
        "status_code": status_code, "event": "issues", "action": "labeled",
        "installation_id": 42, "repository_id": 7, "throttled_at": None,
    }


async def test_get_app_reads_who_the_app_is(client: GitHubClient, stand_in: StandIn) -> None:
    stand_in.script("GET", "/app", Reply(200, {
        "id": 4242, "slug": "safety-reactor", "name": "Safety Reactor",
        "owner": {"login": "octo"}, "permissions": {"issues": "write"}, "events": ["issues"],
    }))

    app = await get_app(client.app)

    assert (app.id, app.slug, app.owner, app.bot_login) == (
        4242, "safety-reactor", "octo", "safety-reactor[bot]"
    )
    assert app.permissions == {"issues": "write"}
    assert stand_in.calls("GET", "/app")[0].authorization.startswith("bearer ")


async def test_installations_are_listed_and_found_by_repository(
    client: GitHubClient, stand_in: StandIn
) -> None:
    installation = {"id": 42, "account": {"login": "octo", "type": "Organization"},
                    "repository_selection": "all", "permissions": {}, "events": [],
                    "suspended_at": None}
    stand_in.script("GET", "/app/installations", Reply(200, [installation]))
    stand_in.script("GET", "/repos/octo/demo/installation", Reply(200, installation))

    listed = [i async for i in list_installations(client.app)]
    found = await repo_installation(client.app, "octo", "demo")

    assert listed == [found]
    assert (found.id, found.account, found.account_type, found.suspended) == (
        42, "octo", "Organization", False
    )


async def test_delivery_log_follows_pages_and_stops_at_since(
    client: GitHubClient, stand_in: StandIn
) -> None:
    path = "/app/hook/deliveries"
    next_page = f'<{stand_in.url}{path}?per_page=2&cursor=v1_2>; rel="next"'
    stand_in.script(
        "GET", path,
        Reply(200, [_delivery(4, "g3", 30, 503), _delivery(3, "g2", 20, 200)],
              headers={"link": next_page}),
        Reply(200, [_delivery(2, "g2", 10, 503), _delivery(1, "g1", 0, 0)]),
        Reply(200, [_delivery(4, "g3", 30, 503), _delivery(3, "g2", 20, 200)],
              headers={"link": next_page}),
        Reply(200, [_delivery(2, "g2", 10, 503), _delivery(1, "g1", 0, 0)]),
    )

    every = [d async for d in list_deliveries(client.app, per_page=2)]
    recent = [d async for d in list_deliveries(client.app, since=T0 + timedelta(minutes=15))]

    assert [d.id for d in every] == [4, 3, 2, 1]
    assert [d.id for d in recent] == [4, 3]
    assert every[0] == HookDelivery(
        id=4, guid="g3", delivered_at=T0 + timedelta(minutes=30), redelivery=False,
        status="failed", status_code=503, event="issues", action="labeled",
        installation_id=42, repository_id=7,
    )
    assert [d.guid for d in needing_redelivery(every)] == ["g1", "g3"]


async def test_find_and_redeliver_a_delivery(client: GitHubClient, stand_in: StandIn) -> None:
    stand_in.script("GET", "/app/hook/deliveries", Reply(200, [_delivery(9, "g9", 0, 502)]))
    stand_in.script("POST", "/app/hook/deliveries/9/attempts", Reply(202, {}))

    found = await find_delivery(client.app, "g9")
    assert found is not None
    await redeliver(client.app, found.id)

    assert [c.status for c in stand_in.calls("POST", "/app/hook/deliveries/9/attempts")] == [202]


def test_needing_redelivery_keeps_the_newest_attempt_of_each_undelivered_guid() -> None:
    deliveries = [
        HookDelivery(id=i, guid=g, delivered_at=T0 + timedelta(minutes=m), redelivery=m > 0,
                     status="", status_code=code, event="issues", action=None,
                     installation_id=1, repository_id=None)
        for i, g, m, code in [(1, "a", 0, 503), (2, "a", 5, 0), (3, "b", 1, 500),
                              (4, "b", 6, 202), (5, "c", 2, 0)]
    ]

    assert [(d.guid, d.id) for d in needing_redelivery(deliveries)] == [("c", 5), ("a", 2)]


async def test_a_malformed_answer_is_a_clear_error(
    client: GitHubClient, stand_in: StandIn
) -> None:
    stand_in.script("GET", "/app", Reply(200, {"id": 1, "name": "x", "owner": {"login": "o"}}))

    with pytest.raises(GitHubError, match="GitHub's app answer lacks 'slug'"):
        await get_app(client.app)


async def test_validation_errors_carry_githubs_details(
    client: GitHubClient, stand_in: StandIn
) -> None:
    path = "/repos/octo/demo/issues"
    stand_in.script("POST", path, Reply(422, {
        "message": "Validation Failed",
        "errors": [{"resource": "Issue", "field": "title", "code": "missing_field"}],
        "documentation_url": "https://docs.github.com/rest/issues/issues#create-an-issue",
    }))

    with pytest.raises(GitHubError) as caught:
        await client.for_installation(42).post(path, data={})

    assert caught.value.status == 422
    assert (caught.value.method, caught.value.url) == ("POST", f"{stand_in.url}{path}")
    assert str(caught.value) == (
        f"GitHub answered 422 to POST {path}: Validation Failed (Issue title missing_field)"
    )


async def test_a_wrong_key_is_refused_without_retry(
    stand_in: StandIn, redis: Redis[Any]
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    wrong = GitHubClient(app_id=4242, private_key=other, redis=redis, api_url=stand_in.url)
    try:
        with pytest.raises(GitHubError) as caught:
            await get_app(wrong.app)
    finally:
        await wrong.aclose()

    assert caught.value.status == 401
    assert len(stand_in.calls("GET", "/app")) == 1


@pytest.mark.parametrize(("path", "route"), [
    ("/repos/octo/demo/issues/12/labels/status:running",
     "/repos/{owner}/{repo}/issues/{id}/labels/{name}"),
    ("/repos/octo/demo/contents/.github/reactor.yml", "/repos/{owner}/{repo}/contents/{path}"),
    ("/app/installations/42/access_tokens", "/app/installations/{installation_id}/access_tokens"),
    ("/app/hook/deliveries/77/attempts", "/app/hook/deliveries/{delivery_id}/attempts"),
    ("/repos/octo/demo/labels", "/repos/{owner}/{repo}/labels"),
    ("/orgs/octo/installation", "/orgs/{org}/installation"),
])
def test_routes_are_templates(path: str, route: str) -> None:
    for base in ("https://api.github.com", "https://ghe.local/api/v3"):
        assert route_of(f"{base}{path}?per_page=100", base_url=base) == route
