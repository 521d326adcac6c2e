"""A scenario that calls every sandbox REST route, recording each exchange.

Used by :mod:`tests.sandbox.test_conformance`: each call names its OpenAPI path template,
so the recorded answers can be looked up in GitHub's description. It covers successes and the
documented errors, as the App (JWT), as an installation and as users, on an organization's
repository and on a user's.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import httpx

from ghsandbox.config import SandboxConfig
from ghsandbox.testing import ReceivedWebhook, SandboxClient
from tests.sandbox.conftest import app_jwt, bearer


@dataclass
class Exchange:
    method: str
    template: str
    status: int
    headers: httpx.Headers
    body: Any


@dataclass
class Recording:
    exchanges: list[Exchange] = field(default_factory=list)
    webhooks: list[ReceivedWebhook] = field(default_factory=list)


class Driver:
    """Calls routes by OpenAPI template and records what came back."""

    def __init__(self, client: SandboxClient, recording: Recording) -> None:
        self.client, self.recording = client, recording

    def __call__(
        self,
        method: str,
        template: str,
        auth: dict[str, str],
        expect: int,
        json: Any = None,
        **values: Any,
    ) -> Any:
        response = self.client.http.request(
            method, template.format(**values), headers=auth, json=json
        )
        assert response.status_code == expect, (method, template, response.text)
        body = response.json() if response.content else None
        self.recording.exchanges.append(
            Exchange(method, template, response.status_code, response.headers, body)
        )
        return body


def _user(login: str) -> dict[str, str]:
    return {"Authorization": f"token user:{login}"}


def run_scenario(drive: Driver, client: SandboxClient, config: SandboxConfig) -> None:
    jwt = bearer(app_jwt(config))
    inst = client.create_repo("acme", "widgets")["installation_id"]
    client.create_repo("acme", "gears")
    client.create_repo("solo", "notes", owner_type="User")
    drive("GET", "/app", jwt, 200)
    drive("GET", "/app/installations", jwt, 200)
    drive("GET", "/app/installations/{installation_id}", jwt, 200, installation_id=inst)
    drive("GET", "/app/installations/{installation_id}", jwt, 404, installation_id=999)
    token = drive(
        "POST", "/app/installations/{installation_id}/access_tokens", jwt, 201, installation_id=inst
    )
    bot = {"Authorization": f"token {token['token']}"}
    repo = {"owner": "acme", "repo": "widgets"}
    drive("GET", "/repos/{owner}/{repo}/installation", jwt, 200, **repo)
    drive("GET", "/repos/{owner}/{repo}", bot, 200, **repo)
    drive("GET", "/repos/{owner}/{repo}", bot, 403, owner="solo", repo="notes")
    drive("GET", "/repos/{owner}/{repo}", bot, 404, owner="acme", repo="nowhere")
    drive("GET", "/installation/repositories", bot, 200)
    drive("GET", "/rate_limit", bot, 200)
    _start_up(drive, jwt, bot, config)
    _installations(drive, jwt, inst)
    _app_hook(drive, jwt)
    _issues(drive, bot, repo)
    _labels(drive, bot, repo)
    _comments(drive, bot, repo)
    _dependencies(drive, bot, repo)
    _sub_issues(drive, bot, repo)
    _contents(drive, bot, repo)
    drive(
        "POST",
        "/repos/{owner}/{repo}/issues",
        _user("sam"),
        201,
        json={"title": "u"},
        owner="solo",
        repo="notes",
    )
    assert client.drain() == 0
    listed = drive("GET", "/app/hook/deliveries", jwt, 200)
    drive("GET", "/app/hook/deliveries/{delivery_id}", jwt, 200, delivery_id=listed[0]["id"])
    drive(
        "POST", "/app/hook/deliveries/{delivery_id}/attempts", jwt, 202, delivery_id=listed[0]["id"]
    )
    assert client.drain() == 0


def _start_up(
    drive: Driver, jwt: dict[str, str], bot: dict[str, str], config: SandboxConfig
) -> None:
    """What clients call first: the API root, ``/meta``, who they are, their budget."""
    anonymous: dict[str, str] = {}
    drive("GET", "/", anonymous, 200)
    drive("GET", "/meta", anonymous, 200)
    drive("GET", "/rate_limit", anonymous, 200)
    drive("GET", "/user", _user("ann"), 200)
    drive("GET", "/user", bot, 403)
    drive("GET", "/user", jwt, 403)
    users = "/users/{username}"
    drive("GET", users, anonymous, 200, username="ann")
    drive("GET", users, bot, 200, username=f"{config.app_slug}[bot]")
    drive("GET", users, bot, 200, username="acme")
    drive("GET", users, bot, 404, username="nobody-at-all")


def _installations(drive: Driver, jwt: dict[str, str], inst: int) -> None:
    """Finding an installation by account, and a token that revokes itself."""
    drive("GET", "/orgs/{org}/installation", jwt, 200, org="acme")
    drive("GET", "/orgs/{org}/installation", jwt, 404, org="solo")
    drive("GET", "/users/{username}/installation", jwt, 200, username="solo")
    drive("GET", "/users/{username}/installation", jwt, 200, username="acme")
    drive("GET", "/users/{username}/installation", jwt, 404, username="nobody-at-all")
    spare = drive(
        "POST", "/app/installations/{installation_id}/access_tokens", jwt, 201, installation_id=inst
    )
    spare_auth = {"Authorization": f"token {spare['token']}"}
    drive("DELETE", "/installation/token", spare_auth, 204)
    drive("GET", "/installation/repositories", spare_auth, 401)


def _app_hook(drive: Driver, jwt: dict[str, str]) -> None:
    config = drive("GET", "/app/hook/config", jwt, 200)
    same = {"url": config["url"], "content_type": "json", "insecure_ssl": "1"}
    drive("PATCH", "/app/hook/config", jwt, 200, json=same)
    drive("PATCH", "/app/hook/config", jwt, 422, json={"content_type": "form"})
    drive("PATCH", "/app/hook/config", jwt, 200, json={"insecure_ssl": 0})


def _issues(drive: Driver, bot: dict[str, str], repo: dict[str, str]) -> None:
    path = "/repos/{owner}/{repo}/issues"
    one = "/repos/{owner}/{repo}/issues/{issue_number}"
    drive(
        "POST",
        path,
        bot,
        201,
        json={"title": "[c] planner: x", "body": "b", "labels": ["comp:c"]},
        **repo,
    )
    drive("POST", path, _user("ann"), 201, json={"title": "second"}, **repo)
    drive("POST", path, bot, 422, json={"body": "no title"}, **repo)
    drive("POST", path, bot, 422, json={"title": "t" * 257}, **repo)
    drive("PATCH", one, bot, 422, json={"body": "b" * 65537}, issue_number=1, **repo)
    drive("GET", path, bot, 200, **repo)
    drive("GET", one, bot, 200, issue_number=1, **repo)
    drive("GET", one, bot, 404, issue_number=77, **repo)
    drive(
        "PATCH",
        one,
        _user("ann"),
        200,
        json={"title": "t2", "body": "b2", "labels": ["comp:c", "x"]},
        issue_number=1,
        **repo,
    )
    drive(
        "PATCH",
        one,
        bot,
        200,
        json={"state": "closed", "state_reason": "not_planned"},
        issue_number=2,
        **repo,
    )
    drive("PATCH", one, _user("ann"), 200, json={"state": "open"}, issue_number=2, **repo)
    labels = "/repos/{owner}/{repo}/issues/{issue_number}/labels"
    drive("GET", labels, bot, 200, issue_number=1, **repo)
    drive("POST", labels, bot, 200, json={"labels": ["status:starting"]}, issue_number=1, **repo)
    drive("POST", labels, bot, 422, json={"labels": ["l" * 51]}, issue_number=1, **repo)
    drive(
        "PUT",
        labels,
        _user("ann"),
        200,
        json={"labels": ["comp:c", "status:running"]},
        issue_number=1,
        **repo,
    )
    drive("DELETE", labels + "/{name}", bot, 200, issue_number=1, name="status:running", **repo)
    drive("DELETE", labels + "/{name}", bot, 404, issue_number=1, name="status:running", **repo)
    drive("DELETE", labels, bot, 204, issue_number=2, **repo)
    events = "/repos/{owner}/{repo}/issues/{issue_number}/events"
    drive("GET", events, bot, 200, issue_number=1, **repo)
    drive("GET", events, bot, 200, issue_number=2, **repo)
    drive("GET", events, bot, 404, issue_number=77, **repo)


def _labels(drive: Driver, bot: dict[str, str], repo: dict[str, str]) -> None:
    path, one = "/repos/{owner}/{repo}/labels", "/repos/{owner}/{repo}/labels/{name}"
    drive("GET", path, bot, 200, **repo)
    drive("POST", path, bot, 201, json={"name": "reactor:blocked", "color": "b60205"}, **repo)
    drive("POST", path, bot, 422, json={"name": "Reactor:Blocked"}, **repo)
    drive("POST", path, bot, 422, json={"name": "n" * 51}, **repo)
    drive("GET", one, bot, 200, name="reactor:blocked", **repo)
    drive("GET", one, bot, 404, name="nope", **repo)
    drive(
        "PATCH",
        one,
        _user("ann"),
        200,
        json={"new_name": "reactor:held", "description": "d"},
        name="reactor:blocked",
        **repo,
    )
    drive("DELETE", one, bot, 204, name="reactor:held", **repo)


def _comments(drive: Driver, bot: dict[str, str], repo: dict[str, str]) -> None:
    path = "/repos/{owner}/{repo}/issues/{issue_number}/comments"
    one = "/repos/{owner}/{repo}/issues/comments/{comment_id}"
    created = drive("POST", path, bot, 201, json={"body": "R1: reverted"}, issue_number=1, **repo)
    drive("POST", path, bot, 422, json={"body": "c" * 65537}, issue_number=1, **repo)
    drive("GET", path, bot, 200, issue_number=1, **repo)
    drive("GET", one, bot, 200, comment_id=created["id"], **repo)
    drive("PATCH", one, bot, 422, json={"body": "c" * 65537}, comment_id=created["id"], **repo)
    drive(
        "PATCH", one, _user("ann"), 200, json={"body": "edited"}, comment_id=created["id"], **repo
    )
    drive("DELETE", one, bot, 204, comment_id=created["id"], **repo)


def _dependencies(drive: Driver, bot: dict[str, str], repo: dict[str, str]) -> None:
    deps = "/repos/{owner}/{repo}/issues/{issue_number}/dependencies"
    blocker = drive(
        "GET", "/repos/{owner}/{repo}/issues/{issue_number}", bot, 200, issue_number=2, **repo
    )
    drive(
        "POST",
        deps + "/blocked_by",
        bot,
        201,
        json={"issue_id": blocker["id"]},
        issue_number=1,
        **repo,
    )
    drive("GET", deps + "/blocked_by", bot, 200, issue_number=1, **repo)
    drive("GET", deps + "/blocking", bot, 200, issue_number=2, **repo)
    drive(
        "DELETE",
        deps + "/blocked_by/{issue_id}",
        bot,
        200,
        issue_number=1,
        issue_id=blocker["id"],
        **repo,
    )


def _sub_issues(drive: Driver, bot: dict[str, str], repo: dict[str, str]) -> None:
    """Issue 1 gains two sub-issues of its repository and one of another; one moves to issue
    2 (refused, then with ``replace_parent``); reordering, the parent, and a removal."""
    one = "/repos/{owner}/{repo}/issues/{issue_number}"
    subs = one + "/sub_issues"
    top = drive("GET", one, bot, 200, issue_number=1, **repo)
    made = [drive("POST", "/repos/{owner}/{repo}/issues", bot, 201, json={"title": f"part {n}"},
                  **repo) for n in (1, 2)]
    gears = drive("POST", "/repos/{owner}/{repo}/issues", bot, 201, json={"title": "gear"},
                  owner="acme", repo="gears")
    for sub in (*made, gears):
        drive("POST", subs, bot, 201, json={"sub_issue_id": sub["id"]}, issue_number=1, **repo)
    drive("POST", subs, bot, 422, json={"sub_issue_id": top["id"]}, issue_number=1, **repo)
    drive("POST", subs, bot, 404, json={"sub_issue_id": 1}, issue_number=1, **repo)
    moved = {"sub_issue_id": made[0]["id"]}
    drive("POST", subs, bot, 422, json=moved, issue_number=2, **repo)
    drive("POST", subs, bot, 201, json={**moved, "replace_parent": True}, issue_number=2, **repo)
    drive("GET", subs, bot, 200, issue_number=1, **repo)
    drive("GET", subs, bot, 404, issue_number=77, **repo)
    priority = subs + "/priority"
    first = {"sub_issue_id": gears["id"], "before_id": made[1]["id"]}
    drive("PATCH", priority, bot, 200, json=first, issue_number=1, **repo)
    drive("PATCH", priority, bot, 422, json={"sub_issue_id": gears["id"]}, issue_number=1, **repo)
    drive("PATCH", priority, bot, 404, json={**moved, "after_id": gears["id"]}, issue_number=1,
          **repo)
    drive("GET", one + "/parent", bot, 200, issue_number=made[1]["number"], **repo)
    drive("GET", one + "/parent", bot, 404, issue_number=1, **repo)
    gone = {"sub_issue_id": made[1]["id"]}
    drive("DELETE", one + "/sub_issue", bot, 200, json=gone, issue_number=1, **repo)
    drive("DELETE", one + "/sub_issue", bot, 404, json=gone, issue_number=1, **repo)
    drive("DELETE", one + "/sub_issue", bot, 400, json={}, issue_number=1, **repo)


def _contents(drive: Driver, bot: dict[str, str], repo: dict[str, str]) -> None:
    path = "/repos/{owner}/{repo}/contents/{path}"
    text = base64.b64encode(b"stages: [planner]\n").decode()
    made = drive(
        "PUT",
        path,
        bot,
        201,
        json={"message": "m", "content": text},
        path=".github/reactor.yml",
        **repo,
    )
    drive("GET", path, bot, 200, path=".github/reactor.yml", **repo)
    drive("GET", path, bot, 200, path=".github", **repo)
    drive("GET", path, bot, 404, path="missing.txt", **repo)
    drive(
        "PUT",
        path,
        bot,
        409,
        json={"message": "m", "content": text, "sha": "1" * 40},
        path=".github/reactor.yml",
        **repo,
    )
    drive(
        "PUT",
        path,
        bot,
        200,
        json={"message": "m", "content": text, "sha": made["content"]["sha"]},
        path=".github/reactor.yml",
        **repo,
    )
    drive(
        "POST",
        "/repos/{owner}/{repo}/dispatches",
        bot,
        204,
        json={"event_type": "reactor-handoff", "client_payload": {"n": 1}},
        **repo,
    )
