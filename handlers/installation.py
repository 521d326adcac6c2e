"""``installation`` and ``installation_repositories``: the App installed, or given repositories.

The reactor creates its labels (status, stage and ``reactor:`` labels, with colours and
descriptions) in each repository it is given, and does nothing else on install.
https://docs.github.com/en/webhooks/webhook-events-and-payloads#installation
"""

from __future__ import annotations

from typing import Any

from gidgethub import routing, sansio

from reactor.context import Context
from reactor.errors import PayloadError
from reactor.labels import canonical_labels
from reactor.model import Event, Repo
from reactor.shell import labels, repoconfig
from reactor.store.audit import Outcome

router = routing.Router()


def _repositories(data: dict[str, Any], field: str, delivery_id: str) -> list[Repo]:
    items = data.get(field) or []
    try:
        found = []
        for item in items:
            owner, name = item["full_name"].split("/", 1)
            found.append(Repo(owner=owner, name=name, id=int(item["id"])))
        return found
    except (TypeError, KeyError, ValueError, AttributeError):
        raise PayloadError(f"payload field {field!r} must list repositories",
                           delivery_id=delivery_id) from None


@router.register("installation", action="created")
@router.register("installation_repositories", action="added")
async def install_labels(raw: sansio.Event, event: Event, ctx: Context) -> None:
    """Create the reactor's labels in every repository the App was just given."""
    field = "repositories" if event.name == "installation" else "repositories_added"
    if event.installation_id is None:
        await ctx.audit(event, Outcome.REJECTED, detail="no installation in the payload")
        return
    gh = ctx.github.for_installation(event.installation_id)
    for repo in _repositories(raw.data, field, event.delivery_id):
        config, _ = await repoconfig.load(ctx.redis, gh, repo)
        created = await labels.ensure(gh, repo.full_name, canonical_labels(config.stages))
        await ctx.audit(event, Outcome.APPLIED, detail=f"{repo.full_name}: created "
                        f"{len(created)} label(s)" + (f": {', '.join(created)}" if created else ""))


@router.register("installation")
@router.register("installation_repositories")
async def observe(raw: sansio.Event, event: Event, ctx: Context) -> None:
    """Every other installation change is audited only."""
    if event.action not in ("created", "added"):
        await ctx.audit(event, Outcome.OBSERVED)
