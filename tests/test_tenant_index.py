"""An uninstall whose payload lists no repositories still forgets them, and the dashboard shows
nothing of a forgotten tenant (issue 17, finding 8).

GitHub marks ``installation.deleted``'s ``repositories`` optional. The reactor keeps an index
of the repositories it has seen with each installation (when the App is given them, when the
sweep lists them, when a worker first runs a turn of one) and forgets those. A repository
seen with another installation since (moved) is left alone. On the real stack: the sandbox
installs the App (``installation.created``), an agent issue makes a turn run, and the
uninstall is GitHub's published example with the list taken out.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import redis
import redis.asyncio

from reactor.core.view import Repo
from reactor.ops.dashboard.page import REFRESH_S
from reactor.store import keys, tenants
from reactor.store.audit import Outcome
from tests.conftest import Stack
from tests.octokit import webhook_example
from tests.scenarios.conftest import wait_until
from tests.test_installation_payloads import agent_issue, deliver, fleeting, naming, quiet


def uninstalled_without_a_list(installation_id: int) -> dict[str, object]:
    payload = webhook_example("installation", "deleted")
    return {**{k: v for k, v in payload.items() if k != "repositories"},
            "installation": {**payload["installation"], "id": installation_id}}


def test_an_uninstall_that_lists_no_repositories_forgets_those_seen_with_it(
    stack: Stack,
) -> None:
    with stack.sandbox.client() as sandbox:
        gone, also = sandbox.create_repo("acme", "widgets"), sandbox.create_repo("acme", "gears")
        kept = sandbox.create_repo("rival", "work")
    assert gone["installation_id"] == also["installation_id"] != kept["installation_id"]
    for tenant in (gone, kept):
        agent_issue(stack, tenant["repository"])
    quiet(stack)
    client = redis.Redis.from_url(stack.redis_url)
    installation = gone["installation_id"]
    gone_ids = {gone["repository"]["id"], also["repository"]["id"], installation}
    kept_ids = (kept["repository"]["id"], kept["installation_id"])
    client.set(keys.config_good(also["repository"]["id"]), "stages: [planner]\n")
    # A repository seen with this installation once, and with the rival's since (it moved).
    moved = Repo("rival", "moved", 777)
    asyncio.run(_seen(stack.redis_url, installation, moved, then=kept["installation_id"]))
    client.set(keys.config_good(moved.id), "stages: [planner]\n")
    kept_keys = naming(client, *kept_ids, moved.id)
    assert keys.issue(gone["repository"]["id"], 1) in naming(client, *gone_ids)

    guid = deliver(stack, "installation", uninstalled_without_a_list(installation))
    record = stack.wait_for_audit(lambda r: r.delivery == guid)
    assert record.outcome == Outcome.APPLIED, record
    assert "forgot acme/widgets, acme/gears and the installation" in record.detail, record
    assert naming(client, *gone_ids) == set()
    assert kept_keys - fleeting(kept_keys) <= naming(client, *kept_ids, moved.id)
    page = httpx.get(f"{stack.web_url}/", timeout=30).text
    assert "rival/work" in page and "acme/widgets" not in page and "acme/gears" not in page
    assert any(r.repo == "acme/widgets" for r in stack.audit())  # the audit log keeps them


async def _seen(redis_url: str, installation_id: int, repo: Repo, *, then: int) -> None:
    """``repo`` indexed with ``installation_id``, then seen with installation ``then``."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await tenants.index(client, installation_id, [repo])
        await tenants.index(client, then, [repo])
    finally:
        await client.aclose()


def test_a_repository_given_back_is_shown_again(stack: Stack) -> None:
    with stack.sandbox.client() as sandbox:
        created = sandbox.create_repo("acme", "widgets")
    repo = created["repository"]
    agent_issue(stack, repo)
    quiet(stack)
    asyncio.run(_forget(stack.redis_url, created["installation_id"],
                        Repo("acme", "widgets", repo["id"])))
    assert "acme/widgets" not in httpx.get(f"{stack.web_url}/", timeout=30).text
    guid = deliver(stack, "installation_repositories", {
        "action": "added", "installation": {"id": created["installation_id"]},
        "repositories_added": [{"id": repo["id"], "full_name": "acme/widgets"}],
        "sender": {"login": "octocat", "id": 1, "type": "User"}})
    stack.wait_for_audit(lambda r: r.delivery == guid)
    client = redis.Redis.from_url(stack.redis_url)
    assert client.zcard(keys.FORGOTTEN_REPOS) == 0
    wait_until(lambda: "acme/widgets" in httpx.get(f"{stack.web_url}/", timeout=30).text,
               timeout=3 * REFRESH_S, what="acme/widgets on the dashboard again")


async def _forget(redis_url: str, installation_id: int, repo: Repo) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await tenants.forget_repositories(client, installation_id, [repo],
                                          now=datetime.now(UTC))
    finally:
        await client.aclose()


async def test_a_process_writes_a_repository_it_runs_turns_of_into_the_index_once_a_day(
    redis_url: str,
) -> None:
    """The turns' part of the index costs the hot path nothing: a process writes each
    repository once per ``NOTE_EVERY_S``, not once per delivery."""
    client = redis.asyncio.Redis.from_url(redis_url)
    repo = Repo("acme", "widgets", 99)

    async def writes() -> int:
        stats = await client.info("commandstats")
        return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))
                   for name in ("hset", "set", "expire"))

    try:
        await tenants.note(client, 9, repo)
        before = await writes()
        for _ in range(100):
            await tenants.note(client, 9, repo)
        assert await writes() == before
        assert await tenants.indexed(client, 9) == (repo,)
        await tenants.note(client, 10, repo)  # seen with another installation: it moved
        assert await tenants.indexed(client, 9) == ()
    finally:
        await client.aclose()
