"""Repository contents on the default branch, and ``repository_dispatch``.

https://docs.github.com/rest/repos/contents — ``GET`` answers base64 content, ``PUT`` creates
(201) or, given the current blob ``sha``, updates (200) a file; a stale ``sha`` is 409, a
missing one 422. Each ``PUT`` is one commit on the default branch and sends ``push``.
https://docs.github.com/rest/repos/repos#create-a-repository-dispatch-event answers 204 and
sends ``repository_dispatch``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from ghsandbox.model import File, Repo
from ghsandbox.pipeline import Endpoint
from ghsandbox.protocol import ApiError, Call, Reply, not_found
from ghsandbox.rest.push import push_payload

MAX_DISPATCH_KEYS = 10


def get_content(call: Call) -> Reply:
    """A file, or a directory listing, at ``path`` on the default branch (or ``ref``)."""
    repo = call.repo()
    ref = call.query.get("ref")
    if ref not in (
        None,
        "",
        repo.default_branch,
        f"refs/heads/{repo.default_branch}",
        repo.head_sha,
    ):
        raise ApiError(404, f"No commit found for the ref {ref}")
    path = call.params.get("path", "").strip("/")
    file = repo.files.get(path)
    if file is not None:
        return Reply(body=call.view.content_file(repo, file))
    listing = _directory(call, repo, path)
    if not listing:
        raise not_found()
    return Reply(body=listing)


def _directory(call: Call, repo: Repo, path: str) -> list[dict[str, Any]]:
    prefix = f"{path}/" if path else ""
    out: dict[str, dict[str, Any]] = {}
    for file in sorted(repo.files.values(), key=lambda f: f.path):
        if not file.path.startswith(prefix):
            continue
        head, sep, _ = file.path[len(prefix) :].partition("/")
        if not sep:
            out[head] = call.view.content_file(repo, file, with_content=False)
        elif head not in out:
            out[head] = _dir_entry(call, repo, prefix + head)
    return list(out.values())


def _dir_entry(call: Call, repo: Repo, path: str) -> dict[str, Any]:
    api = f"{call.view.base}/repos/{repo.full_name}"
    sha = hashlib.sha1(f"{repo.head_sha}:{path}".encode(), usedforsecurity=False).hexdigest()
    url = f"{api}/contents/{path}?ref={repo.default_branch}"
    html = f"{call.view.base}/{repo.full_name}/tree/{repo.default_branch}/{path}"
    git = f"{api}/git/trees/{sha}"
    return {
        "type": "dir",
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "sha": sha,
        "size": 0,
        "url": url,
        "html_url": html,
        "git_url": git,
        "download_url": None,
        "_links": {"self": url, "git": git, "html": html},
    }


def put_content(call: Call) -> Reply:
    """Create or update one file: one commit on the default branch, then ``push``."""
    repo = call.repo()
    path = call.params.get("path", "").strip("/")
    body = call.json_object()
    content = _decode(body)
    existing = repo.files.get(path)
    if not path or path in {f.rsplit("/", 1)[0] for f in repo.files if "/" in f}:
        raise ApiError(422, "path cannot be a directory")
    branch = body.get("branch") or repo.default_branch
    if branch != repo.default_branch:
        raise ApiError(404, f"Branch {branch} not found")
    sha = body.get("sha")
    if existing is not None and sha is None:
        raise ApiError(422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
    if existing is not None and sha != existing.sha:
        raise ApiError(409, f"{path} does not match {sha}")
    file = File.of(path, content)
    before = repo.head_sha
    repo.files[path] = file
    commit = _commit(call, repo, file, message=body["message"])
    call.view.world.touch()
    payload = push_payload(
        call, repo, before=before, commit=commit, path=path, added=existing is None
    )
    call.sandbox.hub.emit("push", payload)
    reply = {"content": call.view.content_file(repo, file, with_content=False), "commit": commit}
    return Reply(201 if existing is None else 200, reply)


def _decode(body: dict[str, Any]) -> bytes:
    for key in ("message", "content"):
        if not isinstance(body.get(key), str):
            raise ApiError(422, f'Invalid request.\n\n"{key}" wasn\'t supplied.')
    try:
        return base64.b64decode(body["content"], validate=False)
    except (binascii.Error, ValueError):
        raise ApiError(422, "content is not valid Base64") from None


def _commit(call: Call, repo: Repo, file: File, *, message: str) -> dict[str, Any]:
    """Advance the branch head by one commit and describe it as the contents API does."""
    now = call.view.world.now()
    seed = f"{repo.head_sha}:{file.path}:{file.sha}:{now}:{message}"
    sha = hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()
    tree = hashlib.sha1(f"tree:{sha}".encode(), usedforsecurity=False).hexdigest()
    parent = repo.head_sha
    repo.head_sha, repo.pushed_at = sha, now
    api, html = f"{call.view.base}/repos/{repo.full_name}", f"{call.view.base}/{repo.full_name}"
    person = {
        "name": call.actor.login,
        "email": f"{call.actor.login}@users.noreply.sandbox",
        "date": now,
    }
    return {
        "sha": sha,
        "node_id": f"C_{sha[:20]}",
        "url": f"{api}/git/commits/{sha}",
        "html_url": f"{html}/commit/{sha}",
        "author": person,
        "committer": dict(person),
        "message": message,
        "tree": {"url": f"{api}/git/trees/{tree}", "sha": tree},
        "parents": [
            {
                "url": f"{api}/git/commits/{parent}",
                "html_url": f"{html}/commit/{parent}",
                "sha": parent,
            }
        ],
        "verification": {
            "verified": False,
            "reason": "unsigned",
            "signature": None,
            "payload": None,
            "verified_at": None,
        },
    }


def dispatch(call: Call) -> Reply:
    """``POST /repos/{o}/{r}/dispatches``: 204, and ``repository_dispatch`` to the hooks."""
    repo = call.repo()
    body = call.json_object()
    event_type = body.get("event_type")
    if not isinstance(event_type, str) or not 1 <= len(event_type) <= 100:
        raise ApiError(422, 'Invalid request.\n\n"event_type" wasn\'t supplied.')
    payload = body.get("client_payload")
    if payload is not None and (not isinstance(payload, dict) or len(payload) > MAX_DISPATCH_KEYS):
        raise ApiError(422, "client_payload must be an object with at most 10 properties")
    call.events.dispatch(repo, event_type, payload or {})
    return Reply(204)


_CONTENTS = "/repos/{owner}/{repo}/contents"
ENDPOINTS = [
    Endpoint("GET", _CONTENTS, get_content),
    Endpoint("GET", _CONTENTS + "/{path:path}", get_content),
    Endpoint("PUT", _CONTENTS + "/{path:path}", put_content),
    Endpoint("POST", "/repos/{owner}/{repo}/dispatches", dispatch),
]
