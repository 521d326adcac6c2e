"""Installation deliveries on the real stack: a malformed repository list is a rejection;
an uninstalled installation, and a repository taken from one, are forgotten.

Issue 11, item 8: the ``installation`` handlers read their repository lists themselves, so
bad input there is found inside a handler, after routing. It is audited as rejected and the
job succeeds: not retried, nothing in RQ's failed registry.

Issue 17, item 8: ``installation.deleted`` (and ``installation_repositories.removed``, for the
repositories removed) deletes every key the reactor keeps for those repositories and for the
uninstalled installation, and nothing of any other tenant; the audit log is kept.
"""

from __future__ import annotations

import re
import string
import time
import uuid
from collections import defaultdict
from typing import Any

import httpx
import orjson
import pytest
import redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from reactor.store import keys
from reactor.store.audit import AuditRecord, Outcome
from tests.conftest import Stack, webhook_headers
from tests.octokit import webhook_example

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
    backlog, e.g. from the tests beside it) — the job it left the delivery to, which runs
    once one of the installation's slots is free (reactor/entrypoints/jobs.py)."""
    job = settled_job(stack, guid)
    said = str(job.return_value())
    waiting = said.removeprefix("waiting for a slot as ")
    return job if waiting == said else settled_job(stack, waiting)


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


# -- forgetting a tenant (issue 17, item 8) ----------------------------------------------------

OWNERS = ("repo_id", "scope", "installation_id")


def templates() -> list[str]:
    """Every ``reactor:`` key template that names a repository, a scope or an installation
    anywhere in it (the code forgets those whose first field does: a template naming one
    later would be missed, and fail here)."""
    return [t for t in vars(keys).values() if isinstance(t, str) and t.startswith(keys.PREFIX)
            and any(name in OWNERS for _, name, _, _ in string.Formatter().parse(t) if name)]


def seed(client: redis.Redis, repo_id: int, installation_id: int, *, exact: bool) -> set[str]:
    """A key of every such template for the repository and its installation, where none is
    (``exact``: also the templates that are the owner's id alone — the config cache, the
    token… — which would break a tenant that is still in use)."""
    made = set()
    for template in templates():
        named = [name for _, name, _, _ in string.Formatter().parse(template) if name]
        if not exact and named[-1] in ("repo_id", "installation_id"):
            continue
        fields: defaultdict[str, str] = defaultdict(lambda: "7", repo_id=str(repo_id),
                                                   scope=f"{repo_id}:comp:seeded",
                                                   installation_id=str(installation_id))
        key = template.format_map(fields)
        client.set(key, "seeded", nx=True)
        made.add(key)
    client.hsetnx(keys.RATE_REMAINING, str(installation_id), 4999)
    return made


def naming(client: redis.Redis, *ids: int) -> set[str]:
    """The ``reactor:`` keys with one of ``ids`` as a ``:``-separated part."""
    parts = "|".join(str(i) for i in ids)
    found = (k.decode() for k in client.scan_iter(match=f"{keys.PREFIX}*", count=1000))
    return {k for k in found if re.search(rf"(^|:)({parts})(:|$)", k)}


def fleeting(found: set[str]) -> set[str]:
    """The keys among ``found`` that expire by themselves within seconds, whoever forgets
    what: a turn's lease (15 s) and its read pacing (0.75 s)."""
    prefixes = (keys.LEASE.format(scope=""), keys.PACE.format(scope=""))
    return {k for k in found if k.startswith(prefixes)}


def agent_issue(stack: Stack, repo: dict[str, Any]) -> None:
    """An agent issue opened in ``repo``; returns once the reactor remembers it."""
    with stack.sandbox.client() as sandbox:
        made = sandbox.as_user("planner-bot", "POST", f"/repos/{repo['full_name']}/issues", json={
            "title": "[titanic] planner: win", "labels": ["agent:planner", "comp:titanic"]})
        assert made.status_code == 201, made.text
    connection = redis.Redis.from_url(stack.redis_url)
    deadline = time.monotonic() + 30
    while not connection.exists(keys.issue(repo["id"], made.json()["number"])):
        assert time.monotonic() < deadline, stack.log_tails()
        time.sleep(0.05)


