"""GitHub's JSON shapes, built from the sandbox's records.

Each function returns the object GitHub's REST API (and its webhooks, which embed the same
objects) would return, with every field the OpenAPI description marks as required, so
clients parsing real GitHub responses parse these too. URLs point at the sandbox itself.
"""

from __future__ import annotations

import base64
import functools
from typing import Any
from urllib.parse import quote

from ghsandbox.model import (
    Account,
    AccountType,
    Comment,
    File,
    Installation,
    Issue,
    Label,
    Repo,
)

Json = dict[str, Any]
# The App's subscribed events as GitHub lists them; ``issue_dependencies`` and ``sub_issues``
# are delivered to Apps with issues permission but are not yet in the schemas' list of
# subscribable events.
APP_EVENTS = ["issues", "issue_comment", "issue_dependencies", "label", "push",
              "repository_dispatch", "sub_issues"]
# The webhook schemas (@octokit/openapi-webhooks) list an App's events from an older list
# that lacks issue_dependencies and sub_issues; the App shown inside a webhook
# (performed_via_github_app) keeps to them, while GET /app and the installations list them,
# as GitHub's REST schema does.
NEWER_EVENTS = ("issue_dependencies", "sub_issues")
WEBHOOK_APP_EVENTS = [e for e in APP_EVENTS if e not in NEWER_EVENTS]
APP_PERMISSIONS = {"issues": "write", "contents": "write", "metadata": "read"}
EPOCH = "2024-01-01T00:00:00Z"


@functools.lru_cache(maxsize=65536)
def node_id(prefix: str, number: int) -> str:
    """A GraphQL node id in GitHub's newer style: a type prefix and an opaque base64 tail."""
    return prefix + "_" + base64.urlsafe_b64encode(number.to_bytes(8, "big")).decode().rstrip("=")


def user(base: str, account: Account) -> Json:
    """A ``simple-user``: a user, a ``[bot]`` or an organization."""
    return dict(_user(base, account.login, account.id, account.type))


@functools.lru_cache(maxsize=4096)  # accounts never change, and payloads embed them often
def _user(base: str, login: str, account_id: int, kind: AccountType) -> Json:
    account = Account(login, account_id, kind)
    url = f"{base}/users/{account.login}"
    prefix = {AccountType.USER: "U", AccountType.BOT: "BOT", AccountType.ORGANIZATION: "O"}
    return {
        "login": account.login,
        "id": account.id,
        "node_id": node_id(prefix[account.type], account.id),
        "avatar_url": f"{base}/avatars/u/{account.id}?v=4",
        "gravatar_id": "",
        "url": url,
        "html_url": f"{base}/{account.login}",
        "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}",
        "gists_url": f"{url}/gists{{/gist_id}}",
        "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{url}/subscriptions",
        "organizations_url": f"{url}/orgs",
        "repos_url": f"{url}/repos",
        "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events",
        "type": account.type.value,
        "user_view_type": "public",
        "site_admin": False,
    }


def organization(base: str, account: Account) -> Json:
    """An ``organization-simple``, sent as ``organization`` in webhooks of org repositories."""
    url = f"{base}/orgs/{account.login}"
    return {
        "login": account.login,
        "id": account.id,
        "node_id": node_id("O", account.id),
        "url": url,
        "repos_url": f"{url}/repos",
        "events_url": f"{url}/events",
        "hooks_url": f"{url}/hooks",
        "issues_url": f"{url}/issues",
        "members_url": f"{url}/members{{/member}}",
        "public_members_url": f"{url}/public_members{{/member}}",
        "avatar_url": f"{base}/avatars/u/{account.id}?v=4",
        "description": None,
    }


def integration(base: str, *, app_id: int, slug: str, owner: Account) -> Json:
    """The App itself (``GET /app``, and ``performed_via_github_app`` on what it writes)."""
    return {
        "id": app_id,
        "slug": slug,
        "node_id": node_id("A", app_id),
        "client_id": f"Iv1.{app_id:016x}",
        "owner": user(base, owner),
        "name": slug,
        "description": "Issue Safety Reactor (sandbox)",
        "external_url": base,
        "html_url": f"{base}/apps/{slug}",
        "created_at": EPOCH,
        "updated_at": EPOCH,
        "permissions": dict(APP_PERMISSIONS),
        "events": list(APP_EVENTS),
        "installations_count": 0,
    }


def installation(
    base: str, inst: Installation, *, app_id: int, slug: str, account: Account
) -> Json:
    """An ``installation`` of the App on an account."""
    return {
        "id": inst.id,
        "account": user(base, account),
        "repository_selection": "selected",
        "access_tokens_url": f"{base}/app/installations/{inst.id}/access_tokens",
        "repositories_url": f"{base}/installation/repositories",
        "html_url": f"{base}/settings/installations/{inst.id}",
        "app_id": app_id,
        "client_id": f"Iv1.{app_id:016x}",
        "target_id": account.id,
        "target_type": account.type.value,
        "permissions": dict(APP_PERMISSIONS),
        "events": list(APP_EVENTS),
        "created_at": inst.created_at,
        "updated_at": inst.created_at,
        "single_file_name": None,
        "has_multiple_single_files": False,
        "single_file_paths": [],
        "app_slug": slug,
        "suspended_by": user(base, account) if inst.suspended_at else None,
        "suspended_at": inst.suspended_at,
    }


def label(base: str, repo: Repo, lab: Label) -> Json:
    """A ``label``."""
    return dict(_label(base, repo.full_name, lab.id, lab.name, lab.description, lab.color))


