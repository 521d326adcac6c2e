"""The App's own routes: itself, its installations, installation tokens, the delivery log.

https://docs.github.com/rest/apps/apps and https://docs.github.com/rest/apps/webhooks
"""

from __future__ import annotations

from typing import Any

from reactor.sandbox.model import Installation
from reactor.sandbox.pipeline import Auth, Endpoint
from reactor.sandbox.protocol import ActorKind, ApiError, Call, Reply, not_found, validation_failed
from reactor.sandbox.state import iso

DELIVERY_CURSOR = "v1_"


def get_app(call: Call) -> Reply:
    return Reply(body=call.view.app())


def list_installations(call: Call) -> Reply:
    items = [call.view.installation(i) for i in call.view.world.installations.values()]
    page, link = call.page_of(items)
    return Reply(body=page, headers=link)


def _installation(call: Call) -> Installation:
    found = call.view.world.installations.get(call.int_param("installation_id"))
    if found is None:
        raise not_found()
    return found


def get_installation(call: Call) -> Reply:
    return Reply(body=call.view.installation(_installation(call)))


def get_repo_installation(call: Call) -> Reply:
    repo = call.view.world.repo(call.params["owner"], call.params["repo"])
    if repo is None:
        raise not_found()
    return Reply(body=call.view.installation(call.view.world.installations[repo.installation_id]))


def create_token(call: Call) -> Reply:
    """``POST /app/installations/{id}/access_tokens``: a token valid for the token lifetime."""
    installation = _installation(call)
    body = call.body if isinstance(call.body, dict) else {}
    repo_ids = _token_repos(call, installation, body)
    world = call.view.world
    value, token = world.mint_token(installation.id, call.sandbox.token_lifetime_s, repo_ids)
    repos = [r for r in world.repos.values() if r.id in (repo_ids or installation.repo_ids)]
    out: dict[str, Any] = {
        "token": value,
        "expires_at": iso(token.expires_at),
        "permissions": call.view.installation(installation)["permissions"],
        "repository_selection": "selected",
    }
    if repo_ids is not None:
        out["repositories"] = [call.view.repository(r) for r in repos]
    return Reply(201, out)


def _token_repos(call: Call, installation: Installation, body: dict[str, Any]) -> list[int] | None:
    """The repository ids a token request names (``repositories`` / ``repository_ids``)."""
    names, ids = body.get("repositories"), body.get("repository_ids")
    if names is None and ids is None:
        return None
    world = call.view.world
    chosen = [
        r.id
        for r in world.repos.values()
        if r.id in installation.repo_ids and (r.name in (names or []) or r.id in (ids or []))
    ]
    if len(chosen) < len(names or []) + len(ids or []):
        raise validation_failed("Repository", "repositories", "invalid")
    return chosen


def list_installation_repos(call: Call) -> Reply:
    world = call.view.world
    installation = world.installations[call.actor.installation_id or 0]
    allowed = call.actor.repo_ids
    repos = [
        r
        for r in world.repos.values()
        if r.id in installation.repo_ids and (allowed is None or r.id in allowed)
    ]
    page, link = call.page_of([call.view.repository(r) for r in repos])
    body = {"total_count": len(repos), "repository_selection": "selected", "repositories": page}
    return Reply(body=body, headers=link)


def list_deliveries(call: Call) -> Reply:
    """Newest first, ``per_page`` at a time, with a ``cursor`` for the next page as on GitHub."""
    per_page = min(100, max(1, int(call.query.get("per_page", "30") or 30)))
    cursor = call.query.get("cursor")
    before = None
    if cursor:
        if not cursor.startswith(DELIVERY_CURSOR) or not cursor[3:].isdigit():
            raise ApiError(400, "Invalid cursor")
        before = int(cursor[3:])
    status = call.query.get("status")
    found = call.sandbox.hub.log.newest_first(before=before, status=status)
    page = found[:per_page]
    headers = {}
    if len(found) > per_page:
        headers["link"] = (
            f'<{call.url}?per_page={per_page}&cursor={DELIVERY_CURSOR}{page[-1].id}>; rel="next"'
        )
    return Reply(body=[d.item() for d in page], headers=headers)


def get_delivery(call: Call) -> Reply:
    delivery = call.sandbox.hub.log.by_id.get(call.int_param("delivery_id"))
    if delivery is None or delivery.status_code is None:
        raise not_found()
    return Reply(body=delivery.detail())


def redeliver(call: Call) -> Reply:
    if call.sandbox.hub.redeliver(call.int_param("delivery_id")) is None:
        raise not_found()
    return Reply(202, {})


def rate_limit(call: Call) -> Reply:
    """``GET /rate_limit``: the caller's core budget (free, as on GitHub)."""
    remaining, used, reset = call.sandbox.limits.peek(call.actor.rate_key, call.view.world.clock())
    core = {"limit": 5000, "remaining": remaining, "reset": reset, "used": used, "resource": "core"}
    search = {"limit": 30, "remaining": 30, "reset": reset, "used": 0, "resource": "search"}
    return Reply(body={"resources": {"core": core, "search": search}, "rate": core})


def _is_app(call: Call) -> bool:
    return call.actor.kind is ActorKind.APP


ENDPOINTS = [
    Endpoint("GET", "/app", get_app, Auth.APP),
    Endpoint("GET", "/app/installations", list_installations, Auth.APP),
    Endpoint("GET", "/app/installations/{installation_id}", get_installation, Auth.APP),
    Endpoint("POST", "/app/installations/{installation_id}/access_tokens", create_token, Auth.APP),
    Endpoint("GET", "/repos/{owner}/{repo}/installation", get_repo_installation, Auth.APP),
    Endpoint("GET", "/installation/repositories", list_installation_repos, Auth.INSTALLATION),
    Endpoint("GET", "/app/hook/deliveries", list_deliveries, Auth.APP),
    Endpoint("GET", "/app/hook/deliveries/{delivery_id}", get_delivery, Auth.APP),
    Endpoint("POST", "/app/hook/deliveries/{delivery_id}/attempts", redeliver, Auth.APP),
    Endpoint("GET", "/rate_limit", rate_limit, Auth.ANY, costs=False),
]
