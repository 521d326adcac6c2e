"""Installation deliveries on the real stack: a malformed repository list is a rejection.

Issue 11, item 8: the ``installation`` handlers read their repository lists themselves, so
bad input there is found inside a handler, after routing. It is audited as rejected and the
job succeeds: not retried, nothing in RQ's failed registry.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import orjson
import pytest
import redis
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry

from reactor.store import keys
from reactor.store.audit import AuditRecord, Outcome
from tests.conftest import Stack, webhook_headers

SENDER = {"login": "octocat", "id": 1, "type": "User"}
SETTLED = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.SCHEDULED, JobStatus.STOPPED)


def deliver(stack: Stack, event: str, payload: dict[str, Any]) -> str:
    """Send ``payload`` signed as GitHub would; the delivery's GUID."""
    body, guid = orjson.dumps(payload), str(uuid.uuid4())
    headers = webhook_headers(body, stack.sandbox.config.webhook_secret, event=event, guid=guid)
    assert httpx.post(stack.webhook_url, content=body, headers=headers).status_code == 202
    return guid


def settled_job(stack: Stack, guid: str, *, timeout: float = 30) -> Job:
    """The delivery's RQ job once a worker is done with it (finished, failed or retrying)."""
    connection = redis.Redis.from_url(stack.redis_url)
    deadline = time.monotonic() + timeout
    job = Job.fetch(guid, connection=connection)
    while job.get_status() not in SETTLED:
        assert time.monotonic() < deadline, f"job {guid} still {job.get_status()}"
        time.sleep(0.05)
    return job


def handled_by(stack: Stack, guid: str) -> Job:
    """The job that handled the delivery: its own, or — when its installation was busy (a
    backlog, e.g. from the tests beside it) — the turn job it left the delivery to."""
    job = settled_job(stack, guid)
    said = str(job.return_value())
    turn = said.removeprefix("waiting for a turn as ")
    return job if turn == said else settled_job(stack, turn)


def assert_rejected(stack: Stack, guid: str, field: str) -> AuditRecord:
    job = handled_by(stack, guid)
    assert job.get_status() == JobStatus.FINISHED, stack.log_tails()
    assert job.return_value() == Outcome.REJECTED.value
    connection = redis.Redis.from_url(stack.redis_url)
    assert guid not in FailedJobRegistry(keys.QUEUE_EVENTS, connection=connection).get_job_ids()
    assert ScheduledJobRegistry(keys.QUEUE_EVENTS, connection=connection).get_job_ids() == []
    [record] = [r for r in stack.audit() if r.delivery == guid]
    assert record.outcome == Outcome.REJECTED and repr(field) in record.detail
    return record


@pytest.fixture
def installation_id(stack: Stack) -> int:
    with stack.sandbox.client() as sandbox:
        return int(sandbox.create_repo("acme", "widgets")["installation_id"])


@pytest.mark.parametrize("repositories", ["abc", 7, {"full_name": "acme/widgets"},
                                          [{"id": 1, "full_name": "no-slash"}]])
def test_an_installation_with_a_malformed_repository_list_is_rejected(
    stack: Stack, installation_id: int, repositories: object
) -> None:
    guid = deliver(stack, "installation", {
        "action": "created", "installation": {"id": installation_id},
        "repositories": repositories, "sender": SENDER,
    })
    record = assert_rejected(stack, guid, "repositories")
    assert (record.event, record.action, record.installation) == (
        "installation", "created", str(installation_id),
    )


@pytest.mark.parametrize("repo_id", ["abc", "12", 1.5, True, None])
def test_added_repositories_with_a_non_integer_id_are_rejected(
    stack: Stack, installation_id: int, repo_id: object
) -> None:
    guid = deliver(stack, "installation_repositories", {
        "action": "added", "installation": {"id": installation_id},
        "repositories_added": [{"id": repo_id, "full_name": "acme/widgets"}],
        "sender": SENDER,
    })
    assert_rejected(stack, guid, "repositories_added")


def test_well_formed_added_repositories_still_get_their_labels(
    stack: Stack, installation_id: int
) -> None:
    with stack.sandbox.client() as sandbox:
        repo = sandbox.create_repo("acme", "gadgets")["repository"]
    guid = deliver(stack, "installation_repositories", {
        "action": "added", "installation": {"id": installation_id},
        "repositories_added": [{"id": repo["id"], "full_name": repo["full_name"]}],
        "sender": SENDER,
    })
    record = stack.wait_for_audit(lambda r: r.delivery == guid)
    assert record.outcome == Outcome.APPLIED and record.detail.startswith("acme/gadgets: ")
    assert settled_job(stack, guid).get_status() == JobStatus.FINISHED
