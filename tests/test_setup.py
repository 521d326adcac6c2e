"""``GET /setup``: registering the App from ``app-manifest.yml`` through GitHub's manifest flow,
end to end against the sandbox — ``reactor serve`` with no App, the browser's form post, the
redirect back, the code's conversion, ``.env`` — and the reactor started again from it; and
what the pages refuse (issue 17: a rebound name, a bad ``?org=`` or ``code``, a ``.env``
others can read)."""

from __future__ import annotations

import html
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml

from ghsandbox.testing import run_sandbox
from reactor.core.errors import ConfigError
from reactor.ops import setup
from reactor.process.settings import Settings
from tests.conftest import free_port, stop_group, wait_for_port
from tests.test_cli import clean_env

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def serving(cwd: Path, env: dict[str, str]) -> Iterator[str]:
    """``reactor serve`` in ``cwd`` (where it reads and writes ``.env``)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "reactor", "serve", "--port", str(port)],
                               cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(process)


def form(page: str) -> tuple[str, str]:
    """The setup page's form: where it posts, and the manifest it carries."""
    action = re.search(r'<form action="([^"]+)" method="post">', page)
    manifest = re.search(r'name="manifest" value="([^"]*)"', page)
    assert action and manifest, page
    return html.unescape(action[1]), html.unescape(manifest[1])


def register(action: str, document: str) -> str:
    """The browser's post of the manifest to GitHub, who redirects it back: that address."""
    confirmed = httpx.post(action, data={"manifest": document})
    assert confirmed.status_code == 302, confirmed.text
    return str(confirmed.headers["location"])


