"""GitHub's size limits, refused with GitHub's own 422 answers and nothing changed.

Titles hold at most 256 characters, issue and comment bodies 65,536, label names 50; a
request over a limit changes nothing and sends no webhook (see ghsandbox.rest.limits).
"""

from __future__ import annotations

from typing import Any

import httpx

from ghsandbox.testing import SandboxClient, WebhookReceiver
from tests.sandbox.conftest import Repo, new_issue

DOCS = "https://docs.github.com/rest/issues/"


def _refusal(response: httpx.Response) -> tuple[dict[str, Any], str]:
    """The one ``errors`` entry of a 422 Validation Failed, and its documentation URL."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["message"] == "Validation Failed" and len(body["errors"]) == 1
    return body["errors"][0], body["documentation_url"]


def _settled(client: SandboxClient, receiver: WebhookReceiver) -> int:
    assert client.drain() == 0
    return len(receiver.received)


def test_an_issue_title_holds_at_most_256_characters(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    assert new_issue(client, repo, title="t" * 256)["title"] == "t" * 256
    before = _settled(client, receiver)
    created = client.as_user("a", "POST", f"{repo.path}/issues", json={"title": "t" * 257})
    error, docs = _refusal(created)
    assert error == {
        "resource": "Issue",
        "code": "custom",
        "field": "title",
        "message": "title is too long (maximum is 256 characters)",
    }
    assert docs == DOCS + "issues#create-an-issue"
    updated = client.as_user("a", "PATCH", f"{repo.path}/issues/1", json={"title": "u" * 257})
    assert _refusal(updated) == (error, DOCS + "issues#update-an-issue")
    issues = client.as_user("a", "GET", f"{repo.path}/issues").json()
    assert [i["title"] for i in issues] == ["t" * 256]
    assert _settled(client, receiver) == before


def test_an_issue_body_holds_at_most_65536_characters(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    new_issue(client, repo, body="b" * 65536)
    before = _settled(client, receiver)
    body = {"title": "t", "body": "b" * 65537}
    error, _ = _refusal(client.as_user("a", "POST", f"{repo.path}/issues", json=body))
    assert error["field"] == "body" and error["code"] == "custom"
    assert error["message"] == "body is too long (maximum is 65536 characters)"
    edit = {"body": "c" * 65537, "state": "closed"}
    assert _refusal(client.as_user("a", "PATCH", f"{repo.path}/issues/1", json=edit))[0] == error
    issue = client.as_user("a", "GET", f"{repo.path}/issues/1").json()
    assert issue["body"] == "b" * 65536 and issue["state"] == "open"
    assert _settled(client, receiver) == before


def test_a_comment_holds_at_most_65536_characters(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    new_issue(client, repo)
    comments = f"{repo.path}/issues/1/comments"
    kept = client.as_user("a", "POST", comments, json={"body": "c" * 65536})
    assert kept.status_code == 201
    before = _settled(client, receiver)
    error, docs = _refusal(client.as_user("a", "POST", comments, json={"body": "c" * 65537}))
    assert error == {
        "resource": "IssueComment",
        "code": "unprocessable",
        "field": "data",
        "message": "Body is too long (maximum is 65536 characters)",
    }
    assert docs == DOCS + "comments#create-an-issue-comment"
    one = f"{repo.path}/issues/comments/{kept.json()['id']}"
    assert _refusal(client.as_user("a", "PATCH", one, json={"body": "d" * 65537}))[0] == error
    assert [c["body"] for c in client.as_user("a", "GET", comments).json()] == ["c" * 65536]
    assert _settled(client, receiver) == before


def test_a_repository_label_name_holds_at_most_50_characters(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    labels = f"{repo.path}/labels"
    assert client.as_user("a", "POST", labels, json={"name": "n" * 50}).status_code == 201
    before = _settled(client, receiver)
    error, docs = _refusal(client.as_user("a", "POST", labels, json={"name": "n" * 51}))
    assert error == {
        "resource": "Label",
        "code": "custom",
        "field": "name",
        "message": "name is too long (maximum is 50 characters)",
    }
    assert docs == DOCS + "labels#create-a-label"
    renamed = client.as_user("a", "PATCH", f"{labels}/{'n' * 50}", json={"new_name": "m" * 51})
    assert _refusal(renamed)[0] == error
    assert [label["name"] for label in client.as_user("a", "GET", labels).json()] == ["n" * 50]
    assert _settled(client, receiver) == before


def test_a_label_put_on_an_issue_holds_at_most_50_characters(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    new_issue(client, repo, labels=["l" * 50])
    before = _settled(client, receiver)
    long = "l" * 51
    expected = {"value": long, "resource": "Label", "field": "name", "code": "invalid"}
    issue_labels = f"{repo.path}/issues/1/labels"
    added = client.as_user("a", "POST", issue_labels, json={"labels": ["ok", long]})
    assert _refusal(added) == (expected, DOCS + "labels#add-labels-to-an-issue")
    assert _refusal(client.as_user("a", "PUT", issue_labels, json=[long]))[0] == expected
    relabelled = client.as_user("a", "PATCH", f"{repo.path}/issues/1", json={"labels": [long]})
    assert _refusal(relabelled)[0] == expected
    opened = client.as_user(
        "a", "POST", f"{repo.path}/issues", json={"title": "t", "labels": [long]}
    )
    assert _refusal(opened)[0] == expected
    assert [label["name"] for label in client.as_user("a", "GET", issue_labels).json()] == [
        "l" * 50
    ]
    assert [
        label["name"] for label in client.as_user("a", "GET", f"{repo.path}/labels").json()
    ] == ["l" * 50]
    assert _settled(client, receiver) == before
