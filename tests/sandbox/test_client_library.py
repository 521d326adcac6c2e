"""A GitHub client library from PyPI, githubkit, drives the sandbox as an App and as an agent.

No line of githubkit was written for the sandbox: it builds each request from GitHub's OpenAPI
description and parses every answer into its pydantic models, so a route the sandbox lacks, a
status it gets wrong or a field it shapes differently fails here as it would fail an agent
author. The App starts up as Apps do (its JWT, ``GET /app``, its installations, an
installation token, the bot's account, the webhook configuration) and hands a stage to its
agent (an issue labelled ``status:starting``); the agent, a sandbox user, starts up
(``GET /user``), polls for its stage with conditional requests, moves its labels
``starting → running`` in one request and ``running → completed`` in two, comments, and
finishes. Both of githubkit's REST API versions run the loop.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ghsandbox.testing import RunningSandbox, SandboxClient, WebhookReceiver
from tests.prerequisites import missing

try:
    import githubkit
    from githubkit.cache import MemCacheStrategy
    from githubkit.exception import RequestFailed
except ImportError:  # the dev extras are not installed
    githubkit = None

OWNER, REPO = "demo", "agents"
AGENT = "planner-bot"
STAGE_LABELS = ["agent:planner", "comp:titanic"]
API_VERSIONS = ["2022-11-28", "2026-03-10"]  # githubkit's default is the newer
POLL_S = 0.05
WAIT_S = 20.0


@pytest.fixture(autouse=True)
def _githubkit() -> None:
    if githubkit is None:
        missing("githubkit is not installed: pip install -e '.[dev]'")


@pytest.fixture
def installation(client: SandboxClient) -> int:
    return int(client.create_repo(OWNER, REPO)["installation_id"])


def app_client(sandbox: RunningSandbox) -> Any:
    """The App, authenticated as GitHub Apps are: githubkit signs its JWT from the key."""
    auth = githubkit.AppAuthStrategy(sandbox.config.app_id, sandbox.config.private_key_pem)
    return client_for(sandbox, auth)


def user_client(sandbox: RunningSandbox, login: str) -> Any:
    """A sandbox user: its token is ``user:<login>``, sent as ``Authorization: token …``."""
    return client_for(sandbox, githubkit.TokenAuthStrategy(f"user:{login}"))


def client_for(sandbox: RunningSandbox, auth: Any) -> Any:
    """githubkit at the sandbox; its HTTP cache is its own (githubkit's default is shared by
    the process, and a later test's sandbox may listen on an earlier one's port)."""
    return githubkit.GitHub(
        auth, base_url=sandbox.url, auto_retry=False, cache_strategy=MemCacheStrategy()
    )


# The agent ---------------------------------------------------------------------------------


def run_agent(github: Any, version: str, *, stage: str) -> int:
    """One agent's whole loop, as an author would write it with githubkit: who am I, wait for
    my stage, start, work, report, finish. Returns the issue it worked on."""
    rest = github.rest(version)
    me = rest.users.get_authenticated().parsed_data.login
    issue = wait_for_stage(github, version, stage=stage)
    others = [label.name for label in issue.labels if not label.name.startswith("status:")]
    rest.issues.set_labels(OWNER, REPO, issue.number, data=[*others, "status:running"])
    rest.issues.create_comment(OWNER, REPO, issue.number, body=f"@{me} is on it.")
    rest.issues.add_labels(OWNER, REPO, issue.number, data=["status:completed"])
    rest.issues.remove_label(OWNER, REPO, issue.number, "status:running")
    rest.issues.create_comment(OWNER, REPO, issue.number, body="Done: the plan is in this issue.")
    return int(issue.number)


def wait_for_stage(github: Any, version: str, *, stage: str) -> Any:
    """The open issue of ``stage`` that shows ``status:starting``; every poll after the first
    is a conditional request (githubkit's HTTP cache), answered 304 while nothing changed."""
    rest = github.rest(version)
    wanted = f"agent:{stage},status:starting"
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = list(github.rest.paginate(
            rest.issues.list_for_repo, owner=OWNER, repo=REPO, labels=wanted, state="open"
        ))
        if found:
            return found[0]
        time.sleep(POLL_S)
    raise AssertionError(f"no {wanted} issue within {WAIT_S}s")


# The tests ---------------------------------------------------------------------------------


def test_an_app_starts_up_mints_a_token_and_reads_its_delivery_log(
    sandbox: RunningSandbox, client: SandboxClient, receiver: WebhookReceiver, installation: int
) -> None:
    app = app_client(sandbox)
    assert app.rest.apps.get_authenticated().parsed_data.slug == sandbox.config.app_slug
    assert [i.id for i in app.rest.apps.list_installations().parsed_data] == [installation]
    assert app.rest.apps.get_repo_installation(OWNER, REPO).parsed_data.id == installation
    assert app.rest.apps.get_org_installation(OWNER).parsed_data.id == installation
    assert app.rest.apps.get_webhook_config_for_app().parsed_data.url == receiver.url
    bot = app.with_auth(app.auth.as_installation(installation))
    listed = bot.rest.apps.list_repos_accessible_to_installation().parsed_data
    assert [r.full_name for r in listed.repositories] == [f"{OWNER}/{REPO}"]
    bot_login = f"{sandbox.config.app_slug}[bot]"
    account = bot.rest.users.get_by_username(bot_login).parsed_data
    issue = bot.rest.issues.create(OWNER, REPO, title="[titanic] planner: plan",
                                   labels=STAGE_LABELS).parsed_data
    assert (issue.user.login, issue.user.id) == (bot_login, account.id)
    assert issue.performed_via_github_app.slug == sandbox.config.app_slug
    with pytest.raises(RequestFailed) as refused:
        bot.rest.users.get_authenticated()
    assert refused.value.response.status_code == 403
    assert client.drain() == 0
    deliveries = app.rest.apps.list_webhook_deliveries().parsed_data
    assert {(d.event, d.action) for d in deliveries} >= {("issues", "opened")}


def test_an_installation_token_revoked_through_the_library_stops_working(
    sandbox: RunningSandbox, installation: int
) -> None:
    app = app_client(sandbox)
    token = app.rest.apps.create_installation_access_token(installation).parsed_data.token
    holder = client_for(sandbox, githubkit.TokenAuthStrategy(token))
    assert holder.rest.repos.get(OWNER, REPO).parsed_data.full_name == f"{OWNER}/{REPO}"
    assert holder.rest.apps.revoke_installation_access_token().status_code == 204
    with pytest.raises(RequestFailed) as refused:
        holder.rest.repos.get(OWNER, REPO)
    assert refused.value.response.status_code == 401


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1) as running:
        yield running


