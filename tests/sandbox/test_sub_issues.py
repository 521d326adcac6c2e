"""Sub-issues behave as on GitHub: added by id, ordered, summarised on the parent, limited,
refused with GitHub's statuses, announced to both sides as ``sub_issues`` webhooks, and kept
across a restart. (``test_conformance`` checks every answer and payload against the schemas.)

GitHub publishes no ``sub_issues`` example in ``@octokit/webhooks-examples`` (7.6.1), so the
payloads' shape is checked against the webhook schemas of ``@octokit/openapi-webhooks``.
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from ghsandbox import persist
from ghsandbox.model import AccountType
from ghsandbox.rest.sub_issues import MAX_DEPTH, MAX_SUB_ISSUES
from ghsandbox.state import World
from ghsandbox.testing import RunningSandbox, SandboxClient, WebhookReceiver
from tests.prerequisites import missing
from tests.sandbox import openapi
from tests.sandbox.conftest import Repo, app_jwt, bearer, events, new_issue


def _add(client: SandboxClient, repo: Repo, parent: dict[str, Any], sub: dict[str, Any],
         **extra: Any) -> httpx.Response:
    return client.as_user("alice", "POST", f"{repo.path}/issues/{parent['number']}/sub_issues",
                          json={"sub_issue_id": sub["id"], **extra})


def _get(client: SandboxClient, repo: Repo, issue: dict[str, Any], tail: str = "") -> Any:
    return client.as_user("alice", "GET", f"{repo.path}/issues/{issue['number']}{tail}").json()


def _refusal(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    message: str = response.json()["errors"][0]["message"]
    return message


def test_sub_issues_are_added_by_id_listed_in_order_and_summarised_on_the_parent(
    client: SandboxClient, repo: Repo
) -> None:
    parent, first, second = (new_issue(client, repo) for _ in range(3))
    added = _add(client, repo, parent, first)
    assert added.status_code == 201 and added.json()["id"] == parent["id"]  # answers the parent
    assert added.json()["sub_issues_summary"] == {"total": 1, "completed": 0,
                                                  "percent_completed": 0}
    _add(client, repo, parent, second)
    assert [i["id"] for i in _get(client, repo, parent, "/sub_issues")] == [first["id"],
                                                                           second["id"]]
    client.as_user("alice", "PATCH", f"{repo.path}/issues/{second['number']}",
                   json={"state": "closed"})
    assert _get(client, repo, parent)["sub_issues_summary"] == {
        "total": 2, "completed": 1, "percent_completed": 50}
    assert _get(client, repo, first)["parent_issue_url"] == parent["url"]
    assert _get(client, repo, parent)["parent_issue_url"] is None
    assert _get(client, repo, first, "/parent")["id"] == parent["id"]
    paged = client.as_user("alice", "GET", f"{repo.path}/issues/{parent['number']}/sub_issues",
                           params={"per_page": 1})
    assert [i["id"] for i in paged.json()] == [first["id"]] and 'rel="next"' in paged.headers[
        "link"]


def test_adding_a_sub_issue_notifies_the_parent_s_repository_and_the_sub_issue_s(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    """One change, two deliveries: ``sub_issue_added`` to the parent's repository naming the
    sub-issue's (``sub_issue_repo``), ``parent_issue_added`` to the sub-issue's naming the
    parent's (``parent_issue_repo``); the issues in both show the change made."""
    client.create_repo("acme", "gears")
    parent = new_issue(client, repo)
    sub = client.as_user("alice", "POST", "/repos/acme/gears/issues", json={"title": "g"}).json()
    assert _add(client, repo, parent, sub).status_code == 201
    assert events(receiver, client)[-2:] == [("sub_issues", "sub_issue_added"),
                                             ("sub_issues", "parent_issue_added")]
    on_parent, on_sub = (w.payload for w in receiver.received[-2:])
    assert on_parent["repository"]["full_name"] == "acme/widgets"
    assert on_parent["sub_issue_repo"]["full_name"] == "acme/gears"
    assert on_sub["repository"]["full_name"] == "acme/gears"
    assert on_sub["parent_issue_repo"]["full_name"] == "acme/widgets"
    for payload in (on_parent, on_sub):
        assert (payload["parent_issue_id"], payload["sub_issue_id"]) == (parent["id"], sub["id"])
        assert payload["parent_issue"]["sub_issues_summary"]["total"] == 1
        assert payload["sub_issue"]["parent_issue_url"] == parent["url"]
        assert payload["sender"]["login"] == "alice"
        assert payload["installation"]["id"] == repo.installation_id
    _assert_shaped_as_the_schema("sub-issues-sub-issue-added", on_parent)
    _assert_shaped_as_the_schema("sub-issues-parent-issue-added", on_sub)


def _assert_shaped_as_the_schema(webhook: str, payload: dict[str, Any]) -> None:
    """Every field the webhook schema requires, and none it does not describe."""
    try:
        description = openapi.webhooks()
    except openapi.Unavailable as exc:
        missing(str(exc))
    ref = description.document["webhooks"][webhook]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["$ref"]
    schema, _ = description.resolve({"$ref": ref})
    assert set(schema["required"]) <= set(payload) <= set(schema["properties"])


