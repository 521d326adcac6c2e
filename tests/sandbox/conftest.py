"""Fixtures for the sandbox tests: a fresh sandbox per test, with a webhook receiver attached.

The App key is generated once per session (RSA generation is the slow part); every test gets
its own server on a free loopback port, so tests never share state.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import jwt
import pytest

from ghsandbox.config import SandboxConfig
from ghsandbox.testing import (
    RunningSandbox,
    SandboxClient,
    WebhookReceiver,
    run_receiver,
    run_sandbox,
)


@pytest.fixture(scope="session")
def base_config() -> SandboxConfig:
    return SandboxConfig.generate(app_id=4242, app_slug="reactor-test")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with run_receiver() as running:
        yield running


@pytest.fixture
def sandbox(base_config: SandboxConfig, receiver: WebhookReceiver) -> Iterator[RunningSandbox]:
    with run_sandbox(replace(base_config, webhook_urls=(receiver.url,))) as running:
        yield running


@pytest.fixture
def client(sandbox: RunningSandbox) -> Iterator[SandboxClient]:
    with sandbox.client() as running:
        yield running


@dataclass
class Clock:
    """The sandbox's clock, stopped at the real time and moved on only by the test: a test of
    an expiry or a reset steps past it instead of sleeping, so a busy machine cannot break it."""

    now: float

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(sandbox: RunningSandbox) -> Clock:
    """The in-thread sandbox's clock (tokens, JWTs, rate limits), driven by the test."""
    stopped = Clock(time.time())
    sandbox.internals.world.clock = stopped
    return stopped


@dataclass
class Repo:
    """A repository created for a test, with an installation token for it."""

    owner: str
    name: str
    installation_id: int
    token: str
    data: dict[str, Any]

    @property
    def path(self) -> str:
        return f"/repos/{self.owner}/{self.name}"


@pytest.fixture
def repo(client: SandboxClient) -> Repo:
    created = client.create_repo("acme", "widgets")
    token = client.installation_token(created["installation_id"])
    return Repo("acme", "widgets", created["installation_id"], token, created["repository"])


def app_jwt(config: SandboxConfig, *, iat_offset: int = -30, lifetime: int = 540) -> str:
    """An App JWT as GitHub wants it (RS256, ``iss`` = App id)."""
    now = int(time.time())
    claims = {
        "iat": now + iat_offset,
        "exp": now + iat_offset + lifetime,
        "iss": str(config.app_id),
    }
    return jwt.encode(claims, config.private_key_pem, algorithm="RS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"}


def new_issue(
    client: SandboxClient, repo: Repo, user: str = "alice", **body: Any
) -> dict[str, Any]:
    response = client.as_user(user, "POST", f"{repo.path}/issues", json={"title": "t", **body})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def events(receiver: WebhookReceiver, client: SandboxClient) -> list[tuple[str, str | None]]:
    """(event, action) of every webhook received once the hub drained."""
    assert client.drain() == 0
    return [(w.event, w.payload.get("action")) for w in receiver.received]


__all__ = ["Clock", "Repo", "app_jwt", "bearer", "events", "httpx", "new_issue"]
