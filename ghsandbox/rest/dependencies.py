"""Issue dependencies: "blocked by" and "blocking".

https://docs.github.com/rest/issues/issue-dependencies — a dependency links two issues by
their global ``id`` (not number), possibly across repositories; adding or removing one sends
``issue_dependencies`` ``blocked_by_added``/``removed`` for the blocked issue's repository and
``blocking_added``/``removed`` for the blocking issue's repository.
"""

from __future__ import annotations

from ghsandbox.model import Issue, Repo
from ghsandbox.pipeline import Endpoint
from ghsandbox.protocol import ActorKind, ApiError, Call, Reply, not_found, validation_failed
from ghsandbox.rest.common import issue_of

MAX_DEPENDENCIES = 50


def _other(call: Call, issue_id: object) -> tuple[Repo, Issue]:
    """The issue with global id ``issue_id``, if the caller may see it."""
    if not isinstance(issue_id, int) or isinstance(issue_id, bool):
        raise validation_failed("IssueDependency", "issue_id", "invalid")
    found = call.view.world.issue_by_id(issue_id)
    if found is None:
        raise not_found()
    actor = call.actor
    if actor.kind is ActorKind.INSTALLATION and found[0].installation_id != actor.installation_id:
        raise not_found()
    return found


def blocked_by(call: Call) -> Reply:
    repo = call.repo()
    issue = issue_of(call, repo)
    world = call.view.world
    blockers = [world.issue_by_id(i) for i in issue.blocked_by]
    page, link = call.page_of([call.view.issue(*b) for b in blockers if b is not None])
    return Reply(body=page, headers=link)


def blocking(call: Call) -> Reply:
    repo = call.repo()
    issue = issue_of(call, repo)
    world = call.view.world
    blocked = [world.issue_by_id(i) for i in sorted(world.blocking.get(issue.id, ()))]
    page, link = call.page_of([call.view.issue(*b) for b in blocked if b is not None])
    return Reply(body=page, headers=link)


def add(call: Call) -> Reply:
    """``POST .../dependencies/blocked_by`` ``{"issue_id"}``: answers the blocking issue."""
    repo = call.repo()
    issue = issue_of(call, repo)
    other = _other(call, call.json_object().get("issue_id"))
    if other[1] is issue:
        raise validation_failed(
            "IssueDependency", "issue_id", "invalid", message="An issue cannot be blocked by itself"
        )
    if other[1].id in issue.blocked_by:
        raise validation_failed("IssueDependency", "issue_id", "already_exists")
    if len(issue.blocked_by) >= MAX_DEPENDENCIES:
        raise ApiError(
            422,
            "Validation Failed",
            errors=[
                {
                    "resource": "IssueDependency",
                    "field": "issue_id",
                    "code": "invalid",
                    "message": f"An issue can be blocked by at most {MAX_DEPENDENCIES} issues",
                }
            ],
        )
    call.view.world.add_blocker(issue, other[1])
    call.events.dependency((repo, issue), other, added=True)
    return Reply(201, call.view.issue(*other))


def remove(call: Call) -> Reply:
    """``DELETE .../dependencies/blocked_by/{issue_id}``: answers the issue that blocked."""
    repo = call.repo()
    issue = issue_of(call, repo)
    other = _other(call, call.int_param("issue_id"))
    if other[1].id not in issue.blocked_by:
        raise not_found()
    call.view.world.remove_blocker(issue, other[1])
    call.events.dependency((repo, issue), other, added=False)
    return Reply(body=call.view.issue(*other))


_DEPS = "/repos/{owner}/{repo}/issues/{issue_number}/dependencies"
ENDPOINTS = [
    Endpoint("GET", _DEPS + "/blocked_by", blocked_by),
    Endpoint("POST", _DEPS + "/blocked_by", add),
    Endpoint("DELETE", _DEPS + "/blocked_by/{issue_id}", remove),
    Endpoint("GET", _DEPS + "/blocking", blocking),
]
