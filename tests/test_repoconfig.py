"""``repoconfig``: the file read through the sandbox's contents API, cached in a real Redis.

A malformed text comes back as a ConfigProblem on every load while the last good config stays
in force; reporting it is claimed once per text; each distinct text is parsed once per process
and a problem is logged once; a huge or hostile file costs one bounded parse per process and
no parse and no GitHub call per evaluation (counted, not timed).
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio

from ghsandbox.config import SandboxConfig
from ghsandbox.testing import RunningSandbox, SandboxClient, run_sandbox
from reactor.core.config import MESSAGE_CHARS, RepoConfig, parse_config
from reactor.core.view import Repo
from reactor.github import GitHubClient
from reactor.shell import repoconfig
from reactor.shell.repoconfig import PATH, ConfigProblem, ParseCache
from reactor.store import keys
from tests.core.test_config import BOMB5_NODES, Work, counting_work

GOOD = "maintainers: [alice]\n"
BOMB = """\
start_timeout:
- &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]
- &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
- &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
- &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
- &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
"""  # 10**5 strings from 230 bytes: the old message quoted them all (800 KB)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with run_sandbox(SandboxConfig.generate()) as running:
        yield running


@dataclass
class World:
    """One repository on the sandbox, the installation's API, and the reactor's Redis."""

    redis: redis.asyncio.Redis
    gh: Any
    repo: Repo
    control: SandboxClient
    token: str

    def put(self, text: str) -> None:
        """Commit ``text`` as the config file (a push, as a person would make it)."""
        path = f"/repos/{self.repo.full_name}/contents/{PATH}"
        current = self.control.as_token(self.token, "GET", path)
        body = {"message": "config", "content": base64.b64encode(text.encode()).decode()}
        if current.status_code == 200:
            body["sha"] = current.json()["sha"]
        self.control.as_token(self.token, "PUT", path, json=body).raise_for_status()

    async def load(self) -> tuple[RepoConfig, ConfigProblem | None]:
        """Load as an evaluation after the push handler dropped the cached text."""
        return await repoconfig.load(self.redis, self.gh, self.repo)

    async def push(self, text: str) -> tuple[RepoConfig, ConfigProblem | None]:
        self.put(text)
        await repoconfig.forget(self.redis, self.repo)
        return await self.load()


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A fresh process cache, and every text parse_config is called with."""
    seen: list[str] = []

    def counting(text: str | None) -> RepoConfig:
        seen.append(text or "")
        return parse_config(text)

    monkeypatch.setattr(repoconfig, "PARSED", ParseCache())
    monkeypatch.setattr(repoconfig, "parse_config", counting)
    return seen


@pytest.fixture
async def world(
    redis_url: str, sandbox: RunningSandbox, parses: list[str]
) -> AsyncIterator[World]:
    client = redis.asyncio.Redis.from_url(redis_url)
    with sandbox.client() as control:
        name = f"widgets-{time.monotonic_ns()}"
        created = control.create_repo("acme", name)
        installation = created["installation_id"]
        repo = Repo(owner="acme", name=name, id=created["repository"]["id"])
        github = GitHubClient(
            app_id=sandbox.config.app_id, private_key=sandbox.config.private_key_pem,
            redis=client, api_url=sandbox.url,
        )
        try:
            yield World(client, github.for_installation(installation), repo, control,
                        control.installation_token(installation))
        finally:
            await github.aclose()
            await client.aclose()


async def test_a_malformed_text_is_returned_on_every_load_and_the_last_good_stays(
    world: World,
) -> None:
    config, problem = await world.push(GOOD)
    assert problem is None and config.maintainers == {"alice"}

    first = await world.push("maintainers: octocat\n")
    again = await world.load()

    assert first == again
    config, problem = first
    assert config.maintainers == {"alice"}
    assert problem == ConfigProblem(f"{PATH}: maintainers: must be a list, e.g. [a, b], not "
                                    "'octocat'", problem.digest if problem else "")
    assert problem is not None and len(problem.digest) == 16


