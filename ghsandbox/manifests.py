"""GitHub's App manifest flow, for ``GET /setup`` to be tried and tested end to end.

https://docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest

* ``POST /settings/apps/new`` (and ``/organizations/{org}/settings/apps/new``), a browser form
  with a ``manifest`` field (JSON) and ``?state=``: GitHub shows the App's settings for the
  user to confirm; the sandbox confirms at once and redirects to the manifest's
  ``redirect_url`` with ``?code=…&state=…``.
* ``POST /app-manifests/{code}/conversions`` (REST, no authentication): the code, single-use and
  valid for an hour, becomes the App's credentials — the integration, ``client_id``,
  ``client_secret``, ``webhook_secret`` and ``pem``. The sandbox hosts one App, so these are
  its own; the manifest's ``hook_attributes.url`` becomes a hook receiver, as GitHub points
  the new App's webhook there.
"""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlencode

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from ghsandbox.runtime import Sandbox

CODE_LIFETIME_S = 3600.0
JSON_TYPE = "application/json; charset=utf-8"


def routes(sandbox: Sandbox) -> list[Route]:
    codes: dict[str, tuple[float, dict[str, Any]]] = {}  # code -> (issued at, manifest)

    async def new_app(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        try:
            manifest = orjson.loads(form.get("manifest", [""])[0])
        except orjson.JSONDecodeError:
            return PlainTextResponse("The manifest is not JSON.\n", status_code=422)
        redirect = manifest.get("redirect_url") if isinstance(manifest, dict) else None
        if not isinstance(redirect, str) or not redirect.startswith(("http://", "https://")):
            return PlainTextResponse("The manifest needs a redirect_url.\n", status_code=422)
        code = secrets.token_hex(10)
        codes[code] = (time.monotonic(), manifest)
        query = {"code": code, **({"state": request.query_params["state"]}
                                  if "state" in request.query_params else {})}
        return RedirectResponse(f"{redirect}?{urlencode(query)}", status_code=302)

    async def convert(request: Request) -> Response:
        issued, manifest = codes.pop(request.path_params["code"], (0.0, None))
        if manifest is None or time.monotonic() - issued > CODE_LIFETIME_S:
            raise HTTPException(404)  # answered as GitHub answers any 404 (app.py)
        hook = manifest.get("hook_attributes") or {}
        if isinstance(hook.get("url"), str) and hook["url"] not in sandbox.world.hook_urls:
            sandbox.hub.add_hook(hook["url"], concurrency=1)
            sandbox.world.hook_urls.append(hook["url"])
            sandbox.world.touch()
        config, base = sandbox.config, str(request.base_url).rstrip("/")
        app = {**sandbox.view(base).app(), "client_id": f"Iv1.{config.app_id:016x}",
               "client_secret": secrets.token_hex(20), "webhook_secret": config.webhook_secret,
               "pem": config.private_key_pem}
        return _json(app, 201)

    return [
        Route("/settings/apps/new", new_app, methods=["POST"]),
        Route("/organizations/{org}/settings/apps/new", new_app, methods=["POST"]),
        Route("/app-manifests/{code}/conversions", convert, methods=["POST"]),
    ]


def _json(body: Any, status: int) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON_TYPE)
