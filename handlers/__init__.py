"""The one index of webhook handlers: each module owns a router for its event family.

Issue, dependency and sub-issue events join their competition's turn
(:mod:`reactor.shell.turn`), whose handlers leave what they find with the turn's intake; every
other event is handled alone, in a job of its own (:mod:`reactor.entrypoints.jobs`).
"""

from gidgethub.routing import Router

from handlers import dependencies, installation, issues, labels, repository, sub_issues

router = Router(installation.router, labels.router, repository.router)
turn_router = Router(issues.router, dependencies.router, sub_issues.router)

__all__ = ["router", "turn_router"]
