"""Control routes under ``/_sandbox/``: how tests, benchmarks and users drive the sandbox.

The names in the spec (section 5) are fixed; the others are documented here and in the
README section:

* ``GET /_sandbox/app`` — the App's ``app_id``, ``app_slug``, ``private_key``,
  ``webhook_secret``.
* ``POST /_sandbox/repos`` ``{"owner", "name"[, "owner_type": "Organization"|"User", "installer"]}``
  — create a repository with the App installed (``installation`` created, or
  ``installation_repositories`` added when the owner already has the App); answers
  ``{"installation_id", "repository"}``. Owners are organizations unless ``owner_type`` says
  ``User``; an existing repository is answered as is (200) and sends nothing.
* ``POST /_sandbox/hooks`` ``{"url"[, "concurrency": N]}`` — add a webhook receiver (N deliveries
  in flight to it; 1 keeps them in order). ``GET /_sandbox/hooks`` lists them.
* ``POST /_sandbox/faults`` — see :mod:`ghsandbox.faults`; ``{}`` clears.
* ``GET /_sandbox/requests[?since=N]``, ``GET /_sandbox/webhooks[?since=N]`` — the logs.
* ``POST /_sandbox/reset`` — forget all state (App credentials and start-up hooks stay).
* ``POST /_sandbox/token-lifetime`` ``{"seconds": N}`` — lifetime of tokens minted from now on.
* ``POST /_sandbox/tokens`` ``{"installation_id"}`` — mint an installation token without a JWT.
* ``POST /_sandbox/drain`` ``{"timeout": s}`` — wait until every queued webhook was attempted;
  answers ``{"pending": n}`` (0 when drained).
* ``POST /_sandbox/suspend`` ``{"installation_id"[, "suspended": false]}`` — suspend an
  installation (or lift it) as its account's owner would on GitHub: its ``suspended_at`` and
  ``suspended_by`` are set, and its tokens, old and new, are refused with 403 "This
  installation has been suspended" until it is lifted; answers ``{"installation_id",
  "suspended_at"}``. (GitHub's ``installation`` ``suspend``/``unsuspend`` webhooks are not
  sent.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ghsandbox.faults import Faults, FaultSpecError
from ghsandbox.model import AccountType
from ghsandbox.runtime import Sandbox
from ghsandbox.state import iso

JSON_TYPE = "application/json; charset=utf-8"


class ControlError(Exception):
    """A bad control request; answered 400 (or ``status``) with ``{"message"}``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON_TYPE)


async def _object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        raise ControlError("body is not JSON") from None
    if not isinstance(body, dict):
        raise ControlError("body must be a JSON object")
    return body


def _since(request: Request) -> int:
    raw = request.query_params.get("since", "0")
    if not raw.isdigit():
        raise ControlError("since must be a non-negative integer")
    return int(raw)


def _base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


Handler = Callable[[Sandbox, Request], Awaitable[Response]]


async def get_app(sandbox: Sandbox, request: Request) -> Response:
    config = sandbox.config
    return _json(
        {
            "app_id": config.app_id,
            "app_slug": config.app_slug,
            "private_key": config.private_key_pem,
            "webhook_secret": config.webhook_secret,
        }
    )


async def create_repo(sandbox: Sandbox, request: Request) -> Response:
    body = await _object(request)
    owner, name = body.get("owner"), body.get("name")
    if not (isinstance(owner, str) and owner and isinstance(name, str) and name):
        raise ControlError('give "owner" and "name" as non-empty strings')
    if "/" in owner + name or any(c.isspace() for c in owner + name):
        raise ControlError("owner and name may not contain slashes or spaces")
    kind = {"Organization": AccountType.ORGANIZATION, "User": AccountType.USER}.get(
        body.get("owner_type", "Organization")
    )
    if kind is None:
        raise ControlError('owner_type must be "Organization" or "User"')
    world, view = sandbox.world, sandbox.view(_base(request))
    existing = world.repo(owner, name)
    if existing is not None:
        return _json(
            {"installation_id": existing.installation_id, "repository": view.repository(existing)}
        )
    repo, created = world.add_repo(owner, name, kind)
    installer = body.get("installer") or owner
    sandbox.emitter(_base(request), str(installer)).installation(
        world.installations[repo.installation_id], repo, created=created
    )
    return _json(
        {"installation_id": repo.installation_id, "repository": view.repository(repo)}, 201
    )


