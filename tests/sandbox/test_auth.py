"""App JWTs, installation tokens that expire, ``user:<login>`` actors, installation isolation."""

from __future__ import annotations

import httpx

from ghsandbox.testing import RunningSandbox, SandboxClient, WebhookReceiver
from tests.sandbox.conftest import Clock, Repo, app_jwt, bearer, new_issue


def test_get_app_needs_a_valid_jwt(sandbox: RunningSandbox, client: SandboxClient) -> None:
    good = client.http.get("/app", headers=bearer(app_jwt(sandbox.config)))
    assert good.status_code == 200 and good.json()["id"] == sandbox.config.app_id
    expired = client.http.get("/app", headers=bearer(app_jwt(sandbox.config, iat_offset=-1200)))
    assert expired.status_code == 401 and "Expiration time" in expired.json()["message"]
    too_long = client.http.get("/app", headers=bearer(app_jwt(sandbox.config, lifetime=3600)))
    assert too_long.status_code == 401
    assert client.http.get("/app").status_code == 401
    assert client.http.get("/app", headers=bearer("a.b.c")).status_code == 401


def test_installation_token_is_long_acts_as_the_bot_and_expires(
    sandbox: RunningSandbox, client: SandboxClient, repo: Repo, clock: Clock
) -> None:
    client.control("POST", "token-lifetime", {"seconds": 600})
    minted = client.http.post(
        f"/app/installations/{repo.installation_id}/access_tokens",
        headers=bearer(app_jwt(sandbox.config)),
    )
    assert minted.status_code == 201
    token = minted.json()["token"]
    assert (
        token.startswith("ghs_") and len(token) > 500 and minted.json()["expires_at"].endswith("Z")
    )
    issue = client.as_token(
        token, "POST", f"{repo.path}/issues", json={"title": "by the app"}
    ).json()
    assert issue["user"]["login"] == "reactor-test[bot]" and issue["user"]["type"] == "Bot"
    assert issue["performed_via_github_app"]["slug"] == "reactor-test"
    clock.advance(599)
    assert client.as_token(token, "GET", f"{repo.path}/issues").status_code == 200
    clock.advance(2)
    expired = client.as_token(token, "GET", f"{repo.path}/issues")
    assert expired.status_code == 401 and expired.json()["message"] == "Bad credentials"


def test_user_tokens_act_as_distinct_users_with_stable_ids(
    client: SandboxClient, repo: Repo
) -> None:
    first = new_issue(client, repo, user="planner-bot")
    second = new_issue(client, repo, user="planner-bot")
    other = new_issue(client, repo, user="executor")
    assert first["user"]["login"] == "planner-bot" and first["user"]["type"] == "User"
    assert first["user"]["id"] == second["user"]["id"] != other["user"]["id"]
    bearer_user = client.http.get(f"{repo.path}/issues/1", headers=bearer("user:someone"))
    assert bearer_user.status_code == 200


def test_webhook_sender_is_the_actor(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    issue = new_issue(client, repo, user="carol")
    client.as_token(repo.token, "POST", f"{repo.path}/issues/{issue['number']}/labels", json=["x"])
    assert client.drain() == 0
    senders = {
        (w.event, w.payload.get("action")): w.payload["sender"]["login"] for w in receiver.received
    }
    assert senders[("issues", "opened")] == "carol"
    assert senders[("issues", "labeled")] == "reactor-test[bot]"


def test_a_token_of_one_installation_cannot_touch_another(
    client: SandboxClient, repo: Repo
) -> None:
    other = client.create_repo("globex", "gadgets")
    assert other["installation_id"] != repo.installation_id
    response = client.as_token(repo.token, "GET", "/repos/globex/gadgets/issues")
    assert response.status_code == 403
    assert response.json()["message"] == "Resource not accessible by integration"
    listed = client.as_token(repo.token, "GET", "/installation/repositories").json()
    assert [r["full_name"] for r in listed["repositories"]] == ["acme/widgets"]


def test_a_second_repository_of_an_owner_joins_its_installation(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    again = client.create_repo("acme", "gears")
    assert again["installation_id"] == repo.installation_id
    assert client.drain() == 0
    kinds = [(w.event, w.payload["action"]) for w in receiver.received]
    assert kinds == [("installation", "created"), ("installation_repositories", "added")]


def test_unauthenticated_calls_are_401(client: SandboxClient, repo: Repo) -> None:
    response = httpx.get(f"{client.url}{repo.path}/issues")
    assert response.status_code == 401 and response.json()["message"] == "Requires authentication"
    bad = client.as_token("ghs_nonsense", "GET", f"{repo.path}/issues")
    assert bad.status_code == 401 and bad.json()["message"] == "Bad credentials"
