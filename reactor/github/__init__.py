"""Talking to GitHub as the App: JWT, installation tokens, and a gidgethub client.

The public face of the package; the modules behind it are

- ``auth``      the App's JWT (pure: ``app_jwt(app_id, key, now=...)``)
- ``tokens``    installation tokens cached in Redis for every process
- ``client``    ``GitHubClient``: one per process; gidgethub API objects per installation
- ``transport`` the request path: rate-limit gate, ETag cache, retries, errors, metrics
- ``ratelimit`` reading primary and secondary limits; the per-installation pause in Redis
- ``pacing``    each installation's budget of content writes (issues, comments) in Redis
- ``cache``     conditional GETs shared in Redis
- ``retry``     exponential backoff with full jitter (tenacity)
- ``app``       typed App-level calls: ``/app``, installations, the webhook delivery log
- ``metrics``   ``CallRecord`` passed to ``on_response`` for every HTTP attempt

Errors raised are those of :mod:`reactor.core.errors`: ``GitHubError`` (status, method, url),
``RateLimited`` (retry_at, installation_id) and ``GitHubUnavailable``.
"""

from reactor.github.app import (
    AppInfo,
    HookDelivery,
    Installation,
    find_delivery,
    get_app,
    list_deliveries,
    list_installations,
    needing_redelivery,
    redeliver,
    repo_installation,
)
from reactor.github.auth import AppSigner, app_jwt
from reactor.github.cache import CachedResponse, ETagCache
from reactor.github.client import AppAPI, GitHubClient, InstallationAPI, ReactorAPI
from reactor.github.metrics import CallRecord, OnResponse, route_of
from reactor.github.pacing import ContentPacer, Window, creates_content
from reactor.github.ratelimit import Limit, LimitKind, RateBudget
from reactor.github.retry import RetryPolicy, full_jitter
from reactor.github.tokens import InstallationToken, TokenCache

__all__ = [
    "AppAPI",
    "AppInfo",
    "AppSigner",
    "CachedResponse",
    "CallRecord",
    "ContentPacer",
    "ETagCache",
    "GitHubClient",
    "HookDelivery",
    "Installation",
    "InstallationAPI",
    "InstallationToken",
    "Limit",
    "LimitKind",
    "OnResponse",
    "RateBudget",
    "ReactorAPI",
    "RetryPolicy",
    "TokenCache",
    "Window",
    "app_jwt",
    "creates_content",
    "find_delivery",
    "full_jitter",
    "get_app",
    "list_deliveries",
    "list_installations",
    "needing_redelivery",
    "redeliver",
    "repo_installation",
    "route_of",
]
