"""Catch-up of missed deliveries: the periodic job and ``reactor deliveries``.

The sandbox logs every webhook attempt as GitHub does (``/app/hook/deliveries``) and
redelivers on request with the same GUID; a receiver that answers 503, or a stopped
``reactor serve``, stands for the reactor being down.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import redis
import redis.asyncio

from ghsandbox.config import SandboxConfig
from ghsandbox.testing import (
    RunningSandbox,
    SandboxClient,
    WebhookReceiver,
    run_receiver,
    run_sandbox,
)
from reactor.entrypoints import cli
from reactor.github import GitHubClient, HookDelivery
from reactor.ops.commands import deliveries
from reactor.shell import catchup
from reactor.store import keys
from reactor.store.accept import UNACCEPTED_TTL_S
from tests.conftest import Stack, wait_for_port
from tests.test_recovery import DEADLINE_S, issue_deliveries, wait_until

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def attempt(guid: str, status: int, *, minutes: int = 0, id: int = 1) -> HookDelivery:
    return HookDelivery(
        id=id, guid=guid, delivered_at=NOW + timedelta(minutes=minutes), redelivery=False,
        status="OK" if status < 300 else "failed", status_code=status, event="issues",
        action="opened", installation_id=1, repository_id=2,
    )


def test_the_hold_before_another_redelivery_doubles_up_to_its_cap() -> None:
    assert [catchup.hold(n) for n in (1, 2, 3)] == [50, 100, 200]
    assert catchup.hold(20) == catchup.HOLD_CAP_S


def test_failed_guids_are_redelivered_unless_accepted_or_held() -> None:
    failed = [attempt("a", 503), attempt("b", 0), attempt("c", 502)]
    plan = catchup.partition(failed, seen={"b"}, held={"c"})
    assert [d.guid for d in plan.redeliver] == ["a"]
    assert [d.guid for d in plan.accepted] == ["b"]
    assert [d.guid for d in plan.waiting] == ["c"]


async def test_a_guid_counts_as_accepted_by_its_record_unless_an_older_web_process_left_it(
    store: redis.asyncio.Redis,
) -> None:
    await store.set(keys.delivery("taken"), b"{}", ex=keys.DELIVERY_TTL_S)
    await store.set(keys.delivery("left"), b"{}", ex=UNACCEPTED_TTL_S)  # stored, not accepted
    plan = await catchup.plan(store, [attempt("taken", 503), attempt("left", 503, id=2),
                                      attempt("never", 503, id=3)])
    assert [d.guid for d in plan.accepted] == ["taken"]
    assert sorted(d.guid for d in plan.redeliver) == ["left", "never"]


def test_the_cursor_stays_at_the_oldest_attempt_left_waiting() -> None:
    waiting = catchup.Plan(waiting=(attempt("c", 0, minutes=-5),))
    assert catchup.next_cursor(waiting, started=NOW) == NOW - timedelta(minutes=5)
    assert catchup.next_cursor(catchup.Plan(), started=NOW) == NOW


class Reactor:
    """A sandbox whose only hook is a receiver that answers as the reactor would."""

    def __init__(self, sandbox: RunningSandbox, receiver: WebhookReceiver) -> None:
        self.sandbox = sandbox
        self.receiver = receiver
        self.client: SandboxClient = sandbox.client()

    def failed_guids(self) -> list[str]:
        self.client.drain(timeout=30)
        return [h["guid"] for h in self.client.webhooks() if not 200 <= h["status_code"] < 300]

    def received(self, guid: str) -> int:
        self.client.drain(timeout=30)
        return sum(1 for hook in self.receiver.received if hook.guid == guid)


@pytest.fixture
def down() -> Iterator[Reactor]:
    """A repository with three issues whose webhooks the "reactor" refused with 503."""
    with run_receiver(status=503) as receiver, run_sandbox(SandboxConfig.generate()) as sandbox:
        reactor = Reactor(sandbox, receiver)
        reactor.client.control("POST", "hooks", {"url": receiver.url})
        reactor.client.create_repo("acme", "widgets")
        issue_deliveries(reactor.client, "acme/widgets", 3)
        yield reactor
        reactor.client.close()


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_a_run_redelivers_each_failed_guid_once_and_then_holds_it(
    down: Reactor, store: redis.asyncio.Redis
) -> None:
    failed = down.failed_guids()
    assert len(failed) == 4  # the installation and three issues
    config = down.sandbox.config
    async with GitHubClient(app_id=config.app_id, private_key=config.private_key_pem,
                            redis=store, api_url=down.sandbox.url) as github:
        first = await catchup.catch_up(github.app, store, now=datetime.now(UTC))
        assert sorted(first.redelivered) == sorted(failed)
        assert all(down.received(guid) == 2 for guid in failed)  # refused once more
        second = await catchup.catch_up(github.app, store, now=datetime.now(UTC))
        assert (second.redelivered, second.waiting) == ((), 4)
        await store.set(keys.delivery(failed[0]), b"{}", ex=keys.DELIVERY_TTL_S)  # taken after all
        await store.delete(*(keys.redelivery_hold(guid) for guid in failed))
        down.receiver.status = 202
        third = await catchup.catch_up(github.app, store, now=datetime.now(UTC))
        assert sorted(third.redelivered) == sorted(failed[1:]) and third.accepted == 1
        assert [down.received(guid) for guid in failed] == [2, 3, 3, 3]
        assert await store.get(keys.redeliveries(failed[1])) == b"2"
        fourth = await catchup.catch_up(github.app, store, now=datetime.now(UTC))
        assert fourth.redelivered == () and fourth.accepted == 1


def deliveries_cli(*args: str) -> int:
    """``reactor deliveries …`` through ``reactor.entrypoints.cli.main`` (``deliveries``
    registered here while ``reactor.entrypoints.cli`` does not register it itself)."""
    make_parser = cli._parser

    def parser() -> argparse.ArgumentParser:
        made = make_parser()
        commands = next(a for a in made._actions if isinstance(a, argparse._SubParsersAction))
        if "deliveries" not in commands.choices:
            deliveries.register(commands)
        return made

    original, cli._parser = cli._parser, parser
    try:
        return cli.main(["deliveries", *args])
    finally:
        cli._parser = original


@pytest.fixture
def cli_env(down: Reactor, redis_url: str, monkeypatch: pytest.MonkeyPatch,
            tmp_path: Path) -> Reactor:
    monkeypatch.chdir(tmp_path)  # no .env
    for name, value in {**down.sandbox.env(), "REDIS_URL": redis_url}.items():
        monkeypatch.setenv(name, value)
    return down


def test_list_failed_shows_each_undelivered_guid_and_what_the_reactor_knows(
    cli_env: Reactor, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = cli_env.failed_guids()
    redis.Redis.from_url(redis_url).set(keys.delivery(failed[0]), b"{}", ex=keys.DELIVERY_TTL_S)
    assert deliveries_cli("list", "--failed", "--json") == 0
    rows = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {row["guid"]: row["state"] for row in rows} == {
        failed[0]: "accepted", **{guid: "redeliver" for guid in failed[1:]}}
    assert deliveries_cli("list", "--limit", "2") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(" 503  issues.opened" in line for line in lines)


def test_redeliver_failed_then_one_guid_on_demand(
    cli_env: Reactor, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = cli_env.failed_guids()
    cli_env.receiver.status = 202
    assert deliveries_cli("redeliver", "--failed") == 0
    assert capsys.readouterr().out.startswith("redelivered 4;")
    assert [cli_env.received(guid) for guid in failed] == [2, 2, 2, 2]
    assert deliveries_cli("list", "--failed") == 0  # every GUID has a successful attempt now
    assert capsys.readouterr().out == ""
    assert deliveries_cli("redeliver", failed[0]) == 0  # on demand, delivered or not
    assert failed[0] in capsys.readouterr().out and cli_env.received(failed[0]) == 3


def test_bad_input_is_one_line_and_a_non_zero_exit(
    cli_env: Reactor, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert deliveries_cli("redeliver", "0000-not-sent") == 1
    err = capsys.readouterr().err
    assert err == ("reactor: no delivery 0000-not-sent in the App's delivery log "
                   "(GitHub keeps deliveries for 3 days)\n")
    with pytest.raises(SystemExit) as usage:
        deliveries_cli("redeliver", "not a guid")
    assert usage.value.code == 2 and "not a delivery GUID" in capsys.readouterr().err
    monkeypatch.delenv("APP_ID")
    assert deliveries_cli("list") == 1
    assert capsys.readouterr().err == (
        "reactor: APP_ID is not set: give the GitHub App's numeric id\n")


def start_web(stack: Stack, log: Path) -> subprocess.Popen[bytes]:
    """``reactor serve`` again, on the stack's port, as ``running_stack`` started it."""
    port = stack.web_url.rsplit(":", 1)[1]
    env = {**os.environ, **stack.sandbox.env(), "REDIS_URL": stack.redis_url,
           "LOG_LEVEL": "warning"}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "reactor", "serve", "--port", port],
                                   env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    stack.processes.append(process)  # stopped with the stack
    stack.logs.append(log)
    wait_for_port(int(port))
    return process


