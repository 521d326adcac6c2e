"""Retries: 5xx and transport failures are retried with full-jitter backoff, 5 attempts,
then GitHubUnavailable; other failures are not retried."""

from __future__ import annotations

import pytest
from tenacity import AsyncRetrying, RetryCallState

from reactor.core.errors import GitHubError, GitHubUnavailable
from reactor.github import CallRecord, RetryPolicy, full_jitter
from tests.conftest import free_port
from tests.github.conftest import MakeClient, Reply, Sleeps, StandIn

REPO = "/repos/octo/demo"


def _state(attempt_number: int) -> RetryCallState:
    state = RetryCallState(AsyncRetrying(), None, (), {})
    state.attempt_number = attempt_number
    return state


def test_full_jitter_draws_from_a_window_doubling_from_one_second_up_to_sixteen() -> None:
    wait = full_jitter()
    for attempt, high in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (9, 16)]:
        draws = [wait(_state(attempt)) for _ in range(300)]
        assert all(0 <= d <= high for d in draws)
        assert max(draws) > high / 2  # the whole window is used, not just its start


async def test_5xx_is_retried_until_success_with_policy_waits(
    make_client: MakeClient, stand_in: StandIn, sleeps: Sleeps
) -> None:
    stand_in.resources[REPO] = {"name": "demo"}
    stand_in.script("GET", REPO, *[Reply(502, {"message": "Server Error"})] * 4)
    client = await make_client()

    assert (await client.for_installation(1).getitem(REPO))["name"] == "demo"

    assert [s.status for s in stand_in.calls("GET", REPO)] == [502, 502, 502, 502, 200]
    assert len(sleeps.waits) == 4
    assert all(0 <= wait <= 2**index for index, wait in enumerate(sleeps.waits))


async def test_after_five_failed_attempts_github_is_unavailable(
    make_client: MakeClient, stand_in: StandIn, sleeps: Sleeps
) -> None:
    stand_in.script("GET", REPO, *[Reply(503)] * 5)
    client = await make_client()

    with pytest.raises(GitHubUnavailable) as caught:
        await client.for_installation(1).getitem(REPO)

    assert caught.value.status == 503
    assert caught.value.method == "GET"
    assert caught.value.url == f"{stand_in.url}{REPO}"
    assert str(caught.value) == (
        f"GitHub did not answer GET {REPO} after 5 attempts (last: HTTP 503)"
    )
    assert len(stand_in.calls("GET", REPO)) == 5
    assert len(sleeps.waits) == 4


async def test_the_injected_wait_decides_each_pause(
    make_client: MakeClient, stand_in: StandIn, sleeps: Sleeps
) -> None:
    stand_in.resources[REPO] = {"name": "demo"}
    stand_in.script("GET", REPO, Reply(500), Reply(502), Reply(504))
    policy = RetryPolicy(wait=lambda state: 0.25 * state.attempt_number, sleep=sleeps)
    client = await make_client(retry=policy)

    await client.for_installation(1).getitem(REPO)

    assert sleeps.waits == [0.25, 0.5, 0.75]


async def test_timeouts_are_retried(
    make_client: MakeClient, stand_in: StandIn, sleeps: Sleeps
) -> None:
    stand_in.resources[REPO] = {"name": "demo"}
    client = await make_client(timeout=0.2)
    await client.tokens.get(1)
    stand_in.script("GET", REPO, Reply(200, {"name": "late"}, delay=1.0), Reply(200, delay=1.0))

    assert (await client.for_installation(1).getitem(REPO))["name"] == "demo"

    assert len(stand_in.calls("GET", REPO)) == 3
    assert len(sleeps.waits) == 2


async def test_an_unreachable_api_is_unavailable_with_status_0(
    make_client: MakeClient, sleeps: Sleeps
) -> None:
    records: list[CallRecord] = []
    unreachable = f"http://127.0.0.1:{free_port()}"
    client = await make_client(api_url=unreachable, on_response=records.append)

    with pytest.raises(GitHubUnavailable) as caught:
        await client.app.getitem("/app")

    assert caught.value.status == 0
    assert "ConnectError" in str(caught.value)
    assert [r.status for r in records] == [0] * 5
    assert len(sleeps.waits) == 4


async def test_client_errors_are_not_retried(
    make_client: MakeClient, stand_in: StandIn, sleeps: Sleeps
) -> None:
    stand_in.script("GET", REPO, Reply(404, {"message": "Not Found"}))
    client = await make_client()

    with pytest.raises(GitHubError) as caught:
        await client.for_installation(1).getitem(REPO)

    assert caught.value.status == 404
    assert not isinstance(caught.value, GitHubUnavailable)
    assert len(stand_in.calls("GET", REPO)) == 1
    assert sleeps.waits == []


async def test_idempotent_writes_are_retried_too(
    make_client: MakeClient, stand_in: StandIn, sleeps: Sleeps
) -> None:
    path = f"{REPO}/issues/3"
    stand_in.script("PATCH", path, Reply(502), Reply(200, {"number": 3, "state": "closed"}))
    client = await make_client()

    issue = await client.for_installation(1).patch(path, data={"state": "closed"})

    assert issue == {"number": 3, "state": "closed"}
    assert len(stand_in.calls("PATCH", path)) == 2


async def test_a_creating_post_answered_5xx_is_not_retried_here(
    make_client: MakeClient, stand_in: StandIn, sleeps: Sleeps
) -> None:
    """GitHub sometimes answers 5xx after it wrote: the caller, which can look for its
    comment or issue, decides whether to write again."""
    path = f"{REPO}/issues/7/comments"
    stand_in.script("POST", path, Reply(502), Reply(201, {"id": 1}))
    client = await make_client()

    with pytest.raises(GitHubUnavailable) as caught:
        await client.for_installation(1).post(path, data={"body": "hi"})

    assert caught.value.status == 502
    assert len(stand_in.calls("POST", path)) == 1 and sleeps.waits == []


@pytest.mark.parametrize(("method", "path"), [
    ("POST", f"{REPO}/issues/7/labels"),
    ("DELETE", f"{REPO}/issues/7/labels/status:starting"),
])
async def test_a_label_write_answered_5xx_is_not_retried_here(
    make_client: MakeClient, stand_in: StandIn, sleeps: Sleeps, method: str, path: str,
) -> None:
    """Not idempotent in time: retried after an agent removed the label the first attempt
    added, it would undo the agent's move. The applier reads the issue's timeline instead."""
    stand_in.script(method, path, Reply(502), Reply(200, [{"name": "status:starting"}]))
    client = await make_client()

    with pytest.raises(GitHubUnavailable):
        if method == "POST":
            await client.for_installation(1).post(path, data={"labels": ["status:starting"]})
        else:
            await client.for_installation(1).delete(path)

    assert [c.status for c in stand_in.calls(method, path)] == [502]
