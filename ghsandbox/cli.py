"""``reactor sandbox``: serve the sandbox GitHub until SIGINT or SIGTERM.

Whatever the command line does not give (App id, RSA key, webhook secret) is generated; with
``--state-dir`` the generated credentials are kept in ``app.json`` there (and the key also in
``app.pem``) and reused on the next start, so the reactor's settings stay valid. A bad
argument is one line on stderr and exit status 2; a port already in use is one line and
exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import orjson
import uvicorn
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from ghsandbox.app import create_app
from ghsandbox.config import (
    DEFAULT_APP_ID,
    DEFAULT_APP_SLUG,
    SandboxConfig,
    generate_private_key,
    generate_secret,
)
from ghsandbox.persist import APP_FILE, write_atomically

PROG = "reactor sandbox"
KEY_FILE = "app.pem"  # in --state-dir: the App key, for the reactor's PRIVATE_KEY_PATH


class _Server(uvicorn.Server):
    """uvicorn's server, but SIGINT/SIGTERM end :func:`main` normally.

    uvicorn re-raises a caught signal once it has shut down, which turns Ctrl-C into a
    ``KeyboardInterrupt`` traceback; here the signal only asks the server to stop.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        stops = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in stops}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class UsageError(Exception):
    """A bad command-line argument; the message is the one line printed."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG, description="A local GitHub stand-in (REST API + webhooks) hosting one App."
    )
    p.add_argument(
        "--port", type=int, default=3001, help="port to listen on (default 3001; 0: any)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--webhook-url",
        action="append",
        default=[],
        metavar="URL",
        help="webhook receiver, e.g. http://127.0.0.1:3000/api/github/webhooks (repeatable)",
    )
    p.add_argument("--webhook-secret", help="webhook secret (default: generated)")
    p.add_argument(
        "--private-key-path",
        type=Path,
        metavar="FILE",
        help="App RSA key, PEM (default: generated)",
    )
    p.add_argument("--app-id", type=int, help=f"App id (default {DEFAULT_APP_ID})")
    p.add_argument("--app-slug", default=None, help=f"App slug (default {DEFAULT_APP_SLUG})")
    p.add_argument("--state-dir", type=Path, metavar="DIR", help="keep state here across restarts")
    return p


def config_from(args: argparse.Namespace) -> SandboxConfig:
    """The config the arguments describe, filling gaps from ``app.json`` or by generating."""
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0..65535, got {args.port}")
    if args.app_id is not None and args.app_id <= 0:
        raise UsageError(f"--app-id must be a positive integer, got {args.app_id}")
    for url in args.webhook_url:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--webhook-url must be an http(s) URL, got {url!r}")
    saved = _saved_app(args.state_dir)
    key = _read_key(args.private_key_path) if args.private_key_path else saved.get("private_key")
    config = SandboxConfig(
        app_id=args.app_id or int(saved.get("app_id", DEFAULT_APP_ID)),
        app_slug=args.app_slug or str(saved.get("app_slug", DEFAULT_APP_SLUG)),
        private_key_pem=str(key or generate_private_key()),
        webhook_secret=args.webhook_secret or str(saved.get("webhook_secret") or generate_secret()),
        webhook_urls=tuple(args.webhook_url),
        state_dir=args.state_dir,
    )
    if args.state_dir is not None:
        _save_app(args.state_dir, config)
    return config


def _read_key(path: Path) -> str:
    try:
        pem = path.expanduser().read_text()
    except OSError as exc:
        raise UsageError(f"--private-key-path: cannot read {path}: {exc.strerror}") from None
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except Exception:  # ValueError, TypeError, cryptography's UnsupportedAlgorithm
        raise UsageError(f"--private-key-path: {path} is not a readable, unencrypted PEM "
                         "private key") from None
    if not isinstance(key, RSAPrivateKey):
        raise UsageError("--private-key-path must be an RSA key (GitHub Apps sign JWTs with "
                         "RS256)")
    return pem


def _saved_app(state_dir: Path | None) -> dict[str, Any]:
    if state_dir is None or not (state_dir / APP_FILE).is_file():
        return {}
    try:
        data = orjson.loads((state_dir / APP_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        raise UsageError(f"--state-dir: {state_dir / APP_FILE} is not readable JSON") from None
    return data if isinstance(data, dict) else {}


def _save_app(state_dir: Path, config: SandboxConfig) -> None:
    try:
        write_atomically(
            state_dir / APP_FILE,
            orjson.dumps(
                {
                    "app_id": config.app_id,
                    "app_slug": config.app_slug,
                    "private_key": config.private_key_pem,
                    "webhook_secret": config.webhook_secret,
                },
                option=orjson.OPT_INDENT_2,
            ),
        )
        (state_dir / APP_FILE).chmod(0o600)
        write_atomically(state_dir / KEY_FILE, config.private_key_pem.encode())
        (state_dir / KEY_FILE).chmod(0o600)
    except OSError as exc:
        raise UsageError(f"--state-dir: cannot write to {state_dir}: {exc.strerror}") from None


def banner(config: SandboxConfig, url: str, key_path: Path | None) -> str:
    """The few lines that tell a user how to point the reactor at this sandbox."""
    key_line = (
        f"PRIVATE_KEY_PATH={key_path}"
        if key_path
        else f'PRIVATE_KEY=<the "private_key" of: curl -s {url}/_sandbox/app>'
    )
    hooks = (
        ", ".join(config.webhook_urls)
        or f"none yet (curl -X POST {url}/_sandbox/hooks -d '{{\"url\": ...}}')"
    )
    return "\n".join(
        [
            f"Sandbox GitHub listening on {url} (App {config.app_slug!r}). Reactor settings:",
            f"  APP_ID={config.app_id}",
            f"  {key_line}",
            f"  WEBHOOK_SECRET={config.webhook_secret}",
            f"  GITHUB_API_URL={url}",
            f"Webhooks go to: {hooks}. Ctrl-C stops.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, then serve until SIGINT/SIGTERM; returns the exit status."""
    try:
        args = parser().parse_args(argv)
        config = config_from(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        print(
            f"{PROG}: error: cannot listen on {args.host}:{args.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 1
    url = f"http://{args.host}:{sock.getsockname()[1]}"
    key_path = args.private_key_path or (args.state_dir / KEY_FILE if args.state_dir else None)
    print(banner(config, url, key_path), flush=True)
    server = _Server(uvicorn.Config(create_app(config), log_level="warning", access_log=False))
    server.run(sockets=[sock])
    return 0


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, made before serving so a clash is a clean error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock
