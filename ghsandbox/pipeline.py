"""The one path every REST request takes, from faults to ``ETag``.

For each request, in order: the ``latency_ms`` fault, a secondary rate limit, a faulty-route
status, authentication, the primary rate limit (before any write; for a GET after the body is
known, because a ``304`` for a matching ``If-None-Match`` costs nothing, as on GitHub:
https://docs.github.com/rest/using-the-rest-api/best-practices-for-using-the-rest-api#use-conditional-requests-if-appropriate),
then the handler. A route fault with ``after`` lets all of that happen and then replaces the
answer, whatever it was, with the fault's status. Every answer carries GitHub's headers
(``x-github-request-id``, ``x-ratelimit-*``, ``etag`` on GETs) and is written to the request
log — a path or method no route serves too (:func:`serve_unknown`): GitHub answers it with
its JSON 404 and the caller's rate-limit headers, after checking the credentials it came with.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ghsandbox.auth import authenticate
from ghsandbox.faults import RouteFault
from ghsandbox.protocol import (
    ANONYMOUS,
    Actor,
    ActorKind,
    ApiError,
    Call,
    Reply,
    not_found,
)
from ghsandbox.ratelimit import check_primary_limit, check_secondary_limit, rate_headers
from ghsandbox.runtime import Sandbox

JSON_TYPE = "application/json; charset=utf-8"
_request_ids = itertools.count(1)


class Auth(StrEnum):
    """Which credentials a route takes."""

    APP = "app"  # App JWT only
    INSTALLATION = "installation"  # installation token only
    REPO = "repo"  # installation token or user
    ANY = "any"  # any valid credential
    OPTIONAL = "optional"  # any valid credential, or none (GitHub serves these to anyone)


@dataclass(frozen=True)
class Endpoint:
    """One REST route: method, GitHub path, handler, accepted credentials."""

    method: str
    path: str
    handler: Callable[[Call], Reply]
    auth: Auth = Auth.REPO
    costs: bool = True  # False for routes GitHub does not count (``GET /rate_limit``)


def routes(sandbox: Sandbox, endpoints: Sequence[Endpoint]) -> list[Route]:
    """Starlette routes for ``endpoints``; one Route per path with every method it serves."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for endpoint in endpoints:
        by_path.setdefault(endpoint.path, {})[endpoint.method] = endpoint
    return [
        Route(path, _dispatcher(sandbox, methods), methods=list(methods))
        for path, methods in by_path.items()
    ]


def _dispatcher(sandbox: Sandbox, methods: dict[str, Endpoint]) -> Callable[[Request], Any]:
    async def dispatch(request: Request) -> Response:
        endpoint = methods.get(request.method) or methods["GET"]  # HEAD is served as GET
        return await _serve(sandbox, endpoint, request)

    return dispatch


async def _serve(sandbox: Sandbox, endpoint: Endpoint, request: Request) -> Response:
    now = sandbox.world.clock()
    actor: Actor | None = None
    fault: RouteFault | None = None
    try:
        faults = sandbox.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        check_secondary_limit(sandbox, now)
        fault = faults.route_fault(request.method, request.scope["path"])
        if fault is not None and not fault.after:
            raise _fault_error(fault)
        raw = await request.body()
        actor = _actor(sandbox, endpoint, request)
        response = _respond(sandbox, endpoint, request, raw, actor, now)
    except ApiError as error:
        response = _error_response(sandbox, request, error, actor, now)
    if fault is not None and fault.after:
        response = _error_response(sandbox, request, _fault_error(fault), actor, now, spend=False)
    _log(sandbox, request, response, actor, now)
    return response


async def serve_unknown(sandbox: Sandbox, request: Request) -> Response:
    """GitHub's answer to a path (or method) no route serves: 404 ``Not Found`` with every
    header a served call has, or 401 when the credentials sent are not valid."""
    now = sandbox.world.clock()
    actor: Actor | None = None
    try:
        actor = _optional_actor(sandbox, request)
        raise not_found()
    except ApiError as error:
        response = _error_response(sandbox, request, error, actor, now)
    _log(sandbox, request, response, actor, now)
    return response


def _log(
    sandbox: Sandbox, request: Request, response: Response, actor: Actor | None, now: float
) -> None:
    login = (actor.login or None) if actor is not None else None  # anonymous: None
    sandbox.requests.add(request.method, request.scope["path"], response.status_code, login, now)


def _optional_actor(sandbox: Sandbox, request: Request) -> Actor:
    """The caller, or :data:`ANONYMOUS` when the request carries no ``Authorization``."""
    if "authorization" not in request.headers:
        return ANONYMOUS
    return _authenticate(sandbox, request)


