"""``installation`` and ``installation_repositories``: the App installed or uninstalled, given
repositories or deprived of them.

The reactor creates its labels (status, stage and ``reactor:`` labels, with colours and
descriptions) in each repository it is given, and does nothing else on install. On uninstall
it forgets what it kept of the installation's repositories, and of the installation itself;
a repository taken from an installation is forgotten too (SPEC §6,
:mod:`reactor.store.tenants`). GitHub marks the uninstall's ``repositories`` list optional, so
the repositories the reactor has seen with the installation are forgotten as well (its
index, written here when the App is given repositories, by the sweep and by the turns). The
audit log keeps its records, for at most :data:`reactor.store.audit.MAX_AGE`.
https://docs.github.com/en/webhooks/webhook-events-and-payloads#installation
https://docs.github.com/en/webhooks/webhook-events-and-payloads#installation_repositories
"""

from __future__ import annotations

from datetime import UTC, datetime

from gidgethub import routing, sansio

from reactor.core.events import Event
from reactor.core.labels import canonical_labels
from reactor.shell import repo_labels, repoconfig
from reactor.shell.context import Context
from reactor.store import tenants
from reactor.store.audit import Outcome

router = routing.Router()
NAMED = 5  # repositories an audit record names; the rest are counted


@router.register("installation", action="created")
@router.register("installation_repositories", action="added")
async def install_labels(raw: sansio.Event, event: Event, ctx: Context) -> None:
    """Create the reactor's labels in every repository the App was just given."""
    if event.installation_id is None:
        await ctx.audit(event, Outcome.REJECTED, detail="no installation in the payload")
        return
    await tenants.index(ctx.redis, event.installation_id, event.repositories)
    await tenants.unmark(ctx.redis, event.repositories)
    gh = ctx.github.for_installation(event.installation_id)
    for repo in event.repositories:
        config, _ = await repoconfig.load(ctx.redis, gh, repo)
        created = await repo_labels.ensure(gh, repo.full_name, canonical_labels(config.stages))
        await ctx.audit(event, Outcome.APPLIED, detail=f"{repo.full_name}: created "
                        f"{len(created)} label(s)" + (f": {', '.join(created)}" if created else ""))


@router.register("installation", action="deleted")
@router.register("installation_repositories", action="removed")
async def forget_repositories(raw: sansio.Event, event: Event, ctx: Context) -> None:
    """Forget the repositories the App lost, and an uninstalled installation itself."""
    uninstalled = event.name == "installation"
    if event.installation_id is None:
        await ctx.audit(event, Outcome.REJECTED, detail="no installation in the payload")
        return
    repos = event.repositories
    if uninstalled:  # the list is optional: the repositories seen with it as well
        listed = {r.id for r in repos}
        seen = await tenants.indexed(ctx.redis, event.installation_id)
        repos += tuple(r for r in seen if r.id not in listed)
    forget = tenants.forget_installation if uninstalled else tenants.forget_repositories
    gone = await forget(ctx.redis, event.installation_id, repos, now=datetime.now(UTC))
    names = ", ".join(r.full_name for r in repos[:NAMED]) or "no repositories"
    names += f" and {len(repos) - NAMED} more" if len(repos) > NAMED else ""
    await ctx.audit(event, Outcome.APPLIED, detail=f"forgot {names}"
                    + (" and the installation" if uninstalled else "") + f": {gone} key(s)")


@router.register("installation")
@router.register("installation_repositories")
async def observe(raw: sansio.Event, event: Event, ctx: Context) -> None:
    """Every other installation change is audited only."""
    if event.action not in ("created", "added", "deleted", "removed"):
        await ctx.audit(event, Outcome.OBSERVED)
