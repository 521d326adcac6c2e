"""The searches a retry makes after GitHub answered 5xx trust only the App's own writes: anyone
can paste a hidden marker into an issue or a comment of theirs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import httpx
import pytest
from gidgethub.httpx import GitHubAPI

from ghsandbox.testing import RunningSandbox, SandboxClient, run_sandbox
from reactor.core.markers import comment_marker, creation_marker
from reactor.core.view import Repo
from reactor.shell import reads

BOT = "issue-safety-reactor[bot]"
REPO_PATH = "/repos/acme/widgets"
T = TypeVar("T")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with run_sandbox() as running:
        yield running


@pytest.fixture
def client(sandbox: RunningSandbox) -> Iterator[SandboxClient]:
    with sandbox.client() as client:
        client.control("POST", "reset")
        yield client


def _run(sandbox: RunningSandbox, search: Callable[[GitHubAPI, Repo], Awaitable[T]]) -> T:
    async def run() -> T:
        async with httpx.AsyncClient() as http:
            gh = GitHubAPI(http, "test", oauth_token="user:reader", base_url=sandbox.url)
            return await search(gh, Repo("acme", "widgets", 1))
    return asyncio.run(run())


def test_a_comment_marker_counts_only_in_the_apps_comment(
    sandbox: RunningSandbox, client: SandboxClient
) -> None:
    installation = client.create_repo("acme", "widgets")["installation_id"]
    number = client.as_user("alice", "POST", f"{REPO_PATH}/issues",
                            json={"title": "x"}).json()["number"]
    marker = comment_marker("R2", number, "d-1")
    client.as_user("mallory", "POST", f"{REPO_PATH}/issues/{number}/comments",
                   json={"body": f"hi {marker}"})
    def found(gh: GitHubAPI, repo: Repo) -> Awaitable[bool]:
        return reads.has_comment(gh, repo, number, marker, author=BOT)

    assert _run(sandbox, found) is False

    token = client.installation_token(installation)
    client.as_token(token, "POST", f"{REPO_PATH}/issues/{number}/comments",
                    json={"body": f"R2 {marker}"})
    assert _run(sandbox, found) is True


def test_a_creation_marker_counts_only_on_the_apps_issue(
    sandbox: RunningSandbox, client: SandboxClient
) -> None:
    installation = client.create_repo("acme", "widgets")["installation_id"]
    body = f"spoof {creation_marker('k-1')}"
    client.as_user("mallory", "POST", f"{REPO_PATH}/issues",
                   json={"title": "[t] analyzer: x", "body": body, "labels": ["comp:t"]})
    def found(gh: GitHubAPI, repo: Repo) -> Awaitable[int | None]:
        return reads.find_created(gh, repo, ["comp:t"], "k-1", author=BOT)

    assert _run(sandbox, found) is None

    token = client.installation_token(installation)
    genuine = client.as_token(token, "POST", f"{REPO_PATH}/issues", json={
        "title": "[t] analyzer: x", "body": body, "labels": ["comp:t"]}).json()["number"]
    assert _run(sandbox, found) == genuine


def test_a_label_write_counts_as_made_though_an_agent_moved_on_from_it_at_once(
    sandbox: RunningSandbox, client: SandboxClient
) -> None:
    """The App's ``status:starting`` was written (GitHub answered 502) and the agent took it
    off at once: the timeline's latest event on the label is the agent's, yet the write was
    made since it began, so it is done — writing it again would undo the agent's move. An
    older write of the App's is not taken for this one, nor anyone else's write."""
    installation = client.create_repo("acme", "widgets")["installation_id"]
    number = client.as_user("alice", "POST", f"{REPO_PATH}/issues",
                            json={"title": "x"}).json()["number"]
    token = client.installation_token(installation)
    began = datetime.now(UTC)
    client.as_token(token, "POST", f"{REPO_PATH}/issues/{number}/labels",
                    json={"labels": ["status:starting"]})
    client.as_user("alice", "DELETE", f"{REPO_PATH}/issues/{number}/labels/status:starting")

    def written(since: datetime | None) -> Callable[[GitHubAPI, Repo], Awaitable[bool]]:
        return lambda gh, repo: reads.label_written(gh, repo, number, "status:starting",
                                                    "labeled", author=BOT, since=since)

    assert _run(sandbox, written(began)) is True
    assert _run(sandbox, written(None)) is False  # the latest event alone: the agent's
    assert _run(sandbox, written(began + timedelta(seconds=5))) is False  # an older write
    client.as_user("alice", "POST", f"{REPO_PATH}/issues/{number}/labels",
                   json={"labels": ["status:running"]})
    assert _run(sandbox, lambda gh, repo: reads.label_written(
        gh, repo, number, "status:running", "labeled", author=BOT, since=began)) is False
