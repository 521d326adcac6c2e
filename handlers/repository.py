"""``push`` (a changed ``.github/reactor.yml``) and ``issue_dependencies`` (R7's graph edges).

https://docs.github.com/en/webhooks/webhook-events-and-payloads#push
"""

from __future__ import annotations

from gidgethub import routing, sansio

from reactor.context import Context
from reactor.model import Event
from reactor.store.audit import Outcome

router = routing.Router()


@router.register("push")
@router.register("issue_dependencies")
async def observe(raw: sansio.Event, event: Event, ctx: Context) -> None:
    """Audit the change; config reloads and cycle checks land with their rules."""
    await ctx.audit(event, Outcome.OBSERVED)