@functools.lru_cache(maxsize=16384)
def _label(
    base: str, full_name: str, label_id: int, name: str, description: str | None, color: str
) -> Json:
    return {
        "id": label_id,
        "node_id": node_id("LA", label_id),
        "url": f"{base}/repos/{full_name}/labels/{quote(name, safe=':')}",
        "name": name,
        "description": description,
        "color": color,
        "default": False,
    }


def reactions(url: str) -> Json:
    counts = dict.fromkeys(
        ("+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket"), 0
    )
    return {"url": url, "total_count": 0, **counts}


def issue_url(base: str, repo: Repo, iss: Issue) -> str:
    """The issue's REST URL (its ``url``, and a sub-issue's ``parent_issue_url``)."""
    return f"{base}/repos/{repo.full_name}/issues/{iss.number}"


def sub_issues_summary(total: int, completed: int) -> Json:
    """``sub-issues-summary``: how many sub-issues, how many closed, and the whole percent
    closed, rounded down (so 100 only when every sub-issue is closed)."""
    percent = completed * 100 // total if total else 0
    return {"total": total, "completed": completed, "percent_completed": percent}


def issue(
    base: str,
    repo: Repo,
    iss: Issue,
    *,
    author: Json,
    labels: list[Json],
    closed_by: Json | None,
    app: Json | None,
    blocking: int,
    completed_sub_issues: int = 0,
    parent_url: str | None = None,
) -> Json:
    """An ``issue`` as ``GET /repos/{o}/{r}/issues/{n}`` and the ``issues`` webhooks show it;
    ``parent_url`` is the parent's REST URL when the issue is a sub-issue."""
    api = issue_url(base, repo, iss)
    blocked_by = len(iss.blocked_by)
    return {
        "id": iss.id,
        "node_id": node_id("I", iss.id),
        "url": api,
        "repository_url": f"{base}/repos/{repo.full_name}",
        "labels_url": f"{api}/labels{{/name}}",
        "comments_url": f"{api}/comments",
        "events_url": f"{api}/events",
        "html_url": f"{base}/{repo.full_name}/issues/{iss.number}",
        "timeline_url": f"{api}/timeline",
        "number": iss.number,
        "state": iss.state,
        "state_reason": iss.state_reason,
        "title": iss.title,
        "body": iss.body,
        "user": author,
        "labels": labels,
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "locked": False,
        "active_lock_reason": None,
        "comments": iss.comments,
        "closed_at": iss.closed_at,
        "created_at": iss.created_at,
        "updated_at": iss.updated_at,
        "closed_by": closed_by,
        "author_association": "MEMBER",
        "type": None,
        "performed_via_github_app": app,
        "reactions": reactions(f"{api}/reactions"),
        "sub_issues_summary": sub_issues_summary(len(iss.sub_issues), completed_sub_issues),
        "parent_issue_url": parent_url,
        "issue_dependencies_summary": {
            "blocked_by": blocked_by,
            "blocking": blocking,
            "total_blocked_by": blocked_by,
            "total_blocking": blocking,
        },
    }


def comment(base: str, repo: Repo, com: Comment, *, author: Json, app: Json | None) -> Json:
    """An ``issue-comment``."""
    api = f"{base}/repos/{repo.full_name}/issues"
    return {
        "id": com.id,
        "node_id": node_id("IC", com.id),
        "url": f"{api}/comments/{com.id}",
        "html_url": f"{base}/{repo.full_name}/issues/{com.issue_number}#issuecomment-{com.id}",
        "issue_url": f"{api}/{com.issue_number}",
        "body": com.body,
        "user": author,
        "created_at": com.created_at,
        "updated_at": com.updated_at,
        "author_association": "MEMBER",
        "performed_via_github_app": app,
        "reactions": reactions(f"{api}/comments/{com.id}/reactions"),
    }


def issue_event(base: str, repo: Repo, event: Json, *, actor: Json, app: Json | None,
                color: str | None) -> Json:
    """One ``issue-event-for-issue``: a ``labeled``/``unlabeled`` event carries its label,
    a ``closed``/``reopened`` one its ``state_reason``."""
    out: Json = {
        "id": event["id"],
        "node_id": node_id("LE" if event["label"] else "SE", event["id"]),
        "url": f"{base}/repos/{repo.full_name}/issues/events/{event['id']}",
        "actor": actor,
        "event": event["event"],
        "commit_id": None,
        "commit_url": None,
        "created_at": event["created_at"],
        "performed_via_github_app": app,
    }
    if event["label"] is not None:
        out["label"] = {"name": event["label"], "color": color or "ededed"}
    else:
        out["state_reason"] = event["state_reason"]
    return out


def content_file(base: str, repo: Repo, file: File, *, with_content: bool = True) -> Json:
    """A ``content-file``; the content is base64 in lines of 60 characters, as GitHub sends it."""
    api = f"{base}/repos/{repo.full_name}"
    self_url = f"{api}/contents/{file.path}?ref={repo.default_branch}"
    html = f"{base}/{repo.full_name}/blob/{repo.default_branch}/{file.path}"
    git = f"{api}/git/blobs/{file.sha}"
    out: Json = {
        "type": "file",
        "name": file.path.rsplit("/", 1)[-1],
        "path": file.path,
        "sha": file.sha,
        "size": len(file.content),
        "url": self_url,
        "html_url": html,
        "git_url": git,
        "download_url": f"{base}/raw/{repo.full_name}/{repo.default_branch}/{file.path}",
        "_links": {"self": self_url, "git": git, "html": html},
    }
    if with_content:
        encoded = base64.b64encode(file.content).decode()
        out["content"] = "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))
        out["encoding"] = "base64"
    return out