async def test_a_read_in_flight_when_the_file_changes_caches_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The race a push and a read can run: a worker reads the file before the push, the push
    handler drops the cache, then the worker would cache the old text for five minutes."""
    fetch = repoconfig._fetch

    async def read_then_pushed(gh: Any, repo: Repo) -> str | None:
        old = await fetch(gh, repo)  # read before the push lands…
        world.put("maintainers: [bob]\n")
        await repoconfig.forget(world.redis, world.repo)  # …and the push handled meanwhile
        return old

    world.put(GOOD)
    monkeypatch.setattr(repoconfig, "_fetch", read_then_pushed)
    config, _ = await world.load()
    assert config.maintainers == frozenset({"alice"})  # what it read, used once
    assert await world.redis.get(keys.config(world.repo.id)) is None  # and kept by no one
    monkeypatch.setattr(repoconfig, "_fetch", fetch)
    repoconfig._LOCAL.clear()
    config, _ = await world.load()
    assert config.maintainers == frozenset({"bob"})


async def test_without_a_good_text_the_defaults_stay(world: World) -> None:
    config, problem = await world.push("stages: [a\n")
    assert config == parse_config(None)
    assert problem is not None and "not valid YAML at line 2" in problem.text


async def test_the_alias_bomb_gives_a_short_problem_and_is_refused_before_it_expands(
    world: World, parses: list[str],
) -> None:
    await world.push(GOOD)
    with counting_work() as work:
        config, problem = await world.push(BOMB)

    assert len(BOMB.encode()) < 300
    assert problem is not None and len(problem.text) < 1000
    assert "aliases expand to more than 10,000 values" in problem.text
    assert config.maintainers == {"alice"}  # the last good config, from the parse cache
    assert parses == [GOOD, BOMB]
    assert 0 < work.composed <= BOMB5_NODES and work.constructed == 0  # BOMB is bomb(5)


async def test_nesting_a_thousand_deep_is_a_problem_not_an_exception(world: World) -> None:
    await world.push(GOOD)
    config, problem = await world.push("stages: " + "[" * 1000 + "]" * 1000 + "\n")
    assert config.maintainers == {"alice"}
    assert problem is not None and len(problem.text) <= MESSAGE_CHARS + len(PATH) + 2


async def test_a_huge_valid_config_is_refused_by_size_and_evaluations_stay_cheap(
    world: World, parses: list[str],
) -> None:
    huge = "maintainers:\n" + "".join(f"  - m{i:07d}\n" for i in range(960_000 // 13))
    await world.push(GOOD)
    config, problem = await world.push(huge)
    assert problem is not None
    assert problem.text == f"{PATH}: the file is {-(-len(huge) // 1024)} KiB; the limit is 64 KiB"
    assert config.maintainers == {"alice"}

    calls = len(world.control.control("GET", "requests"))
    with counting_work() as work:
        for _ in range(10):
            assert await world.load() == (config, problem)
    assert parses == [GOOD, huge]  # each text parsed once in this process
    assert work == Work()  # evaluations read the cache: no YAML read at all
    assert len(world.control.control("GET", "requests")) == calls  # nor a GitHub call


async def test_each_distinct_text_is_parsed_once_per_process(
    world: World, parses: list[str]
) -> None:
    for text in (GOOD, BOMB, GOOD):
        await world.push(text)
        for _ in range(4):
            await world.load()
    assert parses == [GOOD, BOMB]  # the last good config is read from the cache too


async def test_the_problem_is_logged_once_per_text(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=repoconfig.__name__):
        await world.push(BOMB)
        for _ in range(3):
            await world.load()
        await world.push("maintainers: octocat\n")
    warnings = [r.getMessage() for r in caplog.records if r.name == repoconfig.__name__]
    assert len(warnings) == 2
    assert warnings[0].startswith(f"{world.repo.full_name}: {PATH}: aliases expand to")
    assert all(len(w) < 1000 for w in warnings)


async def test_a_report_is_claimed_once_per_text_until_released(world: World) -> None:
    _, problem = await world.push(BOMB)
    assert problem is not None
    claim: Callable[[], Any] = lambda: repoconfig.claim_report(  # noqa: E731
        world.redis, world.repo, problem.digest)

    assert await claim() is True
    assert await claim() is False
    ttl = await world.redis.ttl(keys.config_reported(world.repo.id, problem.digest))
    assert 6 * 86400 < ttl <= 7 * 86400

    await repoconfig.release_report(world.redis, world.repo, problem.digest)
    assert await claim() is True

    _, other = await world.push("maintainers: octocat\n")
    assert other is not None and other.digest != problem.digest
    assert await repoconfig.claim_report(world.redis, world.repo, other.digest) is True


async def test_a_last_good_text_that_no_longer_parses_gives_the_defaults(world: World) -> None:
    """A text stored as good before a limit was added must not make load raise."""
    await world.redis.set(keys.config_good(world.repo.id), ("# " + "x" * 70_000).encode())
    config, problem = await world.push(BOMB)
    assert config == parse_config(None)
    assert problem is not None


def test_the_parse_cache_keeps_the_most_recently_used_entries() -> None:
    cache = ParseCache(size=2)
    cache.put("a", "problem a")
    cache.put("b", "problem b")
    assert cache.get("a") == "problem a"  # a is now the most recent
    cache.put("c", "problem c")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == ("problem a", None, "problem c")
