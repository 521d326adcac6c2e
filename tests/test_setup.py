"""``GET /setup``: registering the App from ``app-manifest.yml`` through GitHub's manifest flow,
end to end against the sandbox — ``reactor serve`` with no App, the browser's form post, the
redirect back, the code's conversion, ``.env`` — and the reactor started again from it."""

from __future__ import annotations

import html
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml

from reactor.sandbox.testing import run_sandbox
from reactor.settings import Settings
from tests.conftest import free_port, wait_for_port
from tests.test_cli import clean_env

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def serving(cwd: Path, env: dict[str, str]) -> Iterator[str]:
    """``reactor serve`` in ``cwd`` (where it reads and writes ``.env``)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "reactor.cli", "serve", "--port", str(port)],
                               cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def form(page: str) -> tuple[str, str]:
    """The setup page's form: where it posts, and the manifest it carries."""
    action = re.search(r'<form action="([^"]+)" method="post">', page)
    manifest = re.search(r'name="manifest" value="([^"]*)"', page)
    assert action and manifest, page
    return html.unescape(action[1]), html.unescape(manifest[1])


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

