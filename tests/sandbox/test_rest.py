"""Issues, labels, comments, dependencies, contents and dispatches behave as on GitHub."""

from __future__ import annotations

import asyncio
import base64
import re

import httpx

from ghsandbox.testing import SandboxClient, WebhookReceiver
from tests.sandbox.conftest import Repo, events, new_issue


def test_adding_an_unknown_label_creates_it_in_the_repository(
    client: SandboxClient, repo: Repo
) -> None:
    issue = new_issue(client, repo)
    response = client.as_user(
        "alice",
        "POST",
        f"{repo.path}/issues/{issue['number']}/labels",
        json={"labels": ["status:starting"]},
    )
    assert response.status_code == 200
    assert [lab["name"] for lab in response.json()] == ["status:starting"]
    label = client.as_user("alice", "GET", f"{repo.path}/labels/status:starting")
    assert label.status_code == 200 and label.json()["name"] == "status:starting"


def test_removing_an_absent_label_is_404_label_does_not_exist(
    client: SandboxClient, repo: Repo
) -> None:
    issue = new_issue(client, repo, labels=["agent:planner"])
    response = client.as_user(
        "alice", "DELETE", f"{repo.path}/issues/{issue['number']}/labels/status:idle"
    )
    assert response.status_code == 404
    body = response.json()
    assert body["message"] == "Label does not exist" and body["documentation_url"].startswith(
        "https://"
    )