def _identify(sandbox: Sandbox, request: Request) -> Actor:
    """Who sent a request that was answered before authentication (a fault, a secondary
    limit, bad credentials): its answer shows that caller's budget, or the anonymous one."""
    try:
        return _optional_actor(sandbox, request)
    except ApiError:
        return ANONYMOUS


def _authenticate(sandbox: Sandbox, request: Request) -> Actor:
    return authenticate(
        request.headers.get("authorization"),
        world=sandbox.world,
        public_key=sandbox.public_key,
        app_id=sandbox.config.app_id,
        bot_login=sandbox.bot_login,
    )


def _actor(sandbox: Sandbox, endpoint: Endpoint, request: Request) -> Actor:
    if endpoint.auth is Auth.OPTIONAL:
        return _optional_actor(sandbox, request)
    actor = _authenticate(sandbox, request)
    if endpoint.auth is Auth.APP and actor.kind is not ActorKind.APP:
        raise ApiError(401, "A JSON web token could not be decoded")
    if endpoint.auth is Auth.INSTALLATION and actor.kind is not ActorKind.INSTALLATION:
        raise ApiError(
            403,
            "You must authenticate with an installation access token in order to "
            "list repositories for an installation.",
        )
    return actor


def _respond(
    sandbox: Sandbox, endpoint: Endpoint, request: Request, raw: bytes, actor: Actor, now: float
) -> Response:
    is_get = request.method == "GET"
    if not is_get:
        check_primary_limit(sandbox, actor, now, request)
    call = Call(
        method=request.method,
        path=request.scope["path"],
        url=_public_url(request),
        params=request.path_params,
        query=request.query_params,
        body=_parse(raw),
        actor=actor,
        view=sandbox.view(_base(request)),
        sandbox=sandbox,
    )
    try:
        reply = endpoint.handler(call)
    finally:
        call.events.flush()
    body = orjson.dumps(reply.body) if reply.body is not None else b""
    headers = {"content-type": JSON_TYPE, **reply.headers}
    if is_get:
        etag = 'W/"' + hashlib.sha256(body).hexdigest()[:40] + '"'
        headers["etag"] = etag
        headers["cache-control"] = "private, max-age=60, s-maxage=60"
        if etag in request.headers.get("if-none-match", ""):
            headers.pop("link", None)
            return _response(sandbox, 304, b"", headers, actor, now, spend=False)
        if endpoint.costs:
            check_primary_limit(sandbox, actor, now, request)
    body = body if reply.status != 204 else b""
    return _response(sandbox, reply.status, body, headers, actor, now, spend=endpoint.costs)


def _response(
    sandbox: Sandbox,
    status: int,
    body: bytes,
    headers: dict[str, str],
    actor: Actor,
    now: float,
    *,
    spend: bool = True,
) -> Response:
    if spend:
        sandbox.limits.spend(actor.rate_key, now)
    headers.update(rate_headers(sandbox, actor, now))
    headers["x-github-request-id"] = _request_id()
    headers["x-github-api-version-selected"] = "2022-11-28"
    if status in (204, 304):
        headers.pop("content-type", None)
    return Response(body, status_code=status, headers=headers)


def _error_response(
    sandbox: Sandbox,
    request: Request,
    error: ApiError,
    actor: Actor | None,
    now: float,
    *,
    spend: bool = True,
) -> Response:
    """GitHub's error answer; a rate-limited call (or one already counted) spends nothing, nor
    does one answered before its caller was authenticated (``actor`` None)."""
    headers = {"content-type": JSON_TYPE, **error.headers}
    limited = error.status in (403, 429) and "x-ratelimit-remaining" in error.headers
    body = orjson.dumps(error.body())
    spend = spend and not limited and actor is not None
    shown = actor or _identify(sandbox, request)
    return _response(sandbox, error.status, body, headers, shown, now, spend=spend)


def _fault_error(fault: RouteFault) -> ApiError:
    """What a faulty route answers: GitHub's error body for the fault's status."""
    return ApiError(fault.status, "Server Error" if fault.status >= 500 else "Sandbox fault")


def _parse(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "Problems parsing JSON") from None


def _base(request: Request) -> str:
    """``scheme://host[:port]`` as the client addressed the sandbox (links point back to it)."""
    host = request.headers.get("host") or "{}:{}".format(*(request.scope.get("server") or ("", 0)))
    return f"{request.scope.get('scheme', 'http')}://{host}"


def _public_url(request: Request) -> str:
    return f"{_base(request)}{request.scope['path']}"


def _request_id() -> str:
    n = next(_request_ids)
    scrambled = n * 2654435761 & 0xFFFFFFFF
    return f"{os.getpid() & 0xFFFF:04X}:{n >> 16:04X}:{n & 0xFFFF:04X}:{scrambled:08X}"
