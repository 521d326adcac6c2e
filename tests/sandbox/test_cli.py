"""The command line: readable errors, generated credentials, state kept across restarts."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from ghsandbox.cli import main
from ghsandbox.config import SandboxConfig
from ghsandbox.testing import SandboxProcess, user_headers


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "nope"],
        ["--port", "70000"],
        ["--webhook-url", "ftp://x"],
        ["--app-id", "-3"],
        ["--private-key-path", "/nonexistent/key.pem"],
        ["--bogus"],
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("reactor sandbox: error:")


def test_a_key_that_is_not_pem_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "key.pem"
    key.write_text("not a key")
    assert main(["--private-key-path", str(key)]) == 2
    assert "PEM" in capsys.readouterr().err


def test_python_dash_m_prints_usage() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ghsandbox", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0 and "--webhook-url" in done.stdout


def test_state_dir_survives_a_restart(base_config: SandboxConfig, tmp_path: Path) -> None:
    config = replace(base_config, state_dir=tmp_path / "state")
    process = SandboxProcess(config)
    with process as running:
        created = httpx.post(
            f"{running.url}/_sandbox/repos", json={"owner": "acme", "name": "w"}
        ).json()
        token = httpx.post(
            f"{running.url}/_sandbox/tokens", json={"installation_id": created["installation_id"]}
        ).json()["token"]
        issue = httpx.post(
            f"{running.url}/repos/acme/w/issues",
            headers=user_headers("ann"),
            json={"title": "kept", "labels": ["comp:x"]},
        ).json()
    with process as running:
        headers = {"Authorization": f"token {token}"}
        again = httpx.get(f"{running.url}/repos/acme/w/issues/{issue['number']}", headers=headers)
        assert again.status_code == 200
        assert again.json()["title"] == "kept" and again.json()["labels"][0]["name"] == "comp:x"
        assert again.json()["user"]["id"] == issue["user"]["id"]
        app = httpx.get(f"{running.url}/_sandbox/app").json()
        assert app["webhook_secret"] == config.webhook_secret
        second = httpx.post(
            f"{running.url}/repos/acme/w/issues", headers=headers, json={"title": "n"}
        )
        assert second.json()["number"] == 2 and second.json()["id"] != issue["id"]