def test_set_labels_sends_only_the_deltas(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    issue = new_issue(client, repo, labels=["a", "b"])
    response = client.as_user(
        "bob", "PUT", f"{repo.path}/issues/{issue['number']}/labels", json={"labels": ["B", "c"]}
    )
    assert sorted(lab["name"] for lab in response.json()) == ["b", "c"]
    tail = events(receiver, client)[-3:]
    assert tail == [("issues", "unlabeled"), ("label", "created"), ("issues", "labeled")]


def test_the_webhooks_of_one_request_show_the_issue_as_the_request_left_it(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    """As on GitHub, a request that changes several labels sends one webhook per change,
    and each shows every label the request left, not the state halfway through."""
    issue = new_issue(client, repo, labels=["status:starting"])
    path = f"{repo.path}/issues/{issue['number']}/labels"
    client.as_user("bob", "PUT", path, json={"labels": ["status:running"]})
    client.as_user("bob", "POST", path, json={"labels": ["x"]})
    assert client.drain() == 0
    shown = [(w.payload["action"], sorted(lab["name"] for lab in w.payload["issue"]["labels"]))
             for w in receiver.received if w.event == "issues"][-3:]
    assert shown == [("unlabeled", ["status:running"]), ("labeled", ["status:running"]),
                     ("labeled", ["status:running", "x"])]


def test_label_names_are_case_insensitive_and_at_most_50_characters(
    client: SandboxClient, repo: Repo
) -> None:
    assert (
        client.as_user("a", "POST", f"{repo.path}/labels", json={"name": "Bug"}).status_code == 201
    )
    clash = client.as_user("a", "POST", f"{repo.path}/labels", json={"name": "bug"})
    assert clash.status_code == 422 and clash.json()["errors"][0]["code"] == "already_exists"
    long = client.as_user("a", "POST", f"{repo.path}/labels", json={"name": "x" * 51})
    assert long.status_code == 422 and long.json()["message"] == "Validation Failed"


def test_issue_list_filters_by_labels_and_state_and_paginates_with_link(
    client: SandboxClient, repo: Repo
) -> None:
    for n in range(5):
        new_issue(client, repo, title=f"i{n}", labels=["comp:x"] if n % 2 == 0 else ["comp:y"])
    client.as_user("a", "PATCH", f"{repo.path}/issues/1", json={"state": "closed"})
    open_x = client.as_user("a", "GET", f"{repo.path}/issues", params={"labels": "comp:x"}).json()
    assert [i["number"] for i in open_x] == [5, 3]
    every = client.as_user(
        "a", "GET", f"{repo.path}/issues", params={"state": "all", "per_page": 2, "page": 2}
    )
    assert [i["number"] for i in every.json()] == [3, 2]
    links = dict(
        (rel, url) for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', every.headers["link"])
    )
    assert set(links) == {"prev", "next", "last", "first"}
    assert "page=3" in links["next"] and "per_page=2" in links["next"] and "page=3" in links["last"]


def test_closing_as_duplicate_records_state_reason(client: SandboxClient, repo: Repo) -> None:
    first, second = new_issue(client, repo), new_issue(client, repo)
    response = client.as_user(
        "a",
        "PATCH",
        f"{repo.path}/issues/{second['number']}",
        json={"state": "closed", "state_reason": "duplicate", "duplicate_issue_id": first["id"]},
    )
    assert response.status_code == 200
    assert (
        response.json()["state_reason"] == "duplicate"
        and response.json()["closed_by"]["login"] == "a"
    )
    bad = client.as_user(
        "a",
        "PATCH",
        f"{repo.path}/issues/{second['number']}",
        json={"state": "closed", "state_reason": "duplicate", "duplicate_issue_id": 1},
    )
    assert bad.status_code == 422


def test_comments_round_trip(client: SandboxClient, repo: Repo) -> None:
    issue = new_issue(client, repo)
    created = client.as_user(
        "a", "POST", f"{repo.path}/issues/{issue['number']}/comments", json={"body": "hi"}
    )
    assert created.status_code == 201
    comment_id = created.json()["id"]
    edited = client.as_user(
        "a", "PATCH", f"{repo.path}/issues/comments/{comment_id}", json={"body": "ho"}
    )
    assert edited.json()["body"] == "ho"
    assert (
        client.as_user("a", "GET", f"{repo.path}/issues/{issue['number']}").json()["comments"] == 1
    )
    assert (
        client.as_user("a", "DELETE", f"{repo.path}/issues/comments/{comment_id}").status_code
        == 204
    )
    assert client.as_user("a", "GET", f"{repo.path}/issues/{issue['number']}/comments").json() == []


def test_dependencies_blocked_by_and_blocking(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    a, b = new_issue(client, repo), new_issue(client, repo)
    added = client.as_user(
        "a",
        "POST",
        f"{repo.path}/issues/{a['number']}/dependencies/blocked_by",
        json={"issue_id": b["id"]},
    )
    assert added.status_code == 201 and added.json()["id"] == b["id"]
    blocking = client.as_user(
        "a", "GET", f"{repo.path}/issues/{b['number']}/dependencies/blocking"
    ).json()
    assert [i["id"] for i in blocking] == [a["id"]]
    summary = client.as_user("a", "GET", f"{repo.path}/issues/{a['number']}").json()[
        "issue_dependencies_summary"
    ]
    assert summary["blocked_by"] == 1
    assert ("issue_dependencies", "blocked_by_added") in events(receiver, client)
    removed = client.as_user(
        "a", "DELETE", f"{repo.path}/issues/{a['number']}/dependencies/blocked_by/{b['id']}"
    )
    assert removed.status_code == 200
    assert (
        client.as_user(
            "a", "GET", f"{repo.path}/issues/{a['number']}/dependencies/blocked_by"
        ).json()
        == []
    )


def test_contents_put_needs_the_current_sha_and_emits_push(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    url = f"{repo.path}/contents/.github/reactor.yml"
    first = base64.b64encode(b"settle: 1s\n").decode()
    created = client.as_user("a", "PUT", url, json={"message": "add", "content": first})
    assert created.status_code == 201
    sha = created.json()["content"]["sha"]
    got = client.as_user("a", "GET", url).json()
    assert base64.b64decode(got["content"]) == b"settle: 1s\n" and got["encoding"] == "base64"
    second = base64.b64encode(b"settle: 2s\n").decode()
    assert (
        client.as_user("a", "PUT", url, json={"message": "m", "content": second}).status_code == 422
    )
    assert (
        client.as_user(
            "a", "PUT", url, json={"message": "m", "content": second, "sha": "0" * 40}
        ).status_code
        == 409
    )
    assert (
        client.as_user(
            "a", "PUT", url, json={"message": "m", "content": second, "sha": sha}
        ).status_code
        == 200
    )
    pushes = [w.payload for w in receiver.received if w.event == "push"]
    assert client.drain() == 0
    pushes = [w.payload for w in receiver.received if w.event == "push"]
    assert len(pushes) == 2 and pushes[1]["head_commit"]["modified"] == [".github/reactor.yml"]
    assert pushes[1]["ref"] == "refs/heads/main" and pushes[1]["sender"]["login"] == "a"


def test_repository_dispatch_is_204_and_sends_the_event(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    response = client.as_token(
        repo.token,
        "POST",
        f"{repo.path}/dispatches",
        json={"event_type": "handoff", "client_payload": {"issue": 1}},
    )
    assert response.status_code == 204 and response.content == b""
    assert client.drain() == 0
    dispatch = next(w.payload for w in receiver.received if w.event == "repository_dispatch")
    assert dispatch["action"] == "handoff" and dispatch["client_payload"] == {"issue": 1}


def test_unknown_repository_and_issue_are_404_with_github_body(
    client: SandboxClient, repo: Repo
) -> None:
    for path in ("/repos/acme/nope/issues", f"{repo.path}/issues/99", "/no/such/route"):
        response = client.as_user("a", "GET", path)
        assert response.status_code == 404
        assert response.json()["message"] == "Not Found"


def test_concurrent_writes_stay_consistent(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    """Many callers at once: every issue gets its own number and every change its webhook."""

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=client.url) as http:
            responses = await asyncio.gather(
                *[
                    http.post(
                        f"{repo.path}/issues",
                        headers={"Authorization": f"token user:u{n}"},
                        json={"title": f"t{n}", "labels": ["comp:x", f"n:{n % 3}"]},
                    )
                    for n in range(40)
                ]
            )
        return [r.json()["number"] for r in responses]

    numbers = asyncio.run(burst())
    assert sorted(numbers) == list(range(1, 41))
    assert client.drain() == 0
    opened = [w for w in receiver.received if w.payload.get("action") == "opened"]
    labeled = [w for w in receiver.received if w.payload.get("action") == "labeled"]
    created = [
        w for w in receiver.received if w.event == "label" and w.payload["action"] == "created"
    ]
    assert len(opened) == 40 and len(labeled) == 80 and len(created) == 4
    listed = client.as_user("a", "GET", f"{repo.path}/labels").json()
    assert sorted(lab["name"] for lab in listed) == ["comp:x", "n:0", "n:1", "n:2"]


def test_an_issues_events_are_its_timeline_oldest_first_with_who_did_what(
    client: SandboxClient, repo: Repo
) -> None:
    issue = new_issue(client, repo, labels=["agent:planner"])
    path = f"{repo.path}/issues/{issue['number']}"
    client.as_user("bob", "PUT", f"{path}/labels", json={"labels": ["status:running"]})
    client.as_user("carol", "PATCH", path, json={"state": "closed", "state_reason": "not_planned"})
    client.as_user("bob", "PATCH", path, json={"state": "open"})
    events = client.as_user("bob", "GET", f"{path}/events").json()
    assert [(e["event"], e["actor"]["login"], e.get("label", {}).get("name"),
             e.get("state_reason")) for e in events] == [
        ("labeled", "alice", "agent:planner", None),
        ("unlabeled", "bob", "agent:planner", None),
        ("labeled", "bob", "status:running", None),
        ("closed", "carol", None, "not_planned"),
        ("reopened", "bob", None, "reopened"),
    ]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert all(e["performed_via_github_app"] is None for e in events)
    second = client.as_user("bob", "GET", f"{path}/events", params={"per_page": 2, "page": 3})
    assert [e["event"] for e in second.json()] == ["reopened"]


def test_a_repository_reads_by_name_with_its_id_for_its_own_installation_only(
    client: SandboxClient, repo: Repo
) -> None:
    """``GET /repos/{o}/{r}`` answers the repository's id (how ``reactor replay --file``
    checks a saved payload); another installation's token may not read it."""
    own = client.http.get(repo.path, headers={"Authorization": f"token {repo.token}"})
    assert own.status_code == 200
    assert (own.json()["id"], own.json()["full_name"]) == (repo.data["id"], "acme/widgets")
    other = client.create_repo("rival", "gadgets")
    foreign = client.installation_token(other["installation_id"])
    refused = client.http.get(repo.path, headers={"Authorization": f"token {foreign}"})
    assert refused.status_code == 403
