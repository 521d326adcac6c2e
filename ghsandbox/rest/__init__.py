"""GitHub's REST routes, one module per resource family; :data:`ENDPOINTS` lists them all."""

from __future__ import annotations

from ghsandbox.pipeline import Endpoint
from ghsandbox.rest import (
    app_hooks,
    apps,
    comments,
    contents,
    dependencies,
    issue_labels,
    issues,
    labels,
    meta,
    repos,
    sub_issues,
    users,
)

ENDPOINTS: list[Endpoint] = [
    *meta.ENDPOINTS,
    *apps.ENDPOINTS,
    *app_hooks.ENDPOINTS,
    *users.ENDPOINTS,
    *repos.ENDPOINTS,
    *issues.ENDPOINTS,
    *issue_labels.ENDPOINTS,
    *labels.ENDPOINTS,
    *comments.ENDPOINTS,
    *dependencies.ENDPOINTS,
    *sub_issues.ENDPOINTS,
    *contents.ENDPOINTS,
]
