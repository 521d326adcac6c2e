"""Issues: list (filters, pagination), get, create, update, and each issue's timeline events.

https://docs.github.com/rest/issues/issues
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ghsandbox.model import Issue, Repo
from ghsandbox.pipeline import Endpoint
from ghsandbox.protocol import Call, Reply, validation_failed
from ghsandbox.rest.common import by_app, issue_of, label_names, set_labels
from ghsandbox.rest.limits import ISSUES_DOCS, check_issue_text

STATES = ("open", "closed", "all")
SORTS = {"created": "created_at", "updated": "updated_at", "comments": "comments"}
CLOSE_REASONS = ("completed", "not_planned", "duplicate")
CREATE_DOCS = ISSUES_DOCS + "#create-an-issue"
UPDATE_DOCS = ISSUES_DOCS + "#update-an-issue"


def list_issues(call: Call) -> Reply:
    """``GET /repos/{o}/{r}/issues`` with ``labels``, ``state``, ``since``, ``creator``, sorting."""
    repo = call.repo()
    query = call.query
    state = query.get("state", "open")
    if state not in STATES:
        raise validation_failed("Issue", "state", "invalid")
    wanted = {n.strip().lower() for n in query.get("labels", "").split(",") if n.strip()}
    since = _iso_z(query["since"]) if query.get("since") else None
    creator = query.get("creator")
    names = {lab.id: lab.name.lower() for lab in repo.labels.values()}
    found = [
        issue
        for issue in repo.issues.values()
        if (state == "all" or issue.state == state)
        and wanted <= {names.get(i) for i in issue.labels}
        and (since is None or issue.updated_at >= since)
        and (creator is None or issue.author.lower() == creator.lower())
    ]
    key = SORTS.get(query.get("sort", "created"), "created_at")
    found.sort(key=lambda i: (getattr(i, key), i.number), reverse=query.get("direction") != "asc")
    page, link = call.page_of(found)
    return Reply(body=[call.view.issue(repo, i) for i in page], headers=link)


def _iso_z(value: str) -> str:
    """A ``since`` time in the form issues store (``...Z``), so text comparison orders it."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise validation_failed("Issue", "since", "invalid") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def get_issue(call: Call) -> Reply:
    repo = call.repo()
    return Reply(body=call.view.issue(repo, issue_of(call, repo)))


def create_issue(call: Call) -> Reply:
    """``POST /repos/{o}/{r}/issues``: sends ``label created`` for new labels, ``opened``, then
    ``labeled`` for each label the issue starts with."""
    repo = call.repo()
    body = call.json_object()
    title = body.get("title")
    if isinstance(title, int) and not isinstance(title, bool):
        title = str(title)
    if not isinstance(title, str) or not title.strip():
        raise validation_failed("Issue", "title", "missing_field")
    text = body.get("body")
    if text is not None and not isinstance(text, str):
        raise validation_failed("Issue", "body", "invalid")
    check_issue_text(title, text, docs=CREATE_DOCS)
    names = label_names(body.get("labels", []), docs=CREATE_DOCS)
    world, events = call.view.world, call.events
    issue = world.new_issue(repo, title=title, body=text, author=call.actor.login)
    issue.via_app = by_app(call)
    labels = []
    for name in names:
        label, created = world.ensure_label(repo, name)
        if created:
            events.label(repo, label, "created")
        if label.id not in issue.labels:
            issue.labels.append(label.id)
            labels.append(label)
    events.issue(repo, issue, "opened")
    for label in labels:
        world.record_event(issue, "labeled", call.actor.login, label=label.name)
        events.issue_label(repo, issue, label, "labeled")
    return Reply(201, call.view.issue(repo, issue))


def update_issue(call: Call) -> Reply:
    """``PATCH /repos/{o}/{r}/issues/{n}``: ``edited``, then ``closed``/``reopened``, then the
    label deltas, each as its own webhook, as GitHub sends them."""
    repo = call.repo()
    issue = issue_of(call, repo)
    body = call.json_object()
    _check_update(call, body)
    _edit_text(call, repo, issue, body)
    if "state" in body:
        _change_state(call, repo, issue, body)
    if "labels" in body:
        set_labels(call, repo, issue, label_names(body["labels"] or [], docs=UPDATE_DOCS))
    return Reply(body=call.view.issue(repo, issue))


def _check_update(call: Call, body: dict[str, Any]) -> None:
    """Validate every field before changing anything, so a 422 leaves the issue untouched."""
    if "state" in body and body["state"] not in ("open", "closed"):
        raise validation_failed("Issue", "state", "invalid")
    reason = body.get("state_reason")
    if reason is not None and reason not in (*CLOSE_REASONS, "reopened"):
        raise validation_failed("Issue", "state_reason", "invalid")
    if reason == "duplicate" and "duplicate_issue_id" in body:
        target = body["duplicate_issue_id"]
        if not isinstance(target, int) or call.view.world.issue_by_id(target) is None:
            raise validation_failed("Issue", "duplicate_issue_id", "invalid")
    for key in ("title", "body"):
        value = body.get(key)
        if value is not None and not isinstance(value, str | int):
            raise validation_failed("Issue", key, "invalid")
    title, text = body.get("title"), body.get("body")
    check_issue_text(
        None if title is None else str(title),
        None if text is None else str(text),
        docs=UPDATE_DOCS,
    )
    if "labels" in body and body["labels"] is not None:
        label_names(body["labels"], docs=UPDATE_DOCS)


def _edit_text(call: Call, repo: Repo, issue: Issue, body: dict[str, Any]) -> None:
    changes: dict[str, Any] = {}
    title = body.get("title")
    if title is not None and str(title) != issue.title:
        changes["title"] = {"from": issue.title}
        issue.title = str(title)
    if "body" in body and body["body"] != issue.body:
        changes["body"] = {"from": issue.body or ""}
        issue.body = body["body"]
    if changes:
        issue.updated_at = call.view.world.now()
        call.view.world.touch()
        call.events.issue(repo, issue, "edited", changes=changes)


def _change_state(call: Call, repo: Repo, issue: Issue, body: dict[str, Any]) -> None:
    state, reason, world = body["state"], body.get("state_reason"), call.view.world
    if state == issue.state:
        if state == "closed" and reason in CLOSE_REASONS:
            issue.state_reason = reason
        return
    now = world.now()
    world.set_state(repo, issue, state)
    issue.updated_at = now
    if state == "closed":
        issue.state_reason = reason if reason in CLOSE_REASONS else "completed"
        issue.closed_at, issue.closed_by = now, call.actor.login
    else:
        issue.state_reason, issue.closed_at, issue.closed_by = "reopened", None, None
    action = "closed" if state == "closed" else "reopened"
    world.record_event(issue, action, call.actor.login, state_reason=issue.state_reason)
    world.touch()
    call.events.issue(repo, issue, action)


def list_events(call: Call) -> Reply:
    """``GET .../issues/{n}/events``: labeled, unlabeled, closed and reopened, oldest first."""
    repo = call.repo()
    page, link = call.page_of(call.view.issue_events(repo, issue_of(call, repo)))
    return Reply(body=page, headers=link)


ENDPOINTS = [
    Endpoint("GET", "/repos/{owner}/{repo}/issues", list_issues),
    Endpoint("POST", "/repos/{owner}/{repo}/issues", create_issue),
    Endpoint("GET", "/repos/{owner}/{repo}/issues/{issue_number}", get_issue),
    Endpoint("PATCH", "/repos/{owner}/{repo}/issues/{issue_number}", update_issue),
    Endpoint("GET", "/repos/{owner}/{repo}/issues/{issue_number}/events", list_events),
]
