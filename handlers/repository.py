"""``push``: ``.github/reactor.yml`` may have changed.

https://docs.github.com/en/webhooks/webhook-events-and-payloads#push
"""

from __future__ import annotations

from gidgethub import routing, sansio

from reactor.core.events import Event
from reactor.shell import repoconfig
from reactor.shell.context import Context
from reactor.store.audit import Outcome

router = routing.Router()


@router.register("push")
async def forget_config(raw: sansio.Event, event: Event, ctx: Context) -> None:
    """A push to the default branch may change the config: read it again next time."""
    if event.repo is not None and event.ref == f"refs/heads/{event.default_branch}":
        await repoconfig.forget(ctx.redis, event.repo)
        await ctx.audit(event, Outcome.APPLIED, detail="config will be read again")
    else:
        await ctx.audit(event, Outcome.OBSERVED, detail="not the default branch")

