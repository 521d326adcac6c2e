"""What agent libraries and operator tools call on start-up, and GitHub's answer to any 404.

Who am I (``GET /user``), anyone's account (``GET /users/{username}``), the App's installation
by account, a token revoking itself, the App's webhook configuration, the API root and
``/meta``: each answers as GitHub does, and a path no route serves is GitHub's JSON 404 with
the headers of every other answer (the response bodies are checked against GitHub's OpenAPI
description in ``test_conformance``).
"""

from __future__ import annotations

from ghsandbox.testing import RunningSandbox, SandboxClient, WebhookReceiver, run_receiver
from tests.sandbox.conftest import Repo, app_jwt, bearer, events, new_issue

GITHUB_HEADERS = (
    "x-github-request-id",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-used",
    "x-ratelimit-reset",
    "x-ratelimit-resource",
)


def test_get_user_is_who_a_user_token_acts_as_and_403_for_the_app(
    sandbox: RunningSandbox, client: SandboxClient, repo: Repo
) -> None:
    me = client.as_user("planner-bot", "GET", "/user")
    assert me.status_code == 200
    body = me.json()
    assert (body["login"], body["type"]) == ("planner-bot", "User")
    assert body["user_view_type"] == "private"
    issue = new_issue(client, repo, user="planner-bot")
    assert issue["user"]["id"] == body["id"]
    for credentials in (bearer(repo.token), bearer(app_jwt(sandbox.config))):
        refused = client.http.get("/user", headers=credentials)
        assert refused.status_code == 403
        assert refused.json()["message"] == "Resource not accessible by integration"
        assert refused.json()["documentation_url"].endswith("#get-the-authenticated-user")


def test_get_users_answers_every_known_account_and_404_for_a_name_never_seen(
    client: SandboxClient, repo: Repo
) -> None:
    new_issue(client, repo, user="alice")
    alice = client.http.get("/users/alice")  # no credentials needed, as on GitHub
    assert alice.status_code == 200 and alice.json()["type"] == "User"
    assert alice.json()["user_view_type"] == "public" and "plan" not in alice.json()
    bot = client.as_token(repo.token, "GET", "/users/reactor-test%5Bbot%5D")
    assert bot.status_code == 200 and bot.json()["type"] == "Bot"
    issue = client.as_token(repo.token, "POST", f"{repo.path}/issues", json={"title": "t"}).json()
    assert issue["user"]["id"] == bot.json()["id"]
    assert client.http.get("/users/acme").json()["type"] == "Organization"
    unknown = client.http.get("/users/nobody-at-all")
    assert unknown.status_code == 404 and unknown.json()["message"] == "Not Found"


def test_an_unknown_route_is_githubs_404_with_every_header_and_is_logged(
    client: SandboxClient, repo: Repo
) -> None:
    for method, path in (("GET", "/nowhere"), ("DELETE", f"{repo.path}/issues")):
        answer = client.as_token(repo.token, method, path)
        assert answer.status_code == 404, (method, path)
        assert answer.headers["content-type"] == "application/json; charset=utf-8"
        assert [h for h in GITHUB_HEADERS if h not in answer.headers] == []
        assert answer.headers["x-ratelimit-limit"] == "5000"
        body = answer.json()
        assert body["message"] == "Not Found" and body["documentation_url"].startswith("https://")
    last = client.control("GET", "requests")[-1]
    assert (last["method"], last["path"], last["status"], last["actor"]) == (
        "DELETE",
        f"{repo.path}/issues",
        404,
        "reactor-test[bot]",
    )
    anonymous = client.http.get("/nowhere")
    assert anonymous.status_code == 404 and anonymous.headers["x-ratelimit-limit"] == "60"
    bad = client.http.get("/nowhere", headers=bearer("not-a-token"))
    assert bad.status_code == 401 and bad.json()["message"] == "Bad credentials"
    assert "x-github-request-id" in bad.headers


def test_an_unknown_manifest_code_is_githubs_404(client: SandboxClient) -> None:
    answer = client.http.post("/app-manifests/nope/conversions")
    assert answer.status_code == 404 and answer.json()["documentation_url"].startswith("https://")
    assert [h for h in GITHUB_HEADERS if h not in answer.headers] == []


def test_calls_without_credentials_have_60_an_hour(client: SandboxClient) -> None:
    for _ in range(60):
        assert client.http.get("/meta").status_code == 200
    limited = client.http.get("/meta")
    assert limited.status_code == 403 and limited.headers["x-ratelimit-remaining"] == "0"
    assert limited.json()["message"].startswith("API rate limit exceeded for 127.0.0.1.")
    assert client.as_user("alice", "GET", "/meta").status_code == 200