def quiet(stack: Stack, *, polls: int = 5) -> None:
    """Wait until every webhook was delivered and no job is queued or running (the sweep's
    included), for a few polls in a row: what a tenant keeps in Redis then stays as it is."""
    connection = redis.Redis.from_url(stack.redis_url)
    queues = [Queue(name, connection=connection) for name in (keys.QUEUE_EVENTS, keys.QUEUE_SWEEP)]
    started = [StartedJobRegistry(queue=queue) for queue in queues]
    deadline, still = time.monotonic() + 30, 0
    with stack.sandbox.client() as sandbox:
        while still < polls:
            assert time.monotonic() < deadline, stack.log_tails()
            busy = sandbox.drain() or any(q.count for q in queues) or any(
                r.count for r in started)  # the sweep's too: it keeps per-tenant markers
            still = 0 if busy else still + 1
            time.sleep(0.05)


def real_shaped(event: str, action: str, installation_id: int, field: str,
                repos: list[dict[str, Any]]) -> dict[str, Any]:
    """GitHub's published example of the delivery, for this installation and repositories."""
    payload = webhook_example(event, action)
    listed = [{**payload[field][0], "id": r["id"], "name": r["name"],
               "full_name": r["full_name"]} for r in repos]
    return {**payload, "installation": {**payload["installation"], "id": installation_id},
            field: listed}


def test_an_uninstalled_installation_is_forgotten_and_other_tenants_are_not(
    stack: Stack
) -> None:
    with stack.sandbox.client() as sandbox:
        gone, kept = sandbox.create_repo("acme", "widgets"), sandbox.create_repo("rival", "work")
    for tenant in (gone, kept):
        agent_issue(stack, tenant["repository"])
    quiet(stack)
    client = redis.Redis.from_url(stack.redis_url)
    gone_ids = (gone["repository"]["id"], gone["installation_id"])
    kept_ids = (kept["repository"]["id"], kept["installation_id"])
    seed(client, *gone_ids, exact=True)
    kept_keys = seed(client, *kept_ids, exact=False) | naming(client, *kept_ids)
    assert {keys.issue(gone_ids[0], 1), keys.installation_token(gone_ids[1])} <= naming(
        client, *gone_ids)
    guid = deliver(stack, "installation", real_shaped(
        "installation", "deleted", gone["installation_id"], "repositories",
        [gone["repository"]]))
    record = stack.wait_for_audit(lambda r: r.delivery == guid)
    assert record.outcome == Outcome.APPLIED and "forgot acme/widgets" in record.detail
    assert naming(client, *gone_ids) == set()
    assert not client.hexists(keys.RATE_REMAINING, str(gone["installation_id"]))
    assert kept_keys - fleeting(kept_keys) <= naming(client, *kept_ids)
    assert client.hexists(keys.RATE_REMAINING, str(kept["installation_id"]))
    assert any(r.repo == "acme/widgets" for r in stack.audit())  # the audit log stays


def test_a_repository_taken_from_an_installation_is_forgotten_and_the_rest_kept(
    stack: Stack
) -> None:
    with stack.sandbox.client() as sandbox:
        taken = sandbox.create_repo("acme", "widgets")
        staying = sandbox.create_repo("acme", "gears")
    installation = taken["installation_id"]
    assert staying["installation_id"] == installation
    for tenant in (taken, staying):
        agent_issue(stack, tenant["repository"])
    quiet(stack)
    client = redis.Redis.from_url(stack.redis_url)
    taken_id, staying_id = taken["repository"]["id"], staying["repository"]["id"]
    seed(client, taken_id, installation, exact=False)
    before = naming(client, staying_id)
    guid = deliver(stack, "installation_repositories", real_shaped(
        "installation_repositories", "removed", installation, "repositories_removed",
        [taken["repository"]]))
    record = stack.wait_for_audit(lambda r: r.delivery == guid)
    assert record.outcome == Outcome.APPLIED and "forgot acme/widgets:" in record.detail
    assert naming(client, taken_id) == set()
    assert before - fleeting(before) <= naming(client, staying_id)
    assert client.exists(keys.installation_token(installation))  # the installation stays
    cached = keys.ETAG.format(installation_id=installation, digest="*")
    assert list(client.scan_iter(match=cached)) == []  # its answers may hold the issues taken
