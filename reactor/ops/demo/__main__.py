"""``python -m reactor.ops.demo --sandbox URL``: the demo agents, until Ctrl-C or SIGTERM.

They receive the sandbox's webhooks on a loopback port of their own (added as a hook through
``POST /_sandbox/hooks``, one delivery at a time so that they arrive in order), check each
delivery's ``X-Hub-Signature-256`` as any webhook receiver must, and act through the
sandbox's REST API as their own users.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys

import httpx
import uvicorn
from gidgethub import BadRequest, ValidationFailure, sansio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reactor.ops.demo.agents import Agents, Users

DEMO_REPO = "demo/agents"


def receiver(agents: Agents, secret: str) -> Starlette:
    async def deliver(request: Request) -> Response:
        try:  # gidgethub checks the signature and decodes the body
            event = sansio.Event.from_http(request.headers, await request.body(), secret=secret)
        except (ValidationFailure, BadRequest) as exc:
            return Response(f"refused: {exc}", status_code=401)
        agents.on_webhook(event.event, event.data)
        return Response(status_code=204)

    return Starlette(routes=[Route("/", deliver, methods=["POST"])])


async def run(sandbox_url: str, repo: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as http:
        app = (await http.get("/_sandbox/app")).raise_for_status().json()
        agents = Agents(Users(http, repo), app_login=f"{app['app_slug']}[bot]")
        listening = socket.create_server(("127.0.0.1", 0))  # accepts before uvicorn runs
        port = listening.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(
            receiver(agents, app["webhook_secret"]), log_level="warning", access_log=False,
            lifespan="off"))
        serving = asyncio.create_task(server.serve(sockets=[listening]))
        await http.post("/_sandbox/hooks", json={"url": f"http://127.0.0.1:{port}/",
                                                 "concurrency": 1})
        playing = asyncio.create_task(_play(agents))
        await serving  # until uvicorn sees Ctrl-C or SIGTERM
        playing.cancel()


async def _play(agents: Agents) -> None:
    try:
        await agents.play()
    except httpx.HTTPError as exc:
        print(f"demo agents: stopped playing, the sandbox failed: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reactor.ops.demo", description=__doc__)
    parser.add_argument("--sandbox", required=True, metavar="URL", help="the sandbox GitHub")
    parser.add_argument("--repo", default=DEMO_REPO, metavar="O/R",
                        help=f"the repository the agents work in (default {DEMO_REPO})")
    args = parser.parse_args(argv)
    try:
        asyncio.run(run(args.sandbox, args.repo))
    except KeyboardInterrupt:
        pass
    except httpx.HTTPError as exc:
        print(f"demo agents: the sandbox failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
