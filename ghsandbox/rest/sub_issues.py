"""Sub-issues: each issue's ordered list of sub-issues, and each sub-issue's one parent.

https://docs.github.com/rest/issues/sub-issues — a sub-issue is named by its global ``id``
(not number) and may sit in another repository of the same owner. Adding one sends
``sub_issues`` ``sub_issue_added`` for the parent's repository and ``parent_issue_added`` for
the sub-issue's (``*_removed`` when it goes); with ``replace_parent`` it first leaves its old
parent, with that pair's ``*_removed``. Reordering sends nothing. Every write answers the
parent issue, whose ``sub_issues_summary`` shows the change.

GitHub's limits (https://docs.github.com/issues/tracking-your-work-with-issues/using-issues/adding-sub-issues):
at most 100 sub-issues per parent, and eight levels of sub-issues below a top issue; an
issue has one parent, is not its own sub-issue, and is never its own ancestor.
"""

from __future__ import annotations

from typing import Any

import orjson

from ghsandbox.model import Issue, Repo
from ghsandbox.pipeline import Endpoint
from ghsandbox.protocol import ActorKind, ApiError, Call, Reply, not_found, validation_failed
from ghsandbox.rest.common import issue_of
from ghsandbox.state import World

MAX_SUB_ISSUES = 100
MAX_DEPTH = 8  # levels of sub-issues below the top issue of a hierarchy
DOCS = "https://docs.github.com/rest/issues/sub-issues"
ADD_DOCS = DOCS + "#add-sub-issue"
REMOVE_DOCS = DOCS + "#remove-sub-issue"
PRIORITY_DOCS = DOCS + "#reprioritize-sub-issue"


def list_sub_issues(call: Call) -> Reply:
    """``GET .../sub_issues``: the sub-issues in their priority order, paginated."""
    repo = call.repo()
    world = call.view.world
    found = [world.issue_by_id(i) for i in issue_of(call, repo).sub_issues]
    page, link = call.page_of([f for f in found if f is not None])
    return Reply(body=[call.view.issue(*f) for f in page], headers=link)


def get_parent(call: Call) -> Reply:
    """``GET .../parent``: the issue's parent; 404 when it is not a sub-issue."""
    repo = call.repo()
    found = call.view.world.parent_of(issue_of(call, repo))
    if found is None:
        raise not_found()
    return Reply(body=call.view.issue(*found))


def add(call: Call) -> Reply:
    """``POST .../sub_issues`` ``{"sub_issue_id", "replace_parent"}``: answers the parent."""
    repo = call.repo()
    parent = issue_of(call, repo)
    body = call.json_object()
    sub_id = _integer(body, "sub_issue_id", status=422, docs=ADD_DOCS)
    replace = body.get("replace_parent", False)
    if replace is not None and not isinstance(replace, bool):
        raise _invalid(body, "replace_parent", "a boolean", status=422, docs=ADD_DOCS)
    sub = _visible(call, sub_id)
    world, events = call.view.world, call.events
    _check_add(world, (repo, parent), sub, replace=bool(replace))
    old = world.parent_of(sub[1])
    if old is not None:
        world.remove_sub_issue(old[1], sub[1])
        events.sub_issue(old, sub, added=False)
    world.add_sub_issue(parent, sub[1])
    events.sub_issue((repo, parent), sub, added=True)
    return Reply(201, call.view.issue(repo, parent))


def remove(call: Call) -> Reply:
    """``DELETE .../sub_issue`` ``{"sub_issue_id"}``: answers the parent; 404 when the issue is
    not one of its sub-issues."""
    repo = call.repo()
    parent = issue_of(call, repo)
    sub = _visible(call, _integer(call.json_object(), "sub_issue_id", status=400,
                                  docs=REMOVE_DOCS))
    if sub[1].id not in parent.sub_issues:
        raise not_found(REMOVE_DOCS)
    call.view.world.remove_sub_issue(parent, sub[1])
    call.events.sub_issue((repo, parent), sub, added=False)
    return Reply(body=call.view.issue(repo, parent))


def reprioritize(call: Call) -> Reply:
    """``PATCH .../sub_issues/priority`` ``{"sub_issue_id", "after_id" | "before_id"}``: moves
    the sub-issue just after or before another of the parent's; answers the parent."""
    repo = call.repo()
    parent = issue_of(call, repo)
    body = call.json_object()
    sub_id = _integer(body, "sub_issue_id", status=422, docs=PRIORITY_DOCS)
    after = _optional_integer(body, "after_id", status=422, docs=PRIORITY_DOCS)
    before = _optional_integer(body, "before_id", status=422, docs=PRIORITY_DOCS)
    if (after is None) == (before is None):
        raise _simple("Specify exactly one of after_id and before_id")
    if sub_id not in parent.sub_issues:
        raise not_found(PRIORITY_DOCS)
    anchor, offset = (after, 1) if after is not None else (before, 0)
    if anchor is None or anchor == sub_id or anchor not in parent.sub_issues:
        raise _simple(f"{'after_id' if offset else 'before_id'} must be another sub-issue "
                      "of this issue")
    order = parent.sub_issues
    order.remove(sub_id)
    order.insert(order.index(anchor) + offset, sub_id)
    call.view.world.touch()
    return Reply(body=call.view.issue(repo, parent))


