"""``reactor status`` as users run it: the real command against the real stack (web, two
workers, the sandbox GitHub), after the reactor has judged what the agents did; bad input is
one line and a non-zero exit."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ghsandbox.testing import SandboxClient
from reactor.core.config import DEFAULT_STAGES
from reactor.ops.commands.status import board
from reactor.store.audit import AuditRecord
from reactor.store.memory import Recalled
from tests.conftest import Stack, free_port
from tests.test_cli import clean_env, reactor

WAIT_S = 30.0  # a deadline for the reactor to judge, not a timing assertion


def run(stack: Stack, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The real ``reactor`` command with the stack's settings (and ``env`` over them)."""
    assert stack.env is not None
    return reactor(*args, env={**stack.env, **env}, cwd=cwd)


def judged(stack: Stack, predicate: Callable[[AuditRecord], bool], what: str) -> None:
    """Wait until the audit log holds a record matching ``predicate``."""
    deadline = time.monotonic() + WAIT_S
    while not any(predicate(r) for r in stack.audit()):
        assert time.monotonic() < deadline, f"the reactor never judged {what}: " + "\n".join(
            f"{r.event}.{r.action} #{r.issue} {r.label} {r.outcome} {r.rule} {r.detail}"
            for r in stack.audit())
        time.sleep(0.1)


def accepted_move(issue: int, status: str) -> Callable[[AuditRecord], bool]:
    return lambda r: r.issue == str(issue) and r.rule == "R1" and f"→ {status}" in r.detail


class Repo:
    """One sandbox repository with the App installed, acted on by the user ``alice``."""

    def __init__(self, client: SandboxClient, name: str) -> None:
        self.client = client
        self.path = f"/repos/acme/{name}"
        client.create_repo("acme", name)

    def call(self, method: str, path: str, body: Any) -> Any:
        response = self.client.as_user("alice", method, self.path + path, json=body)
        assert response.status_code < 300, response.text
        return response.json()

    def open(self, comp: str, stage: str, body: str = "") -> int:
        created = self.call("POST", "/issues", {
            "title": f"[{comp}] {stage}: win", "body": body,
            "labels": [f"agent:{stage}", f"comp:{comp}"]})
        return int(created["number"])

    def move(self, number: int, comp: str, stage: str, status: str) -> None:
        """Change status in one request, as agents do with ``PUT …/labels``."""
        self.call("PUT", f"/issues/{number}/labels",
                  {"labels": [f"agent:{stage}", f"comp:{comp}", f"status:{status}"]})


def cells(table: str, first: str) -> list[str]:
    """The cells of the table row (or header) whose first cell is ``first``."""
    for line in table.splitlines():
        found = re.split(r"\s{2,}", line.strip())
        if found[0] == first:
            return found
    raise AssertionError(f"no row {first!r} in:\n{table}")


