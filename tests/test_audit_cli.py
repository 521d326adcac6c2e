"""``reactor audit`` as users run it, against a real redis-server: filters, tail, safe output."""

from __future__ import annotations

import contextlib
import queue
import signal
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import IO

import orjson
import pytest
import redis

from reactor.entrypoints.cli import parse_since
from reactor.store import keys
from reactor.store.audit import AuditRecord
from tests.process_tree import ProcessTree
from tests.test_cli import background_job, clean_env, reactor

WAIT_S = 30  # a deadline for a line to appear, not a timing assertion


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


def write(client: redis.Redis, *, at: datetime | None = None, **fields: str) -> str:
    """Append one record (at Redis's clock, or with the stream id of ``at``); its id."""
    values = {"delivery": "g-other", "event": "issues", "outcome": "accepted", **fields}
    record = AuditRecord(at=(at or datetime.now(UTC)).isoformat(), **values)
    entry_id = "*" if at is None else f"{int(at.timestamp() * 1000)}-0"
    return client.xadd(keys.AUDIT, record.to_fields(), id=entry_id).decode()  # type: ignore[arg-type,union-attr]


def audit(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return reactor("audit", *args, env={**clean_env(), "REDIS_URL": redis_url})


def details(done: subprocess.CompletedProcess[str]) -> list[str]:
    assert done.returncode == 0, done.stderr
    return [orjson.loads(line)["detail"] for line in done.stdout.splitlines()]


def test_delivery_finds_every_record_of_that_guid_however_far_back(
    client: redis.Redis, redis_url: str
) -> None:
    """SPEC §4: every accepted delivery can be found by its GUID, as ``delivery`` or listed."""
    write(client, delivery="g1", detail="first")
    for n in range(120):
        write(client, delivery=f"g-busy-{n}", detail="busy")
    write(client, delivery="g9", deliveries="g0,g1,g2", detail="burst naming g1")
    write(client, delivery="g9", deliveries="g10,g11", detail="burst without g1")
    write(client, delivery="g1", detail="last")
    assert details(audit(redis_url, "--delivery", "g1", "--json")) == [
        "first", "burst naming g1", "last",
    ]
    assert details(audit(redis_url, "--delivery", "g1", "--json", "--limit", "1")) == ["last"]
    assert audit(redis_url, "--delivery", "g404").stdout == ""


def test_rule_selects_that_rule_only(client: redis.Redis, redis_url: str) -> None:
    for rule in ("R1", "R2", "R20", ""):
        write(client, rule=rule, detail=f"rule {rule or 'none'}")
    assert details(audit(redis_url, "--rule", "R2", "--json")) == ["rule R2"]
    assert details(audit(redis_url, "--rule", "r2", "--json")) == ["rule R2"]


def test_comp_matches_the_whole_competition_name(client: redis.Redis, redis_url: str) -> None:
    write(client, detail="comp:titanic RemoveLabel: R2")
    write(client, detail="comp:ti RemoveLabel: R2")
    assert details(audit(redis_url, "--comp", "ti", "--json")) == ["comp:ti RemoveLabel: R2"]


def test_since_takes_an_age_or_an_iso_time(client: redis.Redis, redis_url: str) -> None:
    now = datetime.now(UTC)
    for age in (timedelta(days=3), timedelta(hours=3), timedelta(minutes=90),
                timedelta(minutes=1)):
        write(client, at=now - age, detail=f"{age} ago")
    assert details(audit(redis_url, "--since", "2h", "--json")) == ["1:30:00 ago", "0:01:00 ago"]
    assert details(audit(redis_url, "--since", "30m", "--json")) == ["0:01:00 ago"]
    assert len(details(audit(redis_url, "--since", "4d", "--json"))) == 4
    assert len(details(audit(redis_url, "--since", "1d", "--limit", "1", "--json"))) == 1
    moment = now - timedelta(hours=4)
    naive = moment.replace(tzinfo=None).isoformat(timespec="seconds")  # read as UTC
    for since in (moment.isoformat(), naive, moment.strftime("%Y-%m-%dT%H:%M:%SZ")):
        assert len(details(audit(redis_url, "--since", since, "--json"))) == 3, since


def test_since_reads_ages_and_times_relative_to_the_given_now() -> None:
    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    assert parse_since("90s", now=now) == now - timedelta(seconds=90)
    assert parse_since("10m", now=now) == now - timedelta(minutes=10)
    assert parse_since("1w", now=now) == now - timedelta(days=7)
    assert parse_since("2025-06-01T09:30", now=now) == datetime(2025, 6, 1, 9, 30, tzinfo=UTC)
    assert parse_since("2025-06-01T09:30+02:00", now=now) == datetime(2025, 6, 1, 7, 30,
                                                                      tzinfo=UTC)


@pytest.mark.parametrize("since", ["yesterday", "10 minutes", "-5m", "99999999999999d", ""])
def test_an_unparsable_since_is_one_line_and_a_usage_exit(redis_url: str, since: str) -> None:
    done = audit(redis_url, f"--since={since}")
    assert done.returncode == 2
    assert done.stderr.startswith(f"reactor: --since {since!r} is neither an ISO time")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_a_limit_below_one_is_a_usage_error(redis_url: str) -> None:
    done = audit(redis_url, "--limit", "0")
    assert (done.returncode, done.stderr) == (2, "reactor: --limit must be at least 1, not 0\n")


def test_a_redis_error_is_one_line_not_a_traceback(client: redis.Redis, redis_url: str) -> None:
    client.set(keys.AUDIT, "not a stream")
    done = audit(redis_url)
    assert done.returncode == 1
    assert done.stderr.startswith("reactor: Redis refused: WRONGTYPE")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_user_text_cannot_drive_the_terminal(client: redis.Redis, redis_url: str) -> None:
    """Issue 11, item 11: escape and bidi characters reach the terminal spelled out."""
    label = "\x1b[2J\x1b[31mstatus:x\u202e"
    detail = "looks fine\n2025-01-01T00:00:00  applied  forged\u2066\x9b"
    write(client, label=label, actor="mallory\u200f", detail=detail)
    done = audit(redis_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1
    for raw in ("\x1b", "\u202e", "\u2066", "\u200f", "\x9b"):
        assert raw not in done.stdout
    for escaped in ("\\x1b[2J\\x1b[31mstatus:x\\u202e", "mallory\\u200f", "fine\\n2025",
                    "forged\\u2066\\x9b"):
        assert escaped in done.stdout
    as_json = audit(redis_url, "--json")
    assert "\x1b" not in as_json.stdout and "\u202e" not in as_json.stdout
    assert "\\u202e" in as_json.stdout and "\\u009b" in as_json.stdout
    record = orjson.loads(as_json.stdout)
    assert (record["label"], record["actor"], record["detail"]) == (
        label, "mallory\u200f", detail,
    )


def _pump(stream: IO[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def run() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=run, daemon=True).start()
    return lines


def _follow(redis_url: str, *args: str) -> contextlib.AbstractContextManager[ProcessTree]:
    """``reactor audit --follow ARGS``, started as a background job starts it (SIGINT
    ignored); killed on the way out if the test left it running."""
    return background_job("audit", "--follow", *args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True,
                          env={**clean_env(), "REDIS_URL": redis_url})


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_follow_prints_the_selection_then_new_matches_until_ctrl_c(
    client: redis.Redis, redis_url: str, signum: int, status: int
) -> None:
    """Ctrl-C (or SIGTERM) ends the tail quietly, with the status a shell reports for it —
    even when it was started with SIGINT ignored."""
    write(client, rule="R2", detail="before")
    with _follow(redis_url, "--rule", "R2", "--json") as tail:
        process = tail.process
        assert process.stdout is not None and process.stderr is not None
        lines = _pump(process.stdout)
        assert orjson.loads(lines.get(timeout=WAIT_S))["detail"] == "before"
        write(client, rule="R1", detail="another rule")
        write(client, rule="R2", detail="after")
        assert orjson.loads(lines.get(timeout=WAIT_S))["detail"] == "after"
        assert tail.interrupt(signum, timeout=WAIT_S) == status
        assert process.stderr.read() == ""
    assert lines.empty()


def test_a_reader_that_goes_away_ends_the_tail_quietly(
    client: redis.Redis, redis_url: str
) -> None:
    """``reactor audit --follow | head -1``: the closed pipe is not a traceback."""
    write(client, detail="before")
    with _follow(redis_url) as tail:
        process = tail.process
        assert process.stdout is not None and process.stderr is not None
        assert "before" in process.stdout.readline()
        process.stdout.close()
        write(client, detail="after")
        assert process.wait(timeout=WAIT_S) == 1
        assert "Traceback" not in process.stderr.read()
