"""Composes the sandbox: control routes, GitHub's REST routes, and the lifespan.

``create_app(config)`` returns a Starlette app to serve with uvicorn. The lifespan opens what
does I/O (the webhook hub's HTTP client and one sender per hook URL, the state-dir writer)
and closes it on shutdown; nothing is opened at import time. ``app.state.sandbox`` is the
:class:`~ghsandbox.runtime.Sandbox`, for tests that want to look inside.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from ghsandbox import control, manifests, persist, pipeline
from ghsandbox.config import SandboxConfig
from ghsandbox.rest import ENDPOINTS
from ghsandbox.runtime import Sandbox
from ghsandbox.state import World


def create_app(config: SandboxConfig) -> Starlette:
    """A sandbox GitHub for ``config``, state read from ``config.state_dir`` when it has one."""
    world = World()
    if config.state_dir is not None:
        persist.read_state(config.state_dir, world)
    for url in config.webhook_urls:
        if url not in world.hook_urls:
            world.hook_urls.append(url)
    sandbox = Sandbox(config, world)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        saver = persist.Saver(config.state_dir, world) if config.state_dir is not None else None
        await sandbox.hub.start(list(world.hook_urls))
        if saver is not None:
            saver.start()
        try:
            yield
        finally:
            await sandbox.hub.stop()
            if saver is not None:
                await saver.stop()

    async def not_found(request: Request, exc: Exception) -> Response:
        """GitHub answers an unknown path or method with its JSON 404 and usual headers."""
        return await pipeline.serve_unknown(sandbox, request)

    app = Starlette(
        routes=[*control.routes(sandbox), *manifests.routes(sandbox),
                *pipeline.routes(sandbox, ENDPOINTS)],
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_found},
    )
    app.state.sandbox = sandbox
    return app
