"""GitHub → web → Redis → RQ worker process → handler → audit, with every part real."""

from __future__ import annotations

import time
import uuid

import httpx
import orjson
import redis
from rq.registry import FailedJobRegistry

from reactor.store import keys
from reactor.store.audit import Outcome
from tests.conftest import Stack, webhook_headers
from tests.octokit import webhook_example, webhook_examples


def test_a_signed_published_issues_labeled_delivery_is_processed_and_audited(stack: Stack) -> None:
    payload = webhook_example("issues", "labeled")
    body = orjson.dumps(payload)
    guid = str(uuid.uuid4())
    headers = webhook_headers(body, stack.sandbox.config.webhook_secret, guid=guid)
    response = httpx.post(stack.webhook_url, content=body, headers=headers)
    assert response.status_code == 202

    record = stack.wait_for_audit(lambda r: r.delivery == guid)
    assert (record.event, record.action, record.outcome) == ("issues", "labeled", "observed")
    assert record.repo == payload["repository"]["full_name"]
    assert record.issue == str(payload["issue"]["number"])
    assert record.actor == payload["sender"]["login"]
    assert httpx.post(stack.webhook_url, content=body, headers=headers).status_code == 200


def test_sandbox_changes_reach_the_workers_and_unexpected_app_token_writes_are_judged(
    stack: Stack,
) -> None:
    """R10 sets aside only the writes the reactor recorded as expected just before making
    them; an agent using the App's token is judged like anyone (the scenarios show the
    reactor's own hand-off echoes set aside)."""
    with stack.sandbox.client() as sandbox:
        repo = sandbox.create_repo("acme", "agents")
        issue = {"title": "[titanic] planner: plan", "labels": ["comp:titanic"]}
        created = sandbox.as_user("alice", "POST", "/repos/acme/agents/issues", json=issue)
        number = created.json()["number"]
        opened = stack.wait_for_audit(lambda r: r.event == "issues" and r.action == "opened")
        assert (opened.actor, opened.issue, opened.outcome) == ("alice", str(number), "accepted")

        token = sandbox.installation_token(repo["installation_id"])
        added = sandbox.http.post(f"/repos/acme/agents/issues/{number}/labels",
                                  json={"labels": ["status:starting"]},
                                  headers={"Authorization": f"token {token}"})
        assert added.status_code == 200
    judged = stack.wait_for_audit(
        lambda r: r.event == "issues" and r.label == "status:starting")
    assert judged.outcome == Outcome.ACCEPTED and judged.rule == ""
    assert judged.actor == f"{stack.sandbox.config.app_slug}[bot]"


def test_every_published_webhook_example_is_accepted_and_handled_or_ignored(stack: Stack) -> None:
    """SPEC §8: each of GitHub's published examples, signed, goes through without an error."""
    secret = stack.sandbox.config.webhook_secret
    sent: dict[str, str] = {}
    with httpx.Client() as client:
        for event, payload in webhook_examples():
            body, guid = orjson.dumps(payload), str(uuid.uuid4())
            response = client.post(stack.webhook_url, content=body,
                                   headers=webhook_headers(body, secret, event=event, guid=guid))
            assert response.status_code == (200 if event == "ping" else 202), (event, response.text)
            if event != "ping":
                sent[guid] = event
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        handled = {r.delivery: r for r in stack.audit() if r.delivery in sent}
        if len(handled) == len(sent):
            break
        time.sleep(0.2)
    assert len(handled) == len(sent)
    outcomes = {r.outcome for r in handled.values()}
    assert outcomes <= {"observed", "ignored", "rejected", "applied"}, outcomes
    # Applied: a push re-reads config; an uninstall or a repository removed forgets its data.
    applied = {g: r for g, r in handled.items() if r.outcome == "applied"}
    assert {sent[g] for g in applied} <= {"push", "installation", "installation_repositories"}
    assert all(r.detail == "config will be read again" or r.detail.startswith("forgot ")
               for r in applied.values()), applied
    # The examples' installations do not exist on this GitHub: acting for them is refused
    # (a 404 for their token), audited once, and not retried.
    refused = [r for r in handled.values() if r.outcome == "rejected"]
    assert all("access_tokens: Not Found" in r.detail for r in refused), refused
    assert {sent[g] for g, r in handled.items() if r.outcome == "observed"} >= {"issues", "label"}
    failed = FailedJobRegistry(keys.QUEUE_EVENTS, connection=redis.Redis.from_url(stack.redis_url))
    assert failed.get_job_ids() == []


def test_a_signed_payload_missing_what_the_reactor_reads_is_audited_as_rejected(
    stack: Stack,
) -> None:
    body, guid = orjson.dumps({"action": "labeled", "issue": {"number": "seven"}}), "bad-1"
    headers = webhook_headers(body, stack.sandbox.config.webhook_secret, guid=guid)
    assert httpx.post(stack.webhook_url, content=body, headers=headers).status_code == 202
    record = stack.wait_for_audit(lambda r: r.delivery == guid)
    assert record.outcome == "rejected" and "issue.number" in record.detail
    good = orjson.dumps(webhook_example("issues", "opened"))
    headers = webhook_headers(good, stack.sandbox.config.webhook_secret, guid="good-1")
    assert httpx.post(stack.webhook_url, content=good, headers=headers).status_code == 202
    assert stack.wait_for_audit(lambda r: r.delivery == "good-1").outcome == "observed"