async def add_hook(sandbox: Sandbox, request: Request) -> Response:
    body = await _object(request)
    url, concurrency = body.get("url"), body.get("concurrency", 1)
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ControlError('give "url" as an http(s) URL')
    if not isinstance(concurrency, int) or not 1 <= concurrency <= 64:
        raise ControlError("concurrency must be an integer from 1 to 64")
    hook = sandbox.hub.add_hook(url, concurrency=concurrency)
    if url not in sandbox.world.hook_urls:
        sandbox.world.hook_urls.append(url)
        sandbox.world.touch()
    return _json({"id": hook.id, "url": hook.url, "concurrency": hook.concurrency}, 201)


async def list_hooks(sandbox: Sandbox, request: Request) -> Response:
    return _json(
        [{"id": h.id, "url": h.url, "concurrency": h.concurrency} for h in sandbox.hub.hooks]
    )


async def set_faults(sandbox: Sandbox, request: Request) -> Response:
    try:
        faults = Faults.parse(await _object(request), now=sandbox.world.clock())
    except FaultSpecError as exc:
        raise ControlError(str(exc)) from None
    sandbox.set_faults(faults)
    return _json({"ok": True})


async def list_requests(sandbox: Sandbox, request: Request) -> Response:
    return _json(sandbox.requests.since(_since(request)))


async def list_webhooks(sandbox: Sandbox, request: Request) -> Response:
    return _json([d.summary() for d in sandbox.hub.log.finished_since(_since(request))])


async def reset(sandbox: Sandbox, request: Request) -> Response:
    sandbox.reset()
    sandbox.hub.keep_only(list(sandbox.config.webhook_urls))
    for url in sandbox.config.webhook_urls:  # back, should PATCH /app/hook/config have moved it
        sandbox.hub.add_hook(url)
    return _json({"ok": True})


async def token_lifetime(sandbox: Sandbox, request: Request) -> Response:
    seconds = (await _object(request)).get("seconds")
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0 < seconds <= 86_400
    ):
        raise ControlError("seconds must be a number from 0 (exclusive) to 86400")
    sandbox.token_lifetime_s = float(seconds)
    return _json({"seconds": seconds})


async def mint_token(sandbox: Sandbox, request: Request) -> Response:
    installation_id = (await _object(request)).get("installation_id")
    if installation_id not in sandbox.world.installations:
        raise ControlError("unknown installation_id", 404)
    value, token = sandbox.world.mint_token(installation_id, sandbox.token_lifetime_s)
    return _json({"token": value, "expires_at": iso(token.expires_at)}, 201)


async def drain(sandbox: Sandbox, request: Request) -> Response:
    timeout = (await _object(request)).get("timeout", 10)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 <= timeout <= 300:
        raise ControlError("timeout must be a number of seconds from 0 to 300")
    return _json({"pending": await sandbox.hub.drain(float(timeout))})


async def suspend(sandbox: Sandbox, request: Request) -> Response:
    body = await _object(request)
    wanted = body.get("installation_id")
    installation = sandbox.world.installations.get(wanted) if isinstance(wanted, int) else None
    if installation is None:
        raise ControlError("unknown installation_id", 404)
    suspended = body.get("suspended", True)
    if not isinstance(suspended, bool):
        raise ControlError("suspended must be true or false")
    installation.suspended_at = sandbox.world.now() if suspended else None
    sandbox.world.touch()
    return _json({"installation_id": installation.id,
                  "suspended_at": installation.suspended_at})


def _route(sandbox: Sandbox, path: str, handler: Handler, method: str) -> Route:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(sandbox, request)
        except ControlError as exc:
            return _json({"message": str(exc)}, exc.status)

    return Route(path, endpoint, methods=[method])


def routes(sandbox: Sandbox) -> list[Route]:
    table: list[tuple[str, Handler, str]] = [
        ("/_sandbox/app", get_app, "GET"),
        ("/_sandbox/repos", create_repo, "POST"),
        ("/_sandbox/hooks", add_hook, "POST"),
        ("/_sandbox/hooks", list_hooks, "GET"),
        ("/_sandbox/faults", set_faults, "POST"),
        ("/_sandbox/requests", list_requests, "GET"),
        ("/_sandbox/webhooks", list_webhooks, "GET"),
        ("/_sandbox/reset", reset, "POST"),
        ("/_sandbox/token-lifetime", token_lifetime, "POST"),
        ("/_sandbox/tokens", mint_token, "POST"),
        ("/_sandbox/drain", drain, "POST"),
        ("/_sandbox/suspend", suspend, "POST"),
    ]
    return [_route(sandbox, path, handler, method) for path, handler, method in table]