def _check_add(
    world: World, parent: tuple[Repo, Issue], sub: tuple[Repo, Issue], *, replace: bool
) -> None:
    """GitHub's refusals of a new sub-issue, as 422s naming the reason."""
    (parent_repo, parent_issue), (sub_repo, sub_issue) = parent, sub
    if sub_issue is parent_issue:
        raise _refused("An issue cannot be a sub-issue of itself")
    if sub_repo.owner.lower() != parent_repo.owner.lower():
        raise _refused("The sub-issue must belong to the same repository owner as the parent")
    current = world.parents.get(sub_issue.id)
    if current == parent_issue.id:
        raise validation_failed("Issue", "sub_issue_id", "already_exists", docs=ADD_DOCS,
                                message="The issue is already a sub-issue of this issue")
    if current is not None and not replace:
        raise _refused("Sub issue may only have one parent")
    above = _ancestors(world, parent_issue)
    if sub_issue.id in above:
        raise _refused("An issue cannot be a sub-issue of its own sub-issue")
    if len(parent_issue.sub_issues) >= MAX_SUB_ISSUES:
        raise _refused(f"Parent cannot have more than {MAX_SUB_ISSUES} sub-issues")
    if len(above) + 1 + _height(world, sub_issue) > MAX_DEPTH:
        raise _refused(f"Sub-issues cannot be nested more than {MAX_DEPTH} levels deep")


def _ancestors(world: World, issue: Issue) -> list[int]:
    """The ids above ``issue``: its parent, that one's parent, and so on to the top."""
    found: list[int] = []
    parent_id = world.parents.get(issue.id)
    while parent_id is not None and parent_id not in found:
        found.append(parent_id)
        parent_id = world.parents.get(parent_id)
    return found


def _height(world: World, issue: Issue) -> int:
    """Levels of sub-issues below ``issue`` (0 when it has none)."""
    below = (world.issue_by_id(i) for i in issue.sub_issues)
    return max((1 + _height(world, b[1]) for b in below if b is not None), default=0)


def _visible(call: Call, issue_id: int) -> tuple[Repo, Issue]:
    """The issue with global id ``issue_id``, if the caller may see it; 404 otherwise."""
    found = call.view.world.issue_by_id(issue_id)
    if found is None:
        raise not_found()
    actor = call.actor
    if actor.kind is ActorKind.INSTALLATION:
        foreign = found[0].installation_id != actor.installation_id
        if foreign or (actor.repo_ids is not None and found[0].id not in actor.repo_ids):
            raise not_found()
    return found


def _integer(body: dict[str, Any], key: str, *, status: int, docs: str) -> int:
    """``body[key]``, an integer; otherwise GitHub's answer to a body its schema refuses."""
    if key not in body:
        raise ApiError(status, f"Invalid request.\n\n\"{key}\" wasn't supplied.", docs=docs)
    value = body[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(body, key, "an integer", status=status, docs=docs)
    return value


def _optional_integer(body: dict[str, Any], key: str, *, status: int, docs: str) -> int | None:
    return None if body.get(key) is None else _integer(body, key, status=status, docs=docs)


def _invalid(body: dict[str, Any], key: str, kind: str, *, status: int, docs: str) -> ApiError:
    shown = orjson.dumps(body[key]).decode()
    return ApiError(status, f"Invalid request.\n\nFor 'properties/{key}', {shown} is not {kind}.",
                    docs=docs)


def _refused(message: str) -> ApiError:
    """A 422 for a sub-issue GitHub will not add, with its reason."""
    return validation_failed("Issue", "sub_issue_id", "custom", message=message, docs=ADD_DOCS)


def _simple(message: str) -> ApiError:
    """The reprioritize route's 422, whose ``errors`` are plain strings."""
    return ApiError(422, "Validation Failed", errors=[message], docs=PRIORITY_DOCS)


_ISSUE = "/repos/{owner}/{repo}/issues/{issue_number}"
ENDPOINTS = [
    Endpoint("GET", _ISSUE + "/sub_issues", list_sub_issues),
    Endpoint("POST", _ISSUE + "/sub_issues", add),
    Endpoint("DELETE", _ISSUE + "/sub_issue", remove),
    Endpoint("PATCH", _ISSUE + "/sub_issues/priority", reprioritize),
    Endpoint("GET", _ISSUE + "/parent", get_parent),
]