def test_status_shows_each_competition_by_stage_as_the_reactor_accepted_it(
    stack: Stack, tmp_path: Path,
) -> None:
    with stack.sandbox.client() as client:
        repo = Repo(client, "widgets")
        Repo(client, "quiet")
        planner = repo.open("titanic", "planner")
        judged(stack, lambda r: r.issue == str(planner) and r.action == "opened", "the opening")
        for status in ("starting", "running"):
            repo.move(planner, "titanic", "planner", status)
            judged(stack, accepted_move(planner, status), f"#{planner} → {status}")
        # A completion that starts a hand-off is recorded as the hand-off it led to (R9).
        repo.move(planner, "titanic", "planner", "completed")
        judged(stack, lambda r: r.rule == "R9" and "Comment: R9 hand-off" in r.detail,
               "the hand-off")
        house = repo.open("house", "planner")
        judged(stack, lambda r: r.issue == str(house) and r.action == "opened", "the opening")

    done = run(stack, "status", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "acme/widgets"
    assert cells(done.stdout, "competition") == ["competition", *DEFAULT_STAGES]
    analyzer = planner + 1  # the reactor's hand-off issue, created before house's
    assert cells(done.stdout, "titanic") == [
        "titanic", f"#{planner} completed", f"#{analyzer} starting", "-", "-", "-"]
    assert cells(done.stdout, "house") == ["house", f"#{house} idle", "-", "-", "-", "-"]
    assert "acme/quiet" not in done.stdout  # nothing remembered there
    assert "reading the repositories" in done.stderr  # progress, apart from the output

    as_json = run(stack, "status", "--repo", "acme/widgets", "--json", cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    documents = {d["comp"]: d for d in map(orjson.loads, as_json.stdout.splitlines())}
    assert sorted(documents) == ["house", "titanic"]
    titanic = documents["titanic"]
    assert titanic["repo"] == "acme/widgets"
    assert list(titanic["stages"]) == list(DEFAULT_STAGES)
    assert [(e["issue"], e["status"]) for e in titanic["stages"]["analyzer"]] == [
        (analyzer, "starting")]
    assert titanic["stages"]["executor"] == []
    assert titanic["stages"]["planner"][0]["since"].startswith("20")

    quiet = run(stack, "status", "--repo", "acme/quiet", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.startswith("no competition remembered for acme/quiet yet")


def test_an_unknown_repository_or_a_wrong_key_is_one_line_and_a_non_zero_exit(
    stack: Stack, tmp_path: Path,
) -> None:
    unknown = run(stack, "status", "--repo", "acme/nowhere", cwd=tmp_path)
    assert unknown.returncode == 1
    assert unknown.stderr.splitlines()[-1] == (
        "reactor: the App is not installed on acme/nowhere (or it does not exist)")

    wrong = run(stack, "status", cwd=tmp_path, PRIVATE_KEY=another_key())
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("reactor: GitHub refused the App's JWT (401)")
    assert "Traceback" not in unknown.stderr + wrong.stderr


def test_missing_settings_and_an_unreachable_redis_are_one_line_each(tmp_path: Path) -> None:
    app = {"APP_ID": "1", "PRIVATE_KEY": another_key()}
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    cases = [
        ({**app}, "reactor: REDIS_URL is not set: e.g. redis://127.0.0.1:6379/0\n"),
        ({"REDIS_URL": nowhere}, "reactor: APP_ID is not set: give the GitHub App's numeric id\n"),
        ({**app, "REDIS_URL": nowhere}, "reactor: cannot reach Redis"),
    ]
    for settings, expected in cases:
        done = reactor("status", env={**clean_env(), **settings}, cwd=tmp_path)
        assert done.returncode == 1, (settings.keys(), done.stderr)
        assert done.stderr.startswith(expected), done.stderr
        assert len(done.stderr.splitlines()) == 1 and done.stdout == ""
    bad = reactor("status", "--repo", "not a repository", env=clean_env(), cwd=tmp_path)
    assert bad.returncode == 2 and "expected owner/name" in bad.stderr


def test_the_table_escapes_user_text_and_keeps_stages_only_the_memory_names() -> None:
    recalled = {
        4: Recalled("running", "evil\x1b[2J", "planner", None),
        5: Recalled(None, "evil\x1b[2J", "old-stage", None),
        6: Recalled("idle", None, None, None),  # in no competition: not shown
    }
    shown = board("acme/x", ("planner", "analyzer"), recalled)
    assert shown.stages == ("planner", "analyzer", "old-stage")
    lines = shown.table()
    assert all("\x1b" not in line for line in lines)
    assert re.split(r"\s{2,}", lines[2].strip()) == [
        "evil\\x1b[2J", "#4 running", "-", "#5 unknown"]
    assert [orjson.loads(d)["comp"] for d in shown.documents()] == ["evil\x1b[2J"]


def another_key() -> str:
    """A valid RSA key that is not the App's."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