@pytest.mark.parametrize("version", API_VERSIONS)
def test_an_agent_takes_its_stage_moves_its_labels_comments_and_finishes(
    sandbox: RunningSandbox,
    client: SandboxClient,
    receiver: WebhookReceiver,
    installation: int,
    pool: ThreadPoolExecutor,
    version: str,
) -> None:
    app = app_client(sandbox)
    bot = app.with_auth(app.auth.as_installation(installation))
    idle = bot.rest(version).issues.create(OWNER, REPO, title="[house] planner: plan",
                                           labels=["agent:planner", "comp:house"]).parsed_data
    agent = pool.submit(run_agent, user_client(sandbox, AGENT), version, stage="planner")
    wait_for_polls(client, count=2)
    stage = bot.rest(version).issues.create(
        OWNER, REPO, title="[titanic] planner: plan the work",
        labels=[*STAGE_LABELS, "status:starting"],
    ).parsed_data
    assert agent.result(timeout=WAIT_S) == stage.number

    maintainer = user_client(sandbox, "maintainer")  # githubkit's namespaces need it alive
    reader = maintainer.rest(version)
    finished = reader.issues.get(OWNER, REPO, stage.number).parsed_data
    assert sorted(label.name for label in finished.labels) == [*STAGE_LABELS, "status:completed"]
    timeline = reader.issues.list_events(OWNER, REPO, stage.number).parsed_data
    app_bot = f"{sandbox.config.app_slug}[bot]"
    assert [(e.event, e.label.name, e.actor.login) for e in timeline] == [
        ("labeled", "agent:planner", app_bot),
        ("labeled", "comp:titanic", app_bot),
        ("labeled", "status:starting", app_bot),
        ("unlabeled", "status:starting", AGENT),
        ("labeled", "status:running", AGENT),
        ("labeled", "status:completed", AGENT),
        ("unlabeled", "status:running", AGENT),
    ]
    comments = reader.issues.list_comments(OWNER, REPO, stage.number).parsed_data
    assert [(c.user.login, c.body) for c in comments] == [
        (AGENT, f"@{AGENT} is on it."),
        (AGENT, "Done: the plan is in this issue."),
    ]
    assert reader.issues.get(OWNER, REPO, idle.number).parsed_data.labels == idle.labels
    assert_webhooks_name_the_agent(client, receiver, stage.number)
    assert_polls_were_conditional(client)


def wait_for_polls(client: SandboxClient, *, count: int) -> None:
    """Until the agent has polled ``count`` times (so it is waiting when its stage starts)."""
    deadline = time.monotonic() + WAIT_S
    while len(agent_calls(client, "GET", f"/repos/{OWNER}/{REPO}/issues")) < count:
        assert time.monotonic() < deadline, "the agent never polled"
        time.sleep(POLL_S)


def agent_calls(client: SandboxClient, method: str, path: str) -> list[dict[str, Any]]:
    return [
        r for r in client.control("GET", "requests")
        if (r["actor"], r["method"], r["path"]) == (AGENT, method, path)
    ]


def assert_webhooks_name_the_agent(
    client: SandboxClient, receiver: WebhookReceiver, number: int
) -> None:
    assert client.drain() == 0
    moves = [
        (w.payload["action"], w.payload.get("label", {}).get("name"))
        for w in receiver.received
        if w.event == "issues" and w.payload["issue"]["number"] == number
        and w.payload["sender"]["login"] == AGENT
    ]
    assert moves == [
        ("unlabeled", "status:starting"),
        ("labeled", "status:running"),
        ("labeled", "status:completed"),
        ("unlabeled", "status:running"),
    ]
    commented = [w for w in receiver.received if w.event == "issue_comment"]
    assert [w.payload["comment"]["user"]["login"] for w in commented] == [AGENT, AGENT]


def assert_polls_were_conditional(client: SandboxClient) -> None:
    """The agent's every call succeeded, and its repeated polls were free 304s."""
    mine = [r for r in client.control("GET", "requests") if r["actor"] == AGENT]
    assert all(r["status"] < 400 for r in mine), mine
    polls = agent_calls(client, "GET", f"/repos/{OWNER}/{REPO}/issues")
    assert polls[0]["status"] == 200 and polls[-1]["status"] == 200
    assert {r["status"] for r in polls[1:-1]} == {304}
