"""GitHub's REST routes, one module per resource family; :data:`ENDPOINTS` lists them all."""

from __future__ import annotations

from reactor.sandbox.pipeline import Endpoint
from reactor.sandbox.rest import (
    apps,
    comments,
    contents,
    dependencies,
    issue_labels,
    issues,
    labels,
)

ENDPOINTS: list[Endpoint] = [
    *apps.ENDPOINTS,
    *issues.ENDPOINTS,
    *issue_labels.ENDPOINTS,
    *labels.ENDPOINTS,
    *comments.ENDPOINTS,
    *dependencies.ENDPOINTS,
    *contents.ENDPOINTS,
]
