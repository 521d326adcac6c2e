"""The ``repository`` object, the largest part of every webhook payload.

Most of its ~90 fields never change for a repository, so they are built once per
(base URL, repository) and copied; only the counters and times are filled in per call.
"""

from __future__ import annotations

import functools

from ghsandbox.model import Account, AccountType, Repo
from ghsandbox.render import Json, node_id, user

_URL_SUFFIXES = {
    "archive": "/{archive_format}{/ref}", "assignees": "/assignees{/user}",
    "blobs": "/git/blobs{/sha}", "branches": "/branches{/branch}",
    "collaborators": "/collaborators{/collaborator}", "comments": "/comments{/number}",
    "commits": "/commits{/sha}", "compare": "/compare/{base}...{head}",
    "contents": "/contents/{+path}", "git_commits": "/git/commits{/sha}",
    "git_refs": "/git/refs{/sha}", "git_tags": "/git/tags{/sha}",
    "issue_comment": "/issues/comments{/number}", "issue_events": "/issues/events{/number}",
    "issues": "/issues{/number}", "keys": "/keys{/key_id}", "labels": "/labels{/name}",
    "milestones": "/milestones{/number}",
    "notifications": "/notifications{?since,all,participating}", "pulls": "/pulls{/number}",
    "releases": "/releases{/id}", "statuses": "/statuses/{sha}", "trees": "/git/trees{/sha}",
    "contributors": "/contributors", "deployments": "/deployments", "downloads": "/downloads",
    "events": "/events", "forks": "/forks", "hooks": "/hooks", "languages": "/languages",
    "merges": "/merges", "stargazers": "/stargazers", "subscribers": "/subscribers",
    "subscription": "/subscription", "tags": "/tags", "teams": "/teams",
}  # fmt: skip

_FIXED = {
    "private": True, "description": None, "fork": False, "license": None, "mirror_url": None,
    "homepage": None, "language": None, "forks": 0, "forks_count": 0, "stargazers_count": 0,
    "watchers": 0, "watchers_count": 0, "visibility": "private", "is_template": False,
    "has_issues": True, "has_projects": False, "has_wiki": False, "has_pages": False,
    "has_downloads": False, "has_discussions": False, "archived": False, "disabled": False,
    "allow_forking": False, "web_commit_signoff_required": False,
}  # fmt: skip


def repository(base: str, repo: Repo, owner: Account) -> Json:
    """A full ``repository`` (REST) / ``repository-webhooks`` (payloads) object."""
    out = dict(_static(base, repo.id, repo.owner, repo.name, repo.created_at, owner.id, owner.type))
    out.update(
        updated_at=repo.pushed_at,
        pushed_at=repo.pushed_at,
        size=sum(len(f.content) for f in repo.files.values()) // 1024,
        open_issues=repo.open_count,
        open_issues_count=repo.open_count,
        default_branch=repo.default_branch,
        topics=[],
    )
    return out


@functools.lru_cache(maxsize=1024)
def _static(
    base: str,
    repo_id: int,
    owner: str,
    name: str,
    created_at: str,
    owner_id: int,
    owner_type: AccountType,
) -> Json:
    full_name = f"{owner}/{name}"
    api, html = f"{base}/repos/{full_name}", f"{base}/{full_name}"
    out: Json = {
        "id": repo_id, "node_id": node_id("R", repo_id), "name": name, "full_name": full_name,
        "owner": user(base, Account(owner, owner_id, owner_type)), "html_url": html,
        "url": api, "created_at": created_at, "git_url": f"git://sandbox/{full_name}.git",
        "ssh_url": f"git@sandbox:{full_name}.git", "clone_url": f"{html}.git", "svn_url": html,
        **_FIXED,
    }  # fmt: skip
    out.update({f"{key}_url": api + suffix for key, suffix in _URL_SUFFIXES.items()})
    return out