def test_replace_parent_takes_the_sub_issue_from_its_old_parent_first(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    old, new, sub = (new_issue(client, repo) for _ in range(3))
    _add(client, repo, old, sub)
    assert "may only have one parent" in _refusal(_add(client, repo, new, sub))
    moved = _add(client, repo, new, sub, replace_parent=True)
    assert moved.status_code == 201 and moved.json()["sub_issues_summary"]["total"] == 1
    assert _get(client, repo, old, "/sub_issues") == []
    assert _get(client, repo, sub, "/parent")["id"] == new["id"]
    assert events(receiver, client)[-4:] == [
        ("sub_issues", "sub_issue_removed"), ("sub_issues", "parent_issue_removed"),
        ("sub_issues", "sub_issue_added"), ("sub_issues", "parent_issue_added")]
    assert receiver.received[-4].payload["parent_issue_id"] == old["id"]
    assert receiver.received[-2].payload["parent_issue_id"] == new["id"]


def test_removing_a_sub_issue_answers_the_parent_and_tells_both_sides(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    parent, sub = new_issue(client, repo), new_issue(client, repo)
    _add(client, repo, parent, sub)
    path = f"{repo.path}/issues/{parent['number']}/sub_issue"
    removed = client.as_user("alice", "DELETE", path, json={"sub_issue_id": sub["id"]})
    assert removed.status_code == 200 and removed.json()["id"] == parent["id"]
    assert removed.json()["sub_issues_summary"]["total"] == 0
    assert events(receiver, client)[-2:] == [("sub_issues", "sub_issue_removed"),
                                             ("sub_issues", "parent_issue_removed")]
    assert receiver.received[-1].payload["sub_issue"]["parent_issue_url"] is None
    again = client.as_user("alice", "DELETE", path, json={"sub_issue_id": sub["id"]})
    assert again.status_code == 404
    assert client.as_user("alice", "GET", f"{repo.path}/issues/{sub['number']}/parent"
                          ).status_code == 404


def test_reprioritize_moves_a_sub_issue_after_or_before_another_and_sends_nothing(
    client: SandboxClient, repo: Repo, receiver: WebhookReceiver
) -> None:
    parent, a, b, c = (new_issue(client, repo) for _ in range(4))
    for sub in (a, b, c):
        _add(client, repo, parent, sub)
    path = f"{repo.path}/issues/{parent['number']}/sub_issues/priority"
    sent = len(events(receiver, client))
    moved = client.as_user("alice", "PATCH", path, json={"sub_issue_id": a["id"],
                                                         "after_id": c["id"]})
    assert moved.status_code == 200 and moved.json()["id"] == parent["id"]
    client.as_user("alice", "PATCH", path, json={"sub_issue_id": c["id"], "before_id": b["id"]})
    assert [i["id"] for i in _get(client, repo, parent, "/sub_issues")] == [c["id"], b["id"],
                                                                           a["id"]]
    assert len(events(receiver, client)) == sent
    both = client.as_user("alice", "PATCH", path, json={"sub_issue_id": a["id"],
                                                        "after_id": b["id"], "before_id": c["id"]})
    assert both.status_code == 422 and isinstance(both.json()["errors"][0], str)
    stranger = new_issue(client, repo)
    assert client.as_user("alice", "PATCH", path, json={
        "sub_issue_id": stranger["id"], "after_id": a["id"]}).status_code == 404
    assert client.as_user("alice", "PATCH", path, json={
        "sub_issue_id": a["id"], "after_id": stranger["id"]}).status_code == 422


def test_an_issue_is_not_its_own_sub_issue_nor_its_own_ancestor(
    client: SandboxClient, repo: Repo
) -> None:
    top, middle, low = (new_issue(client, repo) for _ in range(3))
    assert "itself" in _refusal(_add(client, repo, top, top))
    _add(client, repo, top, middle)
    _add(client, repo, middle, low)
    assert "own sub-issue" in _refusal(_add(client, repo, low, top))
    twice = _add(client, repo, top, middle)
    assert twice.status_code == 422 and twice.json()["errors"][0]["code"] == "already_exists"
    assert "own sub-issue" in _refusal(_add(client, repo, low, top, replace_parent=True))


def test_a_sub_issue_belongs_to_the_parent_s_owner(client: SandboxClient, repo: Repo) -> None:
    client.create_repo("solo", "notes", owner_type="User")
    other = client.as_user("alice", "POST", "/repos/solo/notes/issues", json={"title": "n"})
    parent = new_issue(client, repo)
    assert "same repository owner" in _refusal(_add(client, repo, parent, other.json()))


def test_a_parent_holds_at_most_100_sub_issues(client: SandboxClient, repo: Repo) -> None:
    parent = new_issue(client, repo)
    for _ in range(MAX_SUB_ISSUES):
        assert _add(client, repo, parent, new_issue(client, repo)).status_code == 201
    assert MAX_SUB_ISSUES == 100
    assert "more than 100" in _refusal(_add(client, repo, parent, new_issue(client, repo)))


def test_sub_issues_nest_at_most_eight_levels_below_the_top(
    client: SandboxClient, repo: Repo
) -> None:
    chain = [new_issue(client, repo) for _ in range(MAX_DEPTH + 2)]
    for upper, lower in itertools.pairwise(chain[: MAX_DEPTH + 1]):
        assert _add(client, repo, upper, lower).status_code == 201
    assert MAX_DEPTH == 8
    assert "8 levels" in _refusal(_add(client, repo, chain[MAX_DEPTH], chain[-1]))
    # a hierarchy that would grow too deep when joined below another is refused as a whole
    assert "8 levels" in _refusal(_add(client, repo, chain[-1], chain[0]))


def test_unknown_issues_are_404_and_bodies_the_schema_refuses_are_400_or_422(
    client: SandboxClient, repo: Repo
) -> None:
    parent = new_issue(client, repo)
    one = f"{repo.path}/issues/{parent['number']}"
    subs, sub_issue = f"{one}/sub_issues", f"{one}/sub_issue"
    assert client.as_user("a", "POST", subs, json={"sub_issue_id": 1}).status_code == 404
    assert client.as_user("a", "POST", f"{repo.path}/issues/999/sub_issues",
                          json={"sub_issue_id": parent["id"]}).status_code == 404
    assert client.as_user("a", "GET", f"{repo.path}/issues/999/sub_issues").status_code == 404
    missing_id = client.as_user("a", "POST", subs, json={})
    assert missing_id.status_code == 422 and "wasn't supplied" in missing_id.json()["message"]
    wrong = client.as_user("a", "POST", subs, json={"sub_issue_id": "7"})
    assert wrong.status_code == 422 and "is not an integer" in wrong.json()["message"]
    flag = client.as_user("a", "POST", subs, json={"sub_issue_id": parent["id"],
                                                   "replace_parent": "yes"})
    assert flag.status_code == 422 and "is not a boolean" in flag.json()["message"]
    assert client.as_user("a", "POST", subs, content=b"[").status_code == 400
    assert client.as_user("a", "DELETE", sub_issue, json={}).status_code == 400
    assert client.as_user("a", "DELETE", sub_issue,
                          json={"sub_issue_id": parent["id"]}).status_code == 404


def test_an_installation_links_only_issues_it_can_see(
    sandbox: RunningSandbox, client: SandboxClient, repo: Repo
) -> None:
    """The App writes with its installation token (issues: write); a token of another
    installation gets 403 on the parent's repository and 404 for an issue it cannot see;
    the App's JWT is not an installation and gets 403."""
    parent, sub = new_issue(client, repo), new_issue(client, repo)
    path = f"{repo.path}/issues/{parent['number']}/sub_issues"
    assert client.as_token(repo.token, "POST", path,
                           json={"sub_issue_id": sub["id"]}).status_code == 201
    solo = client.create_repo("solo", "notes", owner_type="User")
    foreign = client.installation_token(solo["installation_id"])
    theirs = client.as_token(foreign, "POST", "/repos/solo/notes/issues", json={"title": "x"})
    assert theirs.status_code == 201
    assert client.as_token(foreign, "POST", path,
                           json={"sub_issue_id": sub["id"]}).status_code == 403
    assert client.as_token(foreign, "POST", "/repos/solo/notes/issues/1/sub_issues",
                           json={"sub_issue_id": sub["id"]}).status_code == 404
    jwt = client.http.get(path, headers=bearer(app_jwt(sandbox.config)))
    assert jwt.status_code == 403


def test_the_app_subscribes_to_sub_issues(sandbox: RunningSandbox, client: SandboxClient,
                                          repo: Repo) -> None:
    app = client.http.get("/app", headers=bearer(app_jwt(sandbox.config))).json()
    assert "sub_issues" in app["events"] and app["permissions"]["issues"] == "write"
    by_app = client.as_token(repo.token, "POST", f"{repo.path}/issues", json={"title": "t"})
    # the webhook schemas' list of App events predates sub_issues, as it does issue_dependencies
    assert "sub_issues" not in by_app.json()["performed_via_github_app"]["events"]


def test_sub_issues_and_their_order_survive_a_saved_state() -> None:
    world = World()
    repo, _ = world.add_repo("acme", "widgets", AccountType.ORGANIZATION)
    parent, first, second = (world.new_issue(repo, title="t", body=None, author="a")
                             for _ in range(3))
    world.add_sub_issue(parent, second)
    world.add_sub_issue(parent, first)
    restored = World()
    persist.load(persist.dump(world), restored)
    again = restored.repo("acme", "widgets")
    assert again is not None
    assert again.issues[1].sub_issues == [second.id, first.id]
    found = restored.parent_of(again.issues[2])
    assert found is not None and found[1].id == parent.id
