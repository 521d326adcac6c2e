"""The one index of webhook handlers: each module owns a router for its event family."""

from gidgethub.routing import Router

from handlers import dependencies, installation, issues, labels, repository

router = Router(issues.router, labels.router, installation.router, repository.router,
                dependencies.router)

__all__ = ["router"]
