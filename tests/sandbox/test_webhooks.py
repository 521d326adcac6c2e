"""Webhooks: signed, in order, logged, redeliverable, and faulty on request."""

from __future__ import annotations

import hashlib
import hmac
import re

from ghsandbox.testing import RunningSandbox, SandboxClient, WebhookReceiver, run_receiver
from tests.sandbox.conftest import Repo, app_jwt, bearer, events, new_issue


def test_webhooks_are_signed_over_the_raw_body(
    sandbox: RunningSandbox, client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    new_issue(client, repo)
    assert client.drain() == 0
    secret = sandbox.config.webhook_secret.encode()
    for hook in receiver.received:
        expected = hmac.new(secret, hook.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(hook.headers["x-hub-signature-256"], f"sha256={expected}")
        sha1 = hmac.new(secret, hook.body, hashlib.sha1).hexdigest()
        assert hook.headers["x-hub-signature"] == f"sha1={sha1}"
        assert re.fullmatch(r"GitHub-Hookshot/[0-9a-f]+", hook.headers["user-agent"])
        assert hook.headers["x-github-hook-installation-target-type"] == "integration"
        assert hook.headers["x-github-hook-installation-target-id"] == str(sandbox.config.app_id)
        assert hook.headers["content-type"] == "application/json"


def test_each_change_emits_githubs_event_in_order(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    issue = new_issue(client, repo, labels=["comp:a"])
    path = f"{repo.path}/issues/{issue['number']}"
    client.as_user("a", "PATCH", path, json={"title": "new", "state": "closed", "labels": []})
    client.as_user("a", "PATCH", path, json={"state": "open"})
    client.as_user("a", "POST", f"{path}/comments", json={"body": "c"})
    client.as_user("a", "PATCH", f"{repo.path}/labels/comp:a", json={"new_name": "comp:b"})
    client.as_user("a", "DELETE", f"{repo.path}/labels/comp:b")
    assert events(receiver, client) == [
        ("installation", "created"),
        ("label", "created"),
        ("issues", "opened"),
        ("issues", "labeled"),
        ("issues", "edited"),
        ("issues", "closed"),
        ("issues", "unlabeled"),
        ("issues", "reopened"),
        ("issue_comment", "created"),
        ("label", "edited"),
        ("label", "deleted"),
    ]
    payload = receiver.received[2].payload
    assert payload["installation"]["id"] == repo.installation_id
    assert (
        payload["organization"]["login"] == "acme"
        and payload["repository"]["full_name"] == "acme/widgets"
    )


def test_payload_shows_the_state_at_the_moment_of_the_change(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    issue = new_issue(client, repo)
    for name in ("one", "two"):
        client.as_user("a", "POST", f"{repo.path}/issues/{issue['number']}/labels", json=[name])
    assert client.drain() == 0
    labeled = [w.payload for w in receiver.received if w.payload.get("action") == "labeled"]
    assert [len(p["issue"]["labels"]) for p in labeled] == [1, 2]
    assert [p["label"]["name"] for p in labeled] == ["one", "two"]


def test_delivery_log_and_redelivery_keep_the_guid(
    sandbox: RunningSandbox, client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    new_issue(client, repo, labels=["x"])
    assert client.drain() == 0
    jwt_headers = bearer(app_jwt(sandbox.config))
    listed = client.http.get("/app/hook/deliveries", headers=jwt_headers, params={"per_page": 2})
    assert listed.status_code == 200
    items = listed.json()
    assert len(items) == 2 and items[0]["id"] > items[1]["id"] and items[0]["status_code"] == 200
    assert 'rel="next"' in listed.headers["link"]
    newest = items[0]
    detail = client.http.get(f"/app/hook/deliveries/{newest['id']}", headers=jwt_headers).json()
    assert detail["request"]["headers"]["X-GitHub-Delivery"] == newest["guid"]
    again = client.http.post(f"/app/hook/deliveries/{newest['id']}/attempts", headers=jwt_headers)
    assert again.status_code == 202
    assert client.drain() == 0
    original = next(w for w in receiver.received if w.guid == newest["guid"])
    assert (
        receiver.received[-1].guid == newest["guid"] and receiver.received[-1].body == original.body
    )
    relisted = client.http.get("/app/hook/deliveries", headers=jwt_headers).json()
    assert relisted[0]["redelivery"] is True and relisted[0]["guid"] == newest["guid"]
    assert relisted[0]["id"] != newest["id"]


def test_failed_deliveries_are_logged_and_not_retried(
    sandbox: RunningSandbox, client: SandboxClient
) -> None:
    with run_receiver(status=503) as failing:
        client.control("POST", "hooks", {"url": failing.url})
        client.create_repo("initech", "tps")
        assert client.drain() == 0
        assert len(failing.received) == 1
    logged = [w for w in client.webhooks() if w["url"] == failing.url]
    assert [w["status_code"] for w in logged] == [503]
    failed = client.http.get(
        "/app/hook/deliveries",
        params={"status": "failure"},
        headers=bearer(app_jwt(sandbox.config)),
    ).json()
    assert [d["status_code"] for d in failed] == [503]


def test_late_log_fault_leaves_attempts_out_of_the_delivery_log_until_cleared(
    sandbox: RunningSandbox, client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    """As GitHub's log may show an attempt a moment after it was made: sent and logged for
    the test (``/_sandbox/webhooks``), but not in the App's log until the fault is cleared."""
    assert client.drain() == 0
    jwt_headers = bearer(app_jwt(sandbox.config))

    def logged() -> list[int]:
        return [d["id"] for d in client.http.get("/app/hook/deliveries", headers=jwt_headers,
                                                 params={"per_page": 100}).json()]

    before = logged()
    client.control("POST", "faults", {"webhooks": {"late_log": True}})
    sent = len(receiver.received)
    new_issue(client, repo)
    assert client.drain() == 0
    assert len(receiver.received) > sent  # sent all the same
    late = client.webhooks()[-1]["delivery_id"]
    assert logged() == before
    assert client.http.get(f"/app/hook/deliveries/{late}", headers=jwt_headers).status_code == 404
    client.control("POST", "faults", {})
    assert late in logged() and len(logged()) > len(before)
    assert client.http.get(f"/app/hook/deliveries/{late}", headers=jwt_headers).status_code == 200


def test_duplicate_fault_sends_the_same_guid_twice(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    assert client.drain() == 0
    client.control("POST", "faults", {"webhooks": {"duplicate": 1.0}})
    before = len(receiver.received)
    new_issue(client, repo)
    assert client.drain() == 0
    fresh = receiver.received[before:]
    assert len(fresh) == 2 and fresh[0].guid == fresh[1].guid and fresh[0].body == fresh[1].body


def test_drop_fault_records_a_failed_delivery_without_sending(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    assert client.drain() == 0
    client.control("POST", "faults", {"webhooks": {"drop": 1.0}})
    before = len(receiver.received)
    new_issue(client, repo)
    assert client.drain() == 0
    assert len(receiver.received) == before
    assert client.webhooks()[-1]["dropped"] is True and client.webhooks()[-1]["status_code"] == 0


def test_reorder_fault_swaps_neighbouring_deliveries(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    issue = new_issue(client, repo)
    for name in ("one", "two"):
        client.as_user("a", "POST", f"{repo.path}/labels", json={"name": name})
    assert client.drain() == 0
    client.control("POST", "faults", {"webhooks": {"reorder": 1.0}})
    before = len(receiver.received)
    for name in ("one", "two"):
        client.as_user("a", "POST", f"{repo.path}/issues/{issue['number']}/labels", json=[name])
    assert client.drain() == 0
    labels = [
        w.payload["label"]["name"]
        for w in receiver.received[before:]
        if w.payload.get("action") == "labeled"
    ]
    assert labels == ["two", "one"]
