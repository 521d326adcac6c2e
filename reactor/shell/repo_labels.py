"""The reactor's own repository labels: created on installation, restored when changed.

Adding an unknown label to an issue makes GitHub create it with a grey colour and no
description; creating them up front gives every status, stage and reactor label its colour
and meaning. https://docs.github.com/en/rest/issues/labels
"""

from __future__ import annotations

from urllib.parse import quote

from gidgethub.abc import GitHubAPI

from reactor.core.errors import GitHubError
from reactor.core.labels import LabelSpec


async def ensure(gh: GitHubAPI, full_name: str, specs: tuple[LabelSpec, ...]) -> list[str]:
    """Create each label that is missing; returns the names created (422: it exists)."""
    created = []
    for spec in specs:
        try:
            await gh.post(f"/repos/{full_name}/labels", data={
                "name": spec.name, "color": spec.color, "description": spec.description,
            })
        except GitHubError as exc:
            if exc.status != 422:  # already_exists
                raise
            continue
        created.append(spec.name)
    return created


async def rename_back(gh: GitHubAPI, full_name: str, current: str, spec: LabelSpec) -> None:
    """A reactor label was renamed: give it its name (and colour, description) back."""
    await gh.patch(f"/repos/{full_name}/labels/{quote(current, safe='')}", data={
        "new_name": spec.name, "color": spec.color, "description": spec.description,
    })
