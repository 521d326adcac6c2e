"""Conditional requests, primary and secondary rate limits, faulty routes."""

from __future__ import annotations

import math

from ghsandbox.testing import SandboxClient, WebhookReceiver
from tests.sandbox.conftest import Clock, Repo, new_issue


def test_a_304_costs_no_rate_limit(client: SandboxClient, repo: Repo) -> None:
    new_issue(client, repo)
    first = client.as_token(repo.token, "GET", f"{repo.path}/issues/1")
    etag, remaining = first.headers["etag"], int(first.headers["x-ratelimit-remaining"])
    again = client.as_token(
        repo.token, "GET", f"{repo.path}/issues/1", headers={"If-None-Match": etag}
    )
    assert again.status_code == 304 and again.content == b""
    assert int(again.headers["x-ratelimit-remaining"]) == remaining
    client.as_user("a", "POST", f"{repo.path}/issues/1/labels", json=["changed"])
    changed = client.as_token(
        repo.token, "GET", f"{repo.path}/issues/1", headers={"If-None-Match": etag}
    )
    assert (
        changed.status_code == 200
        and int(changed.headers["x-ratelimit-remaining"]) == remaining - 1
    )


def test_every_answer_carries_github_headers(client: SandboxClient, repo: Repo) -> None:
    response = client.as_token(repo.token, "GET", f"{repo.path}/labels")
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    for name in (
        "x-github-request-id",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-used",
        "x-ratelimit-reset",
        "x-ratelimit-resource",
        "etag",
    ):
        assert name in response.headers


def test_primary_limit_is_403_with_remaining_0_until_reset(
    client: SandboxClient, repo: Repo, clock: Clock
) -> None:
    client.control("POST", "faults", {"rate_limit": {"remaining": 1, "reset_in": 30}})
    ok = client.as_token(repo.token, "GET", f"{repo.path}/issues")
    assert ok.status_code == 200 and ok.headers["x-ratelimit-remaining"] == "0"
    limited = client.as_token(repo.token, "GET", f"{repo.path}/issues")
    assert limited.status_code == 403 and limited.headers["x-ratelimit-remaining"] == "0"
    assert "rate limit exceeded" in limited.json()["message"]
    assert int(limited.headers["x-ratelimit-reset"]) == math.ceil(clock.now + 30)
    clock.advance(29)
    assert client.as_token(repo.token, "GET", f"{repo.path}/issues").status_code == 403
    clock.advance(2)
    assert client.as_token(repo.token, "GET", f"{repo.path}/issues").status_code == 200


def test_secondary_limit_answers_retry_after(client: SandboxClient, repo: Repo) -> None:
    client.control(
        "POST", "faults", {"secondary_limit": {"retry_after": 7, "for_s": 30, "status": 429}}
    )
    limited = client.as_token(repo.token, "POST", f"{repo.path}/issues", json={"title": "x"})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    assert "secondary rate limit" in limited.json()["message"]
    client.control("POST", "faults", {})
    created = client.as_token(repo.token, "POST", f"{repo.path}/issues", json={"title": "x"})
    assert created.status_code == 201 and created.json()["number"] == 1


def test_faulty_route_answers_its_status_and_changes_nothing(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    client.control(
        "POST", "faults", {"routes": {"POST /repos/.*/issues$": {"status": 502, "rate": 1.0}}}
    )
    assert (
        client.as_user("a", "POST", f"{repo.path}/issues", json={"title": "x"}).status_code == 502
    )
    assert client.as_user("a", "GET", f"{repo.path}/issues").json() == []
    assert client.drain() == 0 and [w.event for w in receiver.received] == ["installation"]


def test_faulty_route_after_serves_the_request_then_answers_its_status(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    new_issue(client, repo)
    fault = {"status": 502, "after": True}
    client.control("POST", "faults", {"routes": {"POST /repos/.*/comments$": fault}})
    comments = f"{repo.path}/issues/1/comments"
    failed = client.as_token(repo.token, "POST", comments, json={"body": "hand-off"})
    assert failed.status_code == 502
    assert failed.json()["message"] == "Server Error" and "documentation_url" in failed.json()
    assert [c["body"] for c in client.as_user("a", "GET", comments).json()] == ["hand-off"]
    assert client.drain() == 0 and receiver.received[-1].event == "issue_comment"
    assert receiver.received[-1].payload["comment"]["body"] == "hand-off"
    assert client.control("GET", "requests")[-2]["status"] == 502


def test_faulty_route_after_spends_the_rate_limit_once(client: SandboxClient, repo: Repo) -> None:
    new_issue(client, repo)
    fault = {"status": 502, "after": True}
    client.control("POST", "faults", {"routes": {"PATCH /repos/.*/issues/1$": fault}})
    first = client.as_token(repo.token, "GET", f"{repo.path}/issues")
    patched = client.as_token(repo.token, "PATCH", f"{repo.path}/issues/1", json={"title": "new"})
    assert patched.status_code == 502
    again = client.as_token(repo.token, "GET", f"{repo.path}/issues")
    assert again.json()[0]["title"] == "new"
    used = [int(r.headers["x-ratelimit-used"]) for r in (first, patched, again)]
    assert used == [used[0], used[0] + 1, used[0] + 2]


def test_bad_fault_spec_is_400(client: SandboxClient) -> None:
    response = client.http.post("/_sandbox/faults", json={"webhooks": {"drop": "lots"}})
    assert response.status_code == 400 and "drop" in response.json()["message"]
    after = {"routes": {"POST /x": {"status": 502, "after": "yes"}}}
    response = client.http.post("/_sandbox/faults", json=after)
    assert response.status_code == 400 and "after" in response.json()["message"]


def test_request_log_lists_calls_oldest_first(client: SandboxClient, repo: Repo) -> None:
    new_issue(client, repo, user="dora")
    client.as_user("dora", "GET", f"{repo.path}/issues/1")
    log = client.control("GET", "requests")
    assert [(e["method"], e["status"], e["actor"]) for e in log] == [
        ("POST", 201, "dora"),
        ("GET", 200, "dora"),
    ]
    assert client.control("GET", "requests?since=1")[0]["method"] == "GET"
