"""``installation`` and ``installation_repositories``: the App installed or uninstalled, given
repositories or deprived of them.

The reactor creates its labels (status, stage and ``reactor:`` labels, with colours and
descriptions) in each repository it is given, and does nothing else on install. On uninstall
it forgets what it kept of the installation's repositories, and of the installation itself;
a repository taken from an installation is forgotten too (SPEC §6,
:mod:`reactor.store.tenants`). The audit log keeps its records.
https://docs.github.com/en/webhooks/webhook-events-and-payloads#installation
https://docs.github.com/en/webhooks/webhook-events-and-payloads#installation_repositories
"""

from __future__ import annotations

from typing import Any

from gidgethub import routing, sansio

from reactor.context import Context
from reactor.errors import PayloadError
from reactor.labels import canonical_labels
from reactor.model import Event, Repo
from reactor.shell import labels, repoconfig
from reactor.store import tenants
from reactor.store.audit import Outcome

router = routing.Router()
NAMED = 5  # repositories an audit record names; the rest are counted


def _repositories(data: dict[str, Any], field: str, delivery_id: str) -> list[Repo]:
    """The repositories a payload lists under ``field`` (absent: none), or PayloadError.

    The handler reads this field only, so it is checked here rather than in
    :func:`~reactor.model.parse_event`; the worker audits the error as a rejection.
    """
    items = data.get(field)
    if items is None:
        return []
    if not isinstance(items, list):
        raise _malformed(field, delivery_id)
    return [_repository(item, field, delivery_id) for item in items]


def _repository(item: object, field: str, delivery_id: str) -> Repo:
    """One ``{"id": <int>, "full_name": "<owner>/<name>"}`` item of a repository list."""
    if not isinstance(item, dict):
        raise _malformed(field, delivery_id)
    ident, full_name = item.get("id"), item.get("full_name")
    if not isinstance(ident, int) or isinstance(ident, bool) or not isinstance(full_name, str):
        raise _malformed(field, delivery_id)
    owner, _, name = full_name.partition("/")
    if not owner or not name or "/" in name:
        raise _malformed(field, delivery_id)
    return Repo(owner=owner, name=name, id=ident)


def _malformed(field: str, delivery_id: str) -> PayloadError:
    return PayloadError(
        f"payload field {field!r} must list repositories, each with an integer id and an "
        "owner/name full_name", delivery_id=delivery_id,
    )


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


@router.register("installation", action="deleted")
@router.register("installation_repositories", action="removed")
async def forget_repositories(raw: sansio.Event, event: Event, ctx: Context) -> None:
    """Forget the repositories the App lost, and an uninstalled installation itself."""
    uninstalled = event.name == "installation"
    field = "repositories" if uninstalled else "repositories_removed"
    if event.installation_id is None:
        await ctx.audit(event, Outcome.REJECTED, detail="no installation in the payload")
        return
    repos = _repositories(raw.data, field, event.delivery_id)
    forget = tenants.forget_installation if uninstalled else tenants.forget_repositories
    gone = await forget(ctx.redis, event.installation_id, [r.id for r in repos])
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
