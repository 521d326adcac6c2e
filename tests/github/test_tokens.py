"""Installation tokens: fetched with the JWT, cached in Redis until shortly before expiry,
shared by every process, dropped and refetched when GitHub rejects them."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from reactor.core.errors import GitHubError
from reactor.github import GitHubClient, InstallationToken
from reactor.store import keys
from tests.conftest import stop_groups
from tests.github.conftest import APP_ID, TOKEN_LENGTH, FakeClock, MakeClient, Reply, StandIn


async def test_token_is_fetched_once_and_served_from_redis(
    client: GitHubClient, stand_in: StandIn
) -> None:
    stand_in.resources["/repos/octo/demo"] = {"name": "demo"}
    gh = client.for_installation(42)

    for _ in range(3):
        assert (await gh.getitem("/repos/octo/demo"))["name"] == "demo"

    assert stand_in.token_requests(42) == 1
    assert stand_in.calls("GET", "/repos/octo/demo")[0].authorization.startswith("token ghs_")


async def test_long_tokens_are_used_whole(client: GitHubClient, stand_in: StandIn) -> None:
    stand_in.resources["/repos/octo/demo"] = {"name": "demo"}

    await client.for_installation(42).getitem("/repos/octo/demo")

    token = await client.tokens.get(42)
    assert len(token) == TOKEN_LENGTH
    assert stand_in.calls("GET", "/repos/octo/demo")[0].authorization == f"token {token}"


async def test_redis_ttl_ends_the_safety_margin_before_expires_at(
    client: GitHubClient, stand_in: StandIn, redis: Redis[Any]
) -> None:
    await client.tokens.get(42)

    ttl = await redis.pttl(keys.installation_token(42))
    assert timedelta(minutes=54) < timedelta(milliseconds=ttl) <= timedelta(minutes=55, seconds=1)


async def test_token_close_to_expiry_is_fetched_again(
    client: GitHubClient, stand_in: StandIn, clock: FakeClock
) -> None:
    first = await client.tokens.get(42)

    clock.advance(timedelta(minutes=54))
    assert await client.tokens.get(42) == first
    clock.advance(timedelta(minutes=2))  # 4 minutes left: inside the 5-minute margin
    second = await client.tokens.get(42)

    assert second != first
    assert stand_in.token_requests(42) == 2


async def test_token_expiring_within_the_margin_is_used_but_not_cached(
    client: GitHubClient, stand_in: StandIn, redis: Redis[Any]
) -> None:
    stand_in.token_lifetime = timedelta(minutes=3)

    await client.tokens.get(42)
    await client.tokens.get(42)

    assert stand_in.token_requests(42) == 2
    assert not await redis.exists(keys.installation_token(42))


async def test_installations_have_separate_tokens(client: GitHubClient, stand_in: StandIn) -> None:
    assert await client.tokens.get(1) != await client.tokens.get(2)
    assert (stand_in.token_requests(1), stand_in.token_requests(2)) == (1, 1)


async def test_concurrent_misses_in_one_process_make_one_request(
    make_client: MakeClient, stand_in: StandIn
) -> None:
    stand_in.token_delay = 0.3
    clients = [await make_client() for _ in range(4)]

    tokens = await asyncio.gather(*(c.tokens.get(42) for c in clients for _ in range(3)))

    assert len(set(tokens)) == 1
    assert stand_in.token_requests(42) == 1


WORKER_SCRIPT = """
import asyncio, hashlib, sys, time
from pathlib import Path
from redis.asyncio import Redis
from reactor.github import GitHubClient

async def main(redis_url, api_url, key_path, app_id, start_at):
    redis = Redis.from_url(redis_url)
    client = GitHubClient(
        app_id=int(app_id), private_key=Path(key_path).read_text(), redis=redis, api_url=api_url
    )
    async with client:
        await asyncio.sleep(max(0.0, float(start_at) - time.time()))
        repo = await client.for_installation(42).getitem("/repos/octo/demo")
        token = await client.tokens.get(42)
    await redis.aclose()
    print(hashlib.sha256(token.encode()).hexdigest(), len(token), repo["name"])

