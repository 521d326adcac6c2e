"""The searches a retry makes after GitHub answered 5xx trust only the App's own writes: anyone
can paste a hidden marker into an issue or a comment of theirs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
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
