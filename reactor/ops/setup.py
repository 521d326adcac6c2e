"""``GET /setup``: register the GitHub App from ``app-manifest.yml``, as Probot's setup page does.

``reactor serve`` with no App configured serves this instead of failing (its webhook route
answers 503 until the App exists). GitHub's manifest flow
(https://docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest):

1. ``GET /setup``: a page whose button POSTs the manifest, as JSON, to GitHub's
   ``/settings/apps/new`` (``?org=NAME``: ``/organizations/NAME/settings/apps/new``) with a
   random ``state``. The manifest's webhook URL is ``WEBHOOK_PROXY_URL`` when set, else this
   server's own ``/api/github/webhooks``; its ``redirect_url`` is ``/setup/done`` here.
2. GitHub shows the App's settings; once the user creates it, GitHub redirects the browser to
   ``/setup/done?code=C&state=S``.
3. ``/setup/done`` checks the state, converts the code (``POST
   /app-manifests/{code}/conversions``: no authentication, the code is single-use and valid
   for an hour) and writes ``APP_ID``, ``PRIVATE_KEY`` and ``WEBHOOK_SECRET`` to ``.env``
   (readable by this user only; its other lines kept), then links to the App's installation
   page and says to restart the reactor, which then reads them.

The routes answer local requests only (a loopback connection addressed to a loopback name,
:mod:`reactor.ops.access`), unless ``DASHBOARD_TOKEN`` is given (as for the dashboard): whoever
completes the flow receives the App's private key. Their pages carry the dashboard's security
headers, their form may post to GitHub only, and what comes from the request is checked
before it goes into an address: ``?org=`` must be a GitHub login, the returned ``code`` a
plain token (and it is quoted besides), and the ``Host`` the addresses are built from a
host name or address with at most a port. An existing ``.env`` is made readable by this
user only before the key goes in, and before the code is spent: if it cannot be, the page
says why and the same link works again once it is fixed.
"""

from __future__ import annotations

import html
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import orjson
import yaml
from dotenv import set_key
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from reactor.core.errors import ConfigError
from reactor.ops.access import Access, page_headers
from reactor.process.settings import DEFAULT_API_URL, Settings

MANIFEST = "app-manifest.yml"
WEBHOOK_PATH = "/api/github/webhooks"
STATES = 64  # pending setups remembered (each a browser tab that opened /setup)
# A GitHub login: letters, digits and single hyphens, neither first nor last, 39 at most.
LOGIN = re.compile(r"(?=[A-Za-z0-9-]{1,39}\Z)[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
CODE = re.compile(r"[A-Za-z0-9_-]{1,256}")  # a manifest conversion code (GitHub's are hex)
# A Host header: a DNS name or an IPv4 address, or an IPv6 one in brackets; at most a port.
HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                  r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])"
                  r"(?::[0-9]{1,5})?")


def manifest_path(given: Path | None = None) -> Path | None:
    """``given``, else ``./app-manifest.yml``, else the one beside the reactor's source."""
    beside = Path(__file__).resolve().parents[2] / MANIFEST  # reactor/ops/setup.py
    return given or next((p for p in (Path.cwd() / MANIFEST, beside) if p.is_file()), None)


def manifest(base_url: str, *, webhook_url: str | None) -> dict[str, Any]:
    """The manifest to post: ``app-manifest.yml`` with this server's addresses filled in."""
    path = manifest_path()
    if path is None:
        raise ConfigError(f"no {MANIFEST} in this directory or beside the reactor's source")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path} does not read as YAML ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a mapping")
    hook = dict(data.get("hook_attributes") or {})
    hook["url"] = webhook_url or base_url + WEBHOOK_PATH
    return {**data, "hook_attributes": hook, "redirect_url": base_url + "/setup/done"}


def github_web_url(api_url: str) -> str:
    """GitHub's web address for an API address: github.com, an Enterprise Server host
    (``https://HOST/api/v3``), or the sandbox (which serves both at one address)."""
    if api_url.rstrip("/") == DEFAULT_API_URL:
        return "https://github.com"
    return api_url.rstrip("/").removesuffix("/api/v3")


