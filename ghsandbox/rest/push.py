"""The ``push`` webhook that a contents ``PUT`` sends.

https://docs.github.com/webhooks/webhook-events-and-payloads#push — unlike other events, a
push payload's ``repository`` gives ``created_at`` and ``pushed_at`` as epoch seconds.
"""

from __future__ import annotations

from calendar import timegm
from time import strptime
from typing import Any

from ghsandbox.model import Repo
from ghsandbox.protocol import Call


def _epoch(stamp: str) -> int:
    return timegm(strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))


def push_payload(
    call: Call, repo: Repo, *, before: str, commit: dict[str, Any], path: str, added: bool
) -> dict[str, Any]:
    """One commit (changing ``path``) pushed to the default branch by the caller."""
    html = f"{call.view.base}/{repo.full_name}"
    author = {
        "name": commit["author"]["name"],
        "email": commit["author"]["email"],
        "username": call.actor.login,
    }
    head = {
        "id": commit["sha"],
        "tree_id": commit["tree"]["sha"],
        "distinct": True,
        "message": commit["message"],
        "timestamp": commit["author"]["date"],
        "url": commit["html_url"],
        "author": author,
        "committer": dict(author),
        "added": [path] if added else [],
        "removed": [],
        "modified": [] if added else [path],
    }
    payload = call.events.envelope(
        repo,
        ref=f"refs/heads/{repo.default_branch}",
        before=before,
        after=commit["sha"],
        created=False,
        deleted=False,
        forced=False,
        base_ref=None,
        compare=f"{html}/compare/{before[:12]}...{commit['sha'][:12]}",
        commits=[head],
        head_commit=head,
        pusher={"name": call.actor.login, "email": author["email"]},
    )
    repository = payload["repository"]
    repository["created_at"] = _epoch(repo.created_at)
    repository["pushed_at"] = _epoch(repo.pushed_at)
    repository["stargazers"] = 0
    repository["master_branch"] = repo.default_branch
    return payload
