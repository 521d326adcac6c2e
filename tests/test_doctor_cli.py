"""``reactor doctor`` as operators run it: all good on the real stack; each problem said in
plain words, with what to do, and exit status 1 — Redis without its append-only file, a key
that is not the App's, an App short of the manifest's permissions; missing settings too."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ghsandbox import render
from reactor.github import AppInfo, Installation
from reactor.ops.commands.doctor import installation_shortfall, parse_manifest
from reactor.ops.processes import find_binary
from tests.conftest import Stack, free_port, stop_group, wait_for_port
from tests.test_cli import clean_env, reactor
from tests.test_status_cli import Repo, another_key, judged, run

MANIFEST = Path(__file__).resolve().parents[1] / "app-manifest.yml"


def lines(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Each check's line by its subject (``ok Redis: …`` → ``{"Redis": "ok Redis: …"}``)."""
    assert "Traceback" not in done.stderr, done.stderr
    found = {}
    for line in done.stdout.splitlines()[:-1]:
        verdict, _, rest = line.partition(" ")
        assert verdict in ("ok", "problem", "skip"), line
        found[rest.partition(": ")[0]] = line
    return found


@pytest.fixture
def subscribed_as_the_manifest_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-thread sandbox's App subscribes to ``issue_dependencies``, as one registered
    from app-manifest.yml does: the sandbox lists the App's events from the webhook schema's
    enum, which predates that event."""
    if "issue_dependencies" not in render.APP_EVENTS:
        monkeypatch.setattr(render, "APP_EVENTS", [*render.APP_EVENTS, "issue_dependencies"])


@pytest.fixture
def loose_redis(tmp_path: Path) -> Iterator[redis.Redis]:
    """A second redis-server, started without its append-only file."""
    port = free_port()
    process = subprocess.Popen(
        [find_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
         "--appendonly", "no", "--save", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(port)
        client = redis.Redis(port=port)
        yield client
        client.close()
    finally:
        stop_group(process)


def warm_up(stack: Stack) -> None:
    """A repository and an issue judged: the workers run and have registered with RQ."""
    with stack.sandbox.client() as client:
        number = Repo(client, "doctor").open("titanic", "planner")
    judged(stack, lambda r: r.issue == str(number) and r.action == "opened", "the opening")


@pytest.mark.usefixtures("subscribed_as_the_manifest_asks")
def test_all_good_on_the_real_stack_and_a_permission_short_of_the_manifest_is_a_problem(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    warm_up(stack)
    done = run(stack, "doctor", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    found = lines(done)
    assert all(line.startswith("ok ") for line in found.values()), done.stdout
    assert set(found) == {"Redis", "Redis persistence", "queue", "failed jobs", "webhook secret",
                          "private key", "manifest", "App", "App permissions and events",
                          "installations"}
    assert "append-only file on, fsync everysec" in found["Redis persistence"]
    assert "2 workers listen" in found["queue"]
    assert done.stdout.splitlines()[-1] == "all good"

    monkeypatch.setattr(render, "APP_PERMISSIONS", {"issues": "read", "metadata": "read"})
    short = run(stack, "doctor", cwd=tmp_path)
    assert short.returncode == 1
    assert lines(short)["App permissions and events"] == (
        "problem App permissions and events: lacks contents read, issues write: change them "
        "in the App's settings on GitHub (Developer settings → GitHub Apps → Permissions & "
        "events); installations follow, their owners asked to accept any new permission")
    assert short.stdout.splitlines()[-1] == "1 problem to fix"


def test_redis_without_its_append_only_file_is_a_problem_with_the_fix(
    stack: Stack, tmp_path: Path, loose_redis: redis.Redis,
) -> None:
    url = f"redis://127.0.0.1:{loose_redis.connection_pool.connection_kwargs['port']}/0"
    off = run(stack, "doctor", cwd=tmp_path, REDIS_URL=url)
    assert off.returncode == 1
    found = lines(off)
    assert found["Redis persistence"].startswith(
        "problem Redis persistence: the append-only file is off, so a crash or restart loses "
        "accepted deliveries")
    assert "CONFIG SET appendonly yes" in found["Redis persistence"]
    assert found["queue"].startswith("problem queue: no worker listens to reactor-events")

    loose_redis.config_set("appendonly", "yes")
    loose_redis.config_set("appendfsync", "no")
    lazy = lines(run(stack, "doctor", cwd=tmp_path, REDIS_URL=url))
    assert lazy["Redis persistence"].startswith("problem Redis persistence: appendfsync is no")
    assert "set appendfsync everysec" in lazy["Redis persistence"]


def test_a_key_that_is_not_the_apps_is_a_problem_and_the_app_checks_are_skipped(
    stack: Stack, tmp_path: Path,
) -> None:
    done = run(stack, "doctor", cwd=tmp_path, PRIVATE_KEY=another_key())
    assert done.returncode == 1
    found = lines(done)
    assert found["private key"].startswith("ok private key: an RSA key of 2048 bits")
    assert found["App"].startswith("problem App: GitHub refused the App's JWT (")
    assert "APP_ID" in found["App"] and "Private keys" in found["App"]
    assert found["installations"] == (
        "skip installations: the App's JWT does not work (see above)")


def test_missing_settings_are_problems_not_tracebacks(tmp_path: Path) -> None:
    done = reactor("doctor", env=clean_env(), cwd=tmp_path)
    assert done.returncode == 1
    found = lines(done)
    assert found["Redis"].startswith("problem Redis: REDIS_URL is not set: set it to")
    assert found["webhook secret"].startswith("problem webhook secret: WEBHOOK_SECRET is not set")
    assert found["private key"].startswith(
        "problem private key: no App is configured: APP_ID is not set")
    assert found["App"] == "skip App: no App is configured (see above)"
    assert done.stdout.splitlines()[-1] == "3 problems to fix"

    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    away = lines(reactor("doctor", env={**clean_env(), "REDIS_URL": nowhere}, cwd=tmp_path))
    assert away["Redis"].startswith(f"problem Redis: cannot reach {nowhere}")
    assert "safety" not in away

    unsafe = lines(reactor("doctor", env={**clean_env(), "UNSAFE_DISABLE": "lease"},
                           cwd=tmp_path))
    assert unsafe["safety"] == ("problem safety: UNSAFE_DISABLE switches off lease: racing "
                                "workers can undo valid moves: unset UNSAFE_DISABLE (a "
                                "benchmark switch)")


def test_bad_input_stops_before_any_check_with_one_line(tmp_path: Path) -> None:
    not_pem = reactor("doctor", env={**clean_env(), "APP_ID": "1", "PRIVATE_KEY": "nonsense"},
                      cwd=tmp_path)
    assert not_pem.returncode == 1 and not_pem.stdout == ""
    assert not_pem.stderr == ("reactor: PRIVATE_KEY is not a PEM key "
                              "(expected '-----BEGIN RSA PRIVATE KEY-----')\n")
    no_file = reactor("doctor", "--manifest", str(tmp_path / "nope.yml"), env=clean_env(),
                      cwd=tmp_path)
    assert no_file.returncode == 1
    assert no_file.stderr == f"reactor: --manifest {tmp_path / 'nope.yml'}: no such file\n"


def test_an_installation_is_held_to_what_its_app_has_of_the_manifest() -> None:
    manifest = parse_manifest(MANIFEST)
    assert manifest.permissions == {"issues": "write", "metadata": "read", "contents": "read"}
    app = AppInfo(1, "reactor", "Reactor", "acme", permissions={
        "issues": "write", "metadata": "read", "contents": "write"},
        events=("issues", "issue_comment", "label", "push"))
    lagging = Installation(7, "acme", "Organization", "selected", permissions={
        "issues": "read", "metadata": "read", "contents": "read"}, events=("issues", "push"))
    short, missing = installation_shortfall(lagging, app, manifest)
    assert short == {"issues": "write"}
    # issue_dependencies is the App's own shortfall, reported once on the App's line.
    assert missing == ["issue_comment", "label"]