def test_an_answer_before_authentication_shows_the_callers_own_budget(
    client: SandboxClient, repo: Repo
) -> None:
    client.as_token(repo.token, "GET", f"{repo.path}/issues")
    client.control("POST", "faults", {"secondary_limit": {"retry_after": 5, "for_s": 30}})
    limited = client.as_token(repo.token, "GET", f"{repo.path}/issues")
    assert limited.status_code == 403 and limited.headers["retry-after"] == "5"
    assert (limited.headers["x-ratelimit-limit"], limited.headers["x-ratelimit-used"]) == (
        "5000",
        "1",
    )


def test_the_root_and_meta_answer_anyone(sandbox: RunningSandbox, client: SandboxClient) -> None:
    root = client.http.get("/")
    assert root.status_code == 200
    assert root.json()["repository_url"] == f"{sandbox.url}/repos/{{owner}}/{{repo}}"
    meta = client.http.get("/meta").json()
    assert meta["verifiable_password_authentication"] is False and "installed_version" not in meta


def test_the_app_finds_its_installation_by_organization_or_by_account(
    sandbox: RunningSandbox, client: SandboxClient
) -> None:
    org = client.create_repo("acme", "widgets")["installation_id"]
    user = client.create_repo("solo", "notes", owner_type="User")["installation_id"]
    app = bearer(app_jwt(sandbox.config))
    assert client.http.get("/orgs/acme/installation", headers=app).json()["id"] == org
    assert client.http.get("/orgs/solo/installation", headers=app).status_code == 404
    assert client.http.get("/users/solo/installation", headers=app).json()["id"] == user
    assert client.http.get("/users/ACME/installation", headers=app).json()["id"] == org
    assert client.http.get("/users/nobody/installation", headers=app).status_code == 404


def test_a_revoked_installation_token_is_bad_credentials(client: SandboxClient, repo: Repo) -> None:
    other = client.installation_token(repo.installation_id)
    revoked = client.as_token(repo.token, "DELETE", "/installation/token")
    assert revoked.status_code == 204 and revoked.content == b""
    again = client.as_token(repo.token, "GET", "/installation/repositories")
    assert again.status_code == 401 and again.json()["message"] == "Bad credentials"
    assert client.as_token(other, "GET", "/installation/repositories").status_code == 200


def test_the_app_hook_config_shows_the_first_receiver_and_patch_moves_the_webhook(
    sandbox: RunningSandbox, client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    app = bearer(app_jwt(sandbox.config))
    config = client.http.get("/app/hook/config", headers=app).json()
    assert config == {
        "url": receiver.url,
        "content_type": "json",
        "insecure_ssl": "0",
        "secret": "********",
    }
    with run_receiver() as moved:
        patched = client.http.patch(
            "/app/hook/config", headers=app, json={"url": moved.url, "insecure_ssl": "1"}
        )
        assert patched.status_code == 200
        assert (patched.json()["url"], patched.json()["insecure_ssl"]) == (moved.url, "1")
        before = len(receiver.received)
        new_issue(client, repo)
        assert events(moved, client) == [("issues", "opened")]
        assert len(receiver.received) == before
        client.control("POST", "reset")
        assert client.http.get("/app/hook/config", headers=app).json()["url"] == receiver.url
        fresh = client.create_repo("acme", "gears")
        assert fresh["installation_id"] and client.drain() == 0
        assert receiver.received[-1].event == "installation"


def test_the_app_hook_config_refuses_what_the_sandbox_would_not_do(
    sandbox: RunningSandbox, client: SandboxClient, receiver: WebhookReceiver
) -> None:
    app = bearer(app_jwt(sandbox.config))
    for change, field in (
        ({"content_type": "form"}, "content_type"),
        ({"secret": "another"}, "secret"),
        ({"url": "ftp://example"}, "url"),
        ({"insecure_ssl": "2"}, "insecure_ssl"),
    ):
        refused = client.http.patch("/app/hook/config", headers=app, json=change)
        assert refused.status_code == 422, change
        assert refused.json()["errors"][0]["field"] == field
    same = {"secret": sandbox.config.webhook_secret, "content_type": "json"}
    assert client.http.patch("/app/hook/config", headers=app, json=same).status_code == 200
    assert client.http.get("/app/hook/config", headers=app).json()["url"] == receiver.url
    assert client.as_user("alice", "GET", "/app/hook/config").status_code == 401