@pytest.mark.timeout(300)
def test_deliveries_sent_while_the_web_process_was_down_are_caught_up_exactly_once(
    stack: Stack, tmp_path: Path
) -> None:
    connection = redis.Redis.from_url(stack.redis_url)
    wait_until("the first catch-up run, at start-up", lambda: connection.exists(
        keys.CATCHUP_CURSOR) == 1, stack=stack)
    sandbox = stack.sandbox.client()
    sandbox.create_repo("acme", "widgets")
    web = stack.processes.pop(0)
    web.terminate()
    web.wait(timeout=30)
    missed = issue_deliveries(sandbox, "acme/widgets", 3)
    assert all(hook["status_code"] == 0 for hook in sandbox.webhooks() if hook["guid"] in missed)

    start_web(stack, tmp_path / "serve-again.log")
    # The catch-up job is due now rather than at its next minute.
    connection.delete(keys.periodic("catchup"))

    def caught_up() -> bool:
        codes = [h["status_code"] for h in sandbox.webhooks() if h["guid"] in missed]
        return codes.count(202) == len(missed)

    wait_until("catch-up redelivers the missed deliveries", caught_up, stack=stack,
               timeout=2 * DEADLINE_S)
    for guid in missed:
        stack.wait_for_audit(lambda record, guid=guid: record.delivery == guid,
                             timeout=DEADLINE_S)
    # The audit records are written as a turn closes; the turn ends just after.
    wait_until("the turns over", lambda: not list(connection.scan_iter(keys.TURN.format(
        scope="*"))), stack=stack, timeout=DEADLINE_S)
    cursor = connection.get(keys.CATCHUP_CURSOR)
    connection.delete(keys.periodic("catchup"))  # one more run finds nothing to redeliver
    wait_until("another catch-up run", lambda: connection.get(keys.CATCHUP_CURSOR) != cursor,
               stack=stack)
    sandbox.drain(timeout=30)
    for guid in missed:  # (a run during the outage may have redelivered it in vain)
        codes = [h["status_code"] for h in sandbox.webhooks() if h["guid"] == guid]
        assert codes[0] == 0 and codes[-1] == 202 and codes.count(202) == 1, (guid, codes)
