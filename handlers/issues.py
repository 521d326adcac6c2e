"""``issues`` events: the agents' status, stage and competition changes land here.

https://docs.github.com/en/webhooks/webhook-events-and-payloads#issues
"""

from __future__ import annotations

from gidgethub import routing, sansio

from reactor.context import Context
from reactor.model import Event
from reactor.store.audit import Outcome

router = routing.Router()

ACTIONS = (
    "opened", "edited", "labeled", "unlabeled", "closed", "reopened", "transferred", "deleted",
)


async def observe(raw: sansio.Event, event: Event, ctx: Context) -> None:
    """Audit the change; the coordination rules (R1–R6, R9) act here once they land."""
    await ctx.audit(event, Outcome.OBSERVED)


for _action in ACTIONS:
    router.add(observe, "issues", action=_action)
