"""``label`` events: repository labels created, edited or deleted.

https://docs.github.com/en/webhooks/webhook-events-and-payloads#label
"""

from __future__ import annotations

from gidgethub import routing, sansio

from reactor.context import Context
from reactor.model import Event
from reactor.store.audit import Outcome

router = routing.Router()


@router.register("label", action="created")
@router.register("label", action="edited")
@router.register("label", action="deleted")
async def observe(raw: sansio.Event, event: Event, ctx: Context) -> None:
    """Audit the change; restoring the reactor's own labels lands with the rules."""
    await ctx.audit(event, Outcome.OBSERVED)
