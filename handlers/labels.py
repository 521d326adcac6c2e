"""``label`` events: the reactor's own repository labels renamed or deleted are restored.

https://docs.github.com/en/webhooks/webhook-events-and-payloads#label
"""

from __future__ import annotations

from gidgethub import routing, sansio

from reactor.core.events import Event
from reactor.core.labels import canonical_labels
from reactor.shell import repo_labels, repoconfig
from reactor.shell.context import Context
from reactor.store.audit import Outcome

router = routing.Router()


@router.register("label", action="created")
@router.register("label", action="edited")
@router.register("label", action="deleted")
async def restore(raw: sansio.Event, event: Event, ctx: Context) -> None:
    """Put back a status, stage or ``reactor:`` label someone renamed or deleted."""
    lost = event.label_renamed_from if event.action == "edited" else event.label
    if event.action == "created" or event.repo is None or event.installation_id is None:
        await ctx.audit(event, Outcome.OBSERVED)
        return
    gh = ctx.github.for_installation(event.installation_id)
    config, _ = await repoconfig.load(ctx.redis, gh, event.repo)
    spec = next((s for s in canonical_labels(config.stages) if s.name == lost), None)
    if spec is None:
        await ctx.audit(event, Outcome.OBSERVED, detail="not one of the reactor's labels")
    elif event.action == "deleted":
        await repo_labels.ensure(gh, event.repo.full_name, (spec,))
        await ctx.audit(event, Outcome.APPLIED, detail=f"recreated {spec.name}")
    else:
        await repo_labels.rename_back(gh, event.repo.full_name, event.label or "", spec)
        await ctx.audit(event, Outcome.APPLIED, detail=f"renamed {event.label} back to {spec.name}")
