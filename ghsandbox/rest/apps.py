"""The App's own routes: itself, its installations, installation tokens, the rate limit.

https://docs.github.com/rest/apps/apps and https://docs.github.com/rest/apps/installations.
An App finds an installation by id, by repository or by account (``/orgs/{org}/installation``
for an organization, ``/users/{username}/installation`` for any account, as
``actions/create-github-app-token`` does), and an installation token can revoke itself
(``DELETE /installation/token``: 401 "Bad credentials" afterwards). The App's webhook — its
configuration and delivery log — is :mod:`ghsandbox.rest.app_hooks`.
"""

from __future__ import annotations

from typing import Any

from ghsandbox.auth import SUSPENDED
from ghsandbox.model import AccountType, Installation
from ghsandbox.pipeline import Auth, Endpoint
from ghsandbox.protocol import ApiError, Call, Reply, not_found, validation_failed
from ghsandbox.state import iso

INSTALLATION_DOCS = "https://docs.github.com/rest/apps/apps"


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


def get_org_installation(call: Call) -> Reply:
    return Reply(body=call.view.installation(_installation_of(call, call.params["org"], org=True)))


def get_user_installation(call: Call) -> Reply:
    account = call.params["username"]
    return Reply(body=call.view.installation(_installation_of(call, account, org=False)))


def _installation_of(call: Call, login: str, *, org: bool) -> Installation:
    """The installation on the account ``login``; with ``org``, only on an organization."""
    world = call.view.world
    found = next(
        (i for i in world.installations.values() if i.account.lower() == login.lower()), None
    )
    if found is None or (org and world.account(found.account).type is not AccountType.ORGANIZATION):
        raise not_found(docs=INSTALLATION_DOCS)
    return found


def get_repo_installation(call: Call) -> Reply:
    repo = call.view.world.repo(call.params["owner"], call.params["repo"])
    if repo is None:
        raise not_found()
    return Reply(body=call.view.installation(call.view.world.installations[repo.installation_id]))


def create_token(call: Call) -> Reply:
    """``POST /app/installations/{id}/access_tokens``: a token valid for the token lifetime."""
    installation = _installation(call)
    if installation.suspended_at is not None:
        raise ApiError(403, SUSPENDED)
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


def revoke_token(call: Call) -> Reply:
    """``DELETE /installation/token``: the token the call came with stops working."""
    call.view.world.tokens.pop(call.actor.credential or "", None)
    call.view.world.touch()
    return Reply(204)


def rate_limit(call: Call) -> Reply:
    """``GET /rate_limit``: the caller's core budget (free, and open to anyone, as on GitHub)."""
    actor, limit = call.actor, call.actor.rate_limit
    remaining, used, reset = call.sandbox.limits.peek(
        actor.rate_key, call.view.world.clock(), limit=limit
    )
    core = {"limit": limit, "remaining": remaining, "reset": reset, "used": used,
            "resource": "core"}
    search = {"limit": 30, "remaining": 30, "reset": reset, "used": 0, "resource": "search"}
    return Reply(body={"resources": {"core": core, "search": search}, "rate": core})


ENDPOINTS = [
    Endpoint("GET", "/app", get_app, Auth.APP),
    Endpoint("GET", "/app/installations", list_installations, Auth.APP),
    Endpoint("GET", "/app/installations/{installation_id}", get_installation, Auth.APP),
    Endpoint("POST", "/app/installations/{installation_id}/access_tokens", create_token, Auth.APP),
    Endpoint("GET", "/repos/{owner}/{repo}/installation", get_repo_installation, Auth.APP),
    Endpoint("GET", "/orgs/{org}/installation", get_org_installation, Auth.APP),
    Endpoint("GET", "/users/{username}/installation", get_user_installation, Auth.APP),
    Endpoint("GET", "/installation/repositories", list_installation_repos, Auth.INSTALLATION),
    Endpoint("DELETE", "/installation/token", revoke_token, Auth.INSTALLATION),
    Endpoint("GET", "/rate_limit", rate_limit, Auth.OPTIONAL, costs=False),
]