def make_private(path: Path) -> None:
    """Create ``path`` readable and writable by this user only, or make an existing file so
    (mode 0600) before a key is written into it: ConfigError, saying why, when it cannot be.

    A symbolic link is left as it is: python-dotenv replaces the link with a file of its own
    (created 0600) rather than write through it."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"{path} cannot be created: {exc.strerror}") from None
    found = os.lstat(path)
    if not stat.S_ISREG(found.st_mode) or not stat.S_IMODE(found.st_mode) & 0o077:
        return
    try:
        os.chmod(path, 0o600)
    except OSError as exc:
        raise ConfigError(
            f"{path} is readable by others (mode {stat.S_IMODE(found.st_mode):o}) and cannot "
            f"be made readable by its owner only ({exc.strerror}): the App's private key "
            f"will not be written there. Run `chmod 600 {path}` as its owner, then open this "
            "link again.") from None


def write_env(path: Path, app: dict[str, Any]) -> None:
    """Store the App's credentials in ``path`` (readable by this user only: created so, or
    made so first)."""
    make_private(path)
    values = {"APP_ID": str(app["id"]), "WEBHOOK_SECRET": str(app.get("webhook_secret") or ""),
              "PRIVATE_KEY": str(app["pem"]).strip().replace("\n", "\\n")}
    for key, value in values.items():
        set_key(path, key, value, quote_mode="always")


def routes(settings: Settings, *, env_file: Path = Path(".env")) -> list[Route]:
    """``/setup`` and ``/setup/done``, behind the dashboard's :class:`Access` rule."""
    access = Access(settings.dashboard_token)
    pending: dict[str, None] = {}  # states handed out, oldest first
    web = github_web_url(settings.github_api_url)
    headers = page_headers(form_action=_origin(web))

    async def start(request: Request) -> Response:
        if (refused := access.refusal(request)) is not None:
            return refused
        org = request.query_params.get("org")
        if org is not None and LOGIN.fullmatch(org) is None:
            return _refuse("?org= must be a GitHub organisation's login: letters, digits and "
                           "single hyphens (not first or last), at most 39 characters.")
        base = _base_url(request)
        if base is None:
            return _refuse("The Host header is not a host name or address (with at most a "
                           "port): the App's addresses are built from it.")
        try:
            found = manifest(base, webhook_url=settings.webhook_proxy_url)
        except ConfigError as exc:  # the server's own files are wrong: say which
            return PlainTextResponse(f"{exc}\n", status_code=500, headers=headers)
        document = orjson.dumps(found).decode()
        state = secrets.token_urlsafe(16)
        pending[state] = None
        while len(pending) > STATES:
            del pending[next(iter(pending))]
        where = f"/organizations/{org}/settings/apps/new" if org else "/settings/apps/new"
        action = f"{web}{where}?{urlencode({'state': state})}"
        return HTMLResponse(_page("Register the GitHub App", f"""
<p>No GitHub App is configured. This registers one on {html.escape(web)} from
<code>{MANIFEST}</code>: GitHub shows its settings, you confirm, and its id, key and webhook
secret are written to <code>{html.escape(str(env_file))}</code> here.</p>
<form action="{html.escape(action)}" method="post">
<input type="hidden" name="manifest" value="{html.escape(document)}">
<button type="submit">Register the GitHub App</button></form>
<p>For an organisation, open <code>/setup?org=NAME</code>.</p>"""), headers=headers)

    async def done(request: Request) -> Response:
        if (refused := access.refusal(request)) is not None:
            return refused
        code, state = request.query_params.get("code"), request.query_params.get("state")
        if not code or state is None or state not in pending:
            return _refuse("This setup link is not one this server started: open /setup "
                           "again.")
        if CODE.fullmatch(code) is None:
            return _refuse("The code GitHub returned is not a plain token (letters, digits, "
                           "'-' and '_'): open /setup again.")
        try:
            make_private(env_file)  # before the code is spent: a refusal can be fixed
        except ConfigError as exc:
            return PlainTextResponse(f"{exc}\n", status_code=500, headers=headers)
        del pending[state]
        try:
            app = await _convert(settings.github_api_url, code)
        except httpx.HTTPError as exc:
            return PlainTextResponse(f"GitHub did not convert the code: {exc}. Open /setup "
                                     "again (a code is valid for one hour, once).\n",
                                     status_code=502, headers=headers)
        write_env(env_file, app)
        page = app.get("html_url") or f"{web}/apps/{app.get('slug')}"
        install = f"{page}/installations/new"
        return HTMLResponse(_page("The GitHub App is registered", f"""
<p>App <strong>{html.escape(str(app.get('name')))}</strong> (id {int(app['id'])}) exists;
its credentials are in <code>{html.escape(str(env_file))}</code>.</p>
<ol><li><a href="{html.escape(install)}">Install it</a> on the repositories your agents use.</li>
<li>Restart <code>reactor serve</code> and the workers: they read <code>.env</code> at start.</li>
</ol>"""), headers=headers)

    return [Route("/setup", start, methods=["GET"]), Route("/setup/done", done, methods=["GET"])]


def _origin(url: str) -> str:
    """The scheme, host and port of ``url``: the one place the setup page's form may post."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _base_url(request: Request) -> str | None:
    """This server's address as the request names it (scheme, ``Host``, root path), or None
    when ``Host`` is missing, repeated or not a host with at most a port. Over the loopback
    door it is a loopback name (:func:`reactor.ops.access.loopback_host`); past the token, the
    name the operator's browser used."""
    hosts = request.headers.getlist("host")
    if len(hosts) != 1 or HOST.fullmatch(hosts[0].strip()) is None:
        return None
    scheme = "https" if request.url.scheme == "https" else "http"
    root = quote(request.scope.get("root_path", "").rstrip("/"))
    return f"{scheme}://{hosts[0].strip()}{root}"


def _refuse(reason: str) -> Response:
    return PlainTextResponse(f"{reason}\n", status_code=400, headers=page_headers())


async def _convert(api_url: str, code: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as http:
        response = await http.post(f"/app-manifests/{quote(code, safe='')}/conversions",
                                   headers={"Accept": "application/vnd.github+json"})
        response.raise_for_status()
        app: dict[str, Any] = response.json()
    if not isinstance(app.get("id"), int) or not isinstance(app.get("pem"), str):
        raise httpx.HTTPError("the conversion's answer has no App id and key")
    return app


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body style='font-family: sans-serif; max-width: 44em; margin: 2em auto'>"
            f"<h1>{title}</h1>{body}</body></html>")


def create_setup_app(settings: Settings) -> Starlette:
    """What ``reactor serve`` runs while no App is configured: the setup routes; ``/`` leads
    there, and the webhook route says why it cannot take deliveries yet."""

    async def home(request: Request) -> Response:
        return RedirectResponse("/setup" + (f"?{request.url.query}" if request.url.query else ""),
                                headers=page_headers())

    async def no_app(request: Request) -> Response:
        return PlainTextResponse("No GitHub App is configured yet: open /setup on this "
                                 "server.\n", status_code=503)

    return Starlette(routes=[*routes(settings), Route("/", home, methods=["GET"]),
                             Route(WEBHOOK_PATH, no_app, methods=["POST"])])
