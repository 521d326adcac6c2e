"""The baseline of SPEC §7: a Starlette endpoint that only reads the body and answers 202.

Served by ``bench/ingest.py`` through uvicorn with the reactor's own settings (uvloop,
httptools, one process, no access log), so the difference is the reactor's ingest work.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def webhook(request: Request) -> Response:
    await request.body()
    return Response(status_code=202)


app = Starlette(routes=[Route("/api/github/webhooks", webhook, methods=["POST"])])