asyncio.run(main(*sys.argv[1:]))
"""


def test_two_processes_share_one_token_and_one_token_request(
    stand_in: StandIn, redis_url: str, rsa_key: tuple[str, bytes], tmp_path: Path
) -> None:
    stand_in.resources["/repos/octo/demo"] = {"name": "demo"}
    stand_in.token_delay = 0.5  # both processes miss the cache while the first fetch is running
    key_path = tmp_path / "app.pem"
    key_path.write_text(rsa_key[0])
    start_at = time.time() + 2.0
    argv = [sys.executable, "-c", WORKER_SCRIPT, redis_url, stand_in.url, str(key_path),
            str(APP_ID), repr(start_at)]

    workers: list[subprocess.Popen[str]] = []
    try:
        for _ in range(2):
            workers.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            text=True, start_new_session=True))
        outputs = [w.communicate(timeout=30) for w in workers]
    finally:  # passed, failed or timed out: nothing of either process is left running
        stop_groups(workers)

    assert [w.returncode for w in workers] == [0, 0], [err for _, err in outputs]
    lines = {out.strip() for out, _ in outputs}
    assert len(lines) == 1
    assert lines.pop().endswith(f" {TOKEN_LENGTH} demo")
    assert stand_in.token_requests(42) == 1
    assert len(stand_in.calls("GET", "/repos/octo/demo")) == 2


async def test_revoked_token_is_dropped_and_the_call_retried_once_with_a_fresh_one(
    client: GitHubClient, stand_in: StandIn
) -> None:
    stand_in.resources["/repos/octo/demo"] = {"name": "demo"}
    gh = client.for_installation(42)
    await gh.getitem("/repos/octo/demo")
    old = await client.tokens.get(42)

    stand_in.revoke_tokens()
    assert (await gh.getitem("/repos/octo/demo"))["name"] == "demo"

    new = await client.tokens.get(42)
    assert new != old
    assert stand_in.token_requests(42) == 2
    assert [s.status for s in stand_in.calls("GET", "/repos/octo/demo")] == [200, 401, 304]


async def test_second_401_is_an_error_after_exactly_one_retry(
    client: GitHubClient, stand_in: StandIn
) -> None:
    unauthorized = Reply(401, {"message": "Bad credentials"})
    stand_in.script("GET", "/repos/octo/demo", unauthorized, unauthorized)

    with pytest.raises(GitHubError) as caught:
        await client.for_installation(42).getitem("/repos/octo/demo")

    assert caught.value.status == 401
    assert len(stand_in.calls("GET", "/repos/octo/demo")) == 2
    assert stand_in.token_requests(42) == 2


async def test_credentials_never_reach_logs_or_errors(
    client: GitHubClient, stand_in: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stand_in.resources["/repos/octo/demo"] = {"name": "demo"}
    stand_in.script("GET", "/repos/octo/demo", Reply(502), Reply(401, {"message": "Bad"}))
    stand_in.script("GET", "/repos/octo/missing", Reply(404, {"message": "Not Found"}))
    gh = client.for_installation(42)

    await gh.getitem("/repos/octo/demo")
    with pytest.raises(GitHubError) as caught:
        await gh.getitem("/repos/octo/missing")

    token = await client.tokens.get(42)
    secrets = [token, token[:40]] + [
        s.authorization.split(" ", 1)[1] for s in stand_in.seen if s.authorization
    ]
    text = caplog.text + str(caught.value) + repr(caught.value)
    assert "502" in caplog.text  # the retry was logged, without credentials
    assert not [s for s in secrets if s in text]
    assert "ghs_" not in repr(InstallationToken(token=token, expires_at=datetime.now(UTC)))


async def test_an_unknown_installation_is_a_clear_error(
    client: GitHubClient, stand_in: StandIn
) -> None:
    stand_in.script(
        "POST", "/app/installations/9/access_tokens", Reply(404, {"message": "Not Found"})
    )

    with pytest.raises(GitHubError) as caught:
        await client.for_installation(9).getitem("/repos/octo/demo")

    assert caught.value.status == 404
    assert caught.value.method == "POST"
    assert str(caught.value) == (
        "GitHub answered 404 to POST /app/installations/9/access_tokens: Not Found"
    )
