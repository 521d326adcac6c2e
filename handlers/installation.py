"""``installation`` and ``installation_repositories``: the App installed, or given repositories.

https://docs.github.com/en/webhooks/webhook-events-and-payloads#installation
"""

from __future__ import annotations

from gidgethub import routing, sansio

from reactor.context import Context
from reactor.model import Event
from reactor.store.audit import Outcome

router = routing.Router()


@router.register("installation")
@router.register("installation_repositories")
async def observe(raw: sansio.Event, event: Event, ctx: Context) -> None:
    """Audit the change; creating the canonical labels lands with the rules."""
    await ctx.audit(event, Outcome.OBSERVED)
