"""Run a sandbox for tests and scripts: in a background thread or as a subprocess.

``with run_sandbox() as sandbox:`` serves a fresh sandbox on a free loopback port in a daemon
thread and stops it on exit; ``sandbox.url`` is what ``GITHUB_API_URL`` should be, and
``sandbox.env()`` gives every variable the reactor needs. ``SandboxProcess`` does the same in
a child process (``python -m ghsandbox``), for tests that restart or kill it.
:class:`SandboxClient` wraps the control routes and the ``user:<login>`` convention.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from starlette.applications import Starlette

from ghsandbox.app import create_app
from ghsandbox.config import SandboxConfig
from ghsandbox.receiver import ReceivedWebhook, WebhookReceiver, run_receiver
from ghsandbox.runtime import Sandbox
from ghsandbox.serving import START_TIMEOUT_S, loopback_socket, serve_in_thread

__all__ = [
    "ReceivedWebhook",
    "RunningSandbox",
    "SandboxClient",
    "SandboxProcess",
    "WebhookReceiver",
    "loopback_socket",
    "run_receiver",
    "run_sandbox",
    "serve_in_thread",
    "user_headers",
]


@dataclass
class RunningSandbox:
    """A served sandbox: its base URL, its config and (in-thread only) its internals."""

    url: str
    config: SandboxConfig
    app: Starlette | None = None

    @property
    def internals(self) -> Sandbox:
        """The in-memory sandbox (only for :func:`run_sandbox`)."""
        if self.app is None:
            raise RuntimeError("the sandbox runs in another process")
        sandbox: Sandbox = self.app.state.sandbox
        return sandbox

    def env(self) -> dict[str, str]:
        """The reactor's ``APP_ID``, ``PRIVATE_KEY``, ``WEBHOOK_SECRET``, ``GITHUB_API_URL``."""
        return {
            "APP_ID": str(self.config.app_id),
            "PRIVATE_KEY": self.config.private_key_pem,
            "WEBHOOK_SECRET": self.config.webhook_secret,
            "GITHUB_API_URL": self.url,
        }

    def client(self, **kwargs: Any) -> SandboxClient:
        return SandboxClient(self.url, **kwargs)


@contextlib.contextmanager
def run_sandbox(config: SandboxConfig | None = None, *, port: int = 0) -> Iterator[RunningSandbox]:
    """Serve a sandbox in a daemon thread until the block ends."""
    config = config or SandboxConfig.generate()
    app = create_app(config)
    with serve_in_thread(app, port=port) as url:
        yield RunningSandbox(url, config, app)


@dataclass
class SandboxProcess:
    """``python -m ghsandbox`` as a child process on a free loopback port.

    ``start()`` again after ``stop()`` restarts it on the same port (with ``state_dir`` set,
    the state carries over). The App key is handed over in a private temporary file that is
    removed as soon as the child has read it.
    """

    config: SandboxConfig
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _stderr: IO[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RunningSandbox:
        """Start (or restart, on the same port) and wait until it answers."""
        if not self.port:
            with loopback_socket() as sock:
                self.port = sock.getsockname()[1]
        with tempfile.TemporaryDirectory(prefix="sandbox-key-") as directory:
            key = Path(directory) / "app.pem"
            key.write_text(self.config.private_key_pem)
            self._stderr = tempfile.TemporaryFile()
            self.process = subprocess.Popen(
                self._args(key), stdout=subprocess.DEVNULL, stderr=self._stderr
            )
            _wait_until_up(self.url, self.process, self._stderr)
        return RunningSandbox(self.url, self.config)

    def _args(self, key: Path) -> list[str]:
        args = [
            sys.executable,
            "-m",
            "ghsandbox",
            "--port",
            str(self.port),
            "--app-id",
            str(self.config.app_id),
            "--app-slug",
            self.config.app_slug,
            "--private-key-path",
            str(key),
            "--webhook-secret",
            self.config.webhook_secret,
        ]
        for url in self.config.webhook_urls:
            args += ["--webhook-url", url]
        if self.config.state_dir is not None:
            args += ["--state-dir", str(self.config.state_dir)]
        return args

    def stop(self) -> None:
        """SIGTERM, then wait (state is saved on the way out)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> RunningSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wait_until_up(url: str, process: subprocess.Popen[bytes], stderr: IO[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr.seek(0)
            err = stderr.read().decode(errors="replace").strip()
            raise RuntimeError(f"the sandbox exited with {process.returncode}: {err}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/_sandbox/hooks", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError(f"the sandbox at {url} did not answer in {START_TIMEOUT_S}s")


def user_headers(login: str) -> dict[str, str]:
    """Headers that act as the user ``login``."""
    return {"Authorization": f"token user:{login}", "Accept": "application/vnd.github+json"}


class SandboxClient:
    """A small synchronous client for the control routes and for acting as users or the App."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=kwargs.pop("timeout", 15), **kwargs)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SandboxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def control(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"/_sandbox/{path}", json=body)
        response.raise_for_status()
        return response.json()

    def create_repo(self, owner: str, name: str, **extra: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.control(
            "POST", "repos", {"owner": owner, "name": name, **extra}
        )
        return result

    def installation_token(self, installation_id: int) -> str:
        return str(self.control("POST", "tokens", {"installation_id": installation_id})["token"])

    def drain(self, timeout: float = 10) -> int:
        return int(self.control("POST", "drain", {"timeout": timeout})["pending"])

    def webhooks(self, since: int = 0) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.control("GET", f"webhooks?since={since}")
        return result

    def as_user(self, login: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A REST call acting as the user ``login`` (extra ``headers`` are merged in)."""
        headers = {**user_headers(login), **kwargs.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kwargs)

    def as_token(self, token: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A REST call with an installation token (extra ``headers`` are merged in)."""
        headers = {
            "Authorization": f"token {token}",
            "Accept": "application/vnd.github+json",
            **kwargs.pop("headers", {}),
        }
        return self.http.request(method, path, headers=headers, **kwargs)