def test_the_manifest_flow_writes_the_apps_credentials_and_the_reactor_starts_with_them(
    tmp_path: Path, redis_url: str,
) -> None:
    with run_sandbox() as sandbox:
        env = {**clean_env(), "GITHUB_API_URL": sandbox.url}
        with serving(tmp_path, env) as url:
            assert httpx.post(f"{url}/api/github/webhooks", content=b"{}").status_code == 503
            page = httpx.get(f"{url}/", follow_redirects=True)
            assert page.status_code == 200 and "Register the GitHub App" in page.text
            action, document = form(page.text)
            manifest = yaml.safe_load(document)  # JSON is YAML
            wanted = yaml.safe_load((ROOT / "app-manifest.yml").read_text())
            assert manifest["default_permissions"] == wanted["default_permissions"]
            assert manifest["default_events"] == wanted["default_events"]
            assert manifest["hook_attributes"]["url"] == f"{url}/api/github/webhooks"
            assert action.startswith(f"{sandbox.url}/settings/apps/new?state=")

            confirmed = httpx.post(action, data={"manifest": document})  # the browser's post
            assert confirmed.status_code == 302
            back = confirmed.headers["location"]
            assert back.startswith(f"{url}/setup/done?code=")
            done = httpx.get(back)
            assert done.status_code == 200 and "installations/new" in done.text
            assert httpx.get(back).status_code == 400  # a setup link works once
            assert "not one this server started" in httpx.get(
                f"{url}/setup/done?code=x&state=forged").text

        dotenv = tmp_path / ".env"
        assert stat.S_IMODE(dotenv.stat().st_mode) == 0o600
        settings = Settings.from_env({}, env_file=dotenv)
        assert settings.app_id == sandbox.config.app_id
        assert settings.private_key is not None
        assert settings.private_key.strip() == sandbox.config.private_key_pem.strip()
        assert settings.webhook_secrets == (sandbox.config.webhook_secret.encode(),)
        hooks = httpx.get(f"{sandbox.url}/_sandbox/hooks").json()
        assert f"{url}/api/github/webhooks" in [h["url"] for h in hooks]

        with serving(tmp_path, {**env, "REDIS_URL": redis_url}) as again:
            assert httpx.get(f"{again}/readyz").status_code == 200
            unsigned = httpx.post(f"{again}/api/github/webhooks", content=b"{}",
                                  headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": "d"})
            assert unsigned.status_code == 401  # a configured App: signatures are checked


def test_a_used_or_unknown_code_is_not_converted(tmp_path: Path) -> None:
    with run_sandbox() as sandbox:
        assert httpx.post(f"{sandbox.url}/app-manifests/nope/conversions").status_code == 404
        manifest = '{"url": "https://example.com", "redirect_url": "http://127.0.0.1:1/done"}'
        sent = httpx.post(f"{sandbox.url}/settings/apps/new", data={"manifest": manifest})
        code = re.search(r"code=(\w+)", sent.headers["location"])
        assert code is not None
        first = httpx.post(f"{sandbox.url}/app-manifests/{code[1]}/conversions")
        assert first.status_code == 201 and first.json()["pem"] == sandbox.config.private_key_pem
        assert httpx.post(f"{sandbox.url}/app-manifests/{code[1]}/conversions").status_code == 404



# -- what the setup pages refuse (issue 17, findings 2, 5 and 7) -------------------------------

ATTACKER = "attacker.example:3000"


def test_a_page_that_rebinds_its_name_to_loopback_gets_no_setup_page(tmp_path: Path) -> None:
    """A browser on this machine sends the name of the page it shows as ``Host``: a page
    elsewhere whose name now points at 127.0.0.1 must not read the setup ``state`` (nor the
    manifest, nor complete the flow with its own code)."""
    with serving(tmp_path, clean_env()) as url:
        for path in ("/setup", "/setup/done?code=abc&state=s"):
            rebound = httpx.get(f"{url}{path}", headers={"Host": ATTACKER})
            assert rebound.status_code == 403, path
            assert "state" not in rebound.text and "manifest" not in rebound.text
        for host in ("127.0.0.1", "LOCALHOST:3000", "[::1]:3000"):
            assert httpx.get(f"{url}/setup", headers={"Host": host}).status_code == 200, host


def test_the_setup_pages_carry_the_dashboards_security_headers(tmp_path: Path) -> None:
    with run_sandbox() as sandbox, serving(tmp_path, {**clean_env(),
                                                      "GITHUB_API_URL": sandbox.url}) as url:
        page = httpx.get(f"{url}/setup")
        refused = httpx.get(f"{url}/setup?org=-bad")
    assert page.status_code == 200 and refused.status_code == 400
    for response in (page, refused):
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
    assert f"form-action {sandbox.url}" in page.headers["content-security-policy"]
    assert "form-action 'none'" in refused.headers["content-security-policy"]


@pytest.mark.parametrize("org", ["x/../../../login/device?z=", "-acme", "acme-", "ac--me",
                                 "a" * 40, "acme inc", ""])
def test_an_org_that_is_not_a_github_login_is_a_400_that_says_why(
        tmp_path: Path, org: str) -> None:
    with serving(tmp_path, clean_env()) as url:
        response = httpx.get(f"{url}/setup", params={"org": org})
    assert response.status_code == 400
    assert "must be a GitHub organisation's login" in response.text
    assert "<form" not in response.text


def test_an_org_login_posts_the_manifest_to_that_organisation(tmp_path: Path) -> None:
    with serving(tmp_path, clean_env()) as url:
        page = httpx.get(f"{url}/setup", params={"org": "Acme-Inc-2"})
    assert page.status_code == 200
    action, _ = form(page.text)
    assert action.startswith("https://github.com/organizations/Acme-Inc-2/settings/apps/new"
                             "?state=")


def test_a_code_that_is_not_a_plain_token_is_refused_and_the_link_still_works(
        tmp_path: Path) -> None:
    """A ``code`` that would change the conversion's path is refused before anything is
    asked of GitHub, and the setup's ``state`` stays usable for GitHub's real code."""
    with run_sandbox() as sandbox:
        with serving(tmp_path, {**clean_env(), "GITHUB_API_URL": sandbox.url}) as url:
            action, document = form(httpx.get(f"{url}/setup").text)
            back = register(action, document)
            state = re.search(r"state=([^&]+)", back)
            assert state is not None
            for code in ("x/../../../user", "abc?x=1", "a b", "%2e%2e"):
                bad = httpx.get(f"{url}/setup/done", params={"code": code, "state": state[1]})
                assert bad.status_code == 400 and "not a plain token" in bad.text, code
            assert httpx.get(back).status_code == 200
    assert (tmp_path / ".env").is_file()


def test_an_existing_env_others_can_read_is_made_private_before_the_key_goes_in(
        tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("LOG_LEVEL=debug\n")
    dotenv.chmod(0o644)
    with run_sandbox() as sandbox:
        with serving(tmp_path, {**clean_env(), "GITHUB_API_URL": sandbox.url}) as url:
            back = register(*form(httpx.get(f"{url}/setup").text))
            assert httpx.get(back).status_code == 200
    assert stat.S_IMODE(dotenv.stat().st_mode) == 0o600
    written = dotenv.read_text()
    assert "LOG_LEVEL=debug" in written and "PRIVATE_KEY=" in written


def test_an_env_that_cannot_be_made_private_gets_no_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As root every chmod succeeds, so the refusal is seen with one that fails."""
    dotenv = tmp_path / ".env"
    dotenv.write_text("LOG_LEVEL=debug\n")
    dotenv.chmod(0o644)

    def refused(path: object, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chmod", refused)
    with pytest.raises(ConfigError, match=r"readable by others \(mode 644\).*chmod 600"):
        setup.write_env(dotenv, {"id": 1, "pem": "-----BEGIN KEY-----", "webhook_secret": "s"})
    assert dotenv.read_text() == "LOG_LEVEL=debug\n"
