"""Helpers the REST modules share: finding an issue, reading label names, label changes.

Label changes live here because three routes make them (create issue, update issue, the
issue-labels routes) and each must emit the same webhooks: ``label created`` for a label
GitHub creates on the fly, then ``issues labeled`` / ``unlabeled`` per label.
"""

from __future__ import annotations

from typing import Any

from ghsandbox.model import Issue, Label, Repo
from ghsandbox.protocol import ActorKind, ApiError, Call, not_found, validation_failed
from ghsandbox.rest.limits import issue_label_name


def issue_of(call: Call, repo: Repo) -> Issue:
    """The ``{issue_number}`` of the path in ``repo``; 404 when absent."""
    issue = repo.issues.get(call.int_param("issue_number"))
    if issue is None:
        raise not_found()
    return issue


def by_app(call: Call) -> bool:
    """True when the caller is the App's installation (``performed_via_github_app``)."""
    return call.actor.kind is ActorKind.INSTALLATION


def label_names(value: Any, *, docs: str) -> list[str]:
    """Label names from any form GitHub takes, each checked as GitHub checks a label put on
    an issue (``docs``: the refusing operation's documentation).

    That is ``["a"]``, ``{"labels": ["a"]}`` or ``{"labels": [{"name": "a"}]}``.
    """
    if isinstance(value, dict):
        value = value.get("labels", [])
    if not isinstance(value, list):
        raise validation_failed("Label", "labels", "invalid", docs=docs)
    names = []
    for item in value:
        name = item.get("name") if isinstance(item, dict) else item
        names.append(issue_label_name(name, docs=docs))
    return names


def add_labels(call: Call, repo: Repo, issue: Issue, names: list[str]) -> None:
    """Add each label not already on ``issue`` (creating unknown ones), with their webhooks."""
    world, events = call.view.world, call.events
    for name in names:
        label, created = world.ensure_label(repo, name)
        if created:
            events.label(repo, label, "created")
        if label.id not in issue.labels:
            issue.labels.append(label.id)
            issue.updated_at = world.now()
            world.record_event(issue, "labeled", call.actor.login, label=label.name)
            world.touch()
            events.issue_label(repo, issue, label, "labeled")


def remove_label(call: Call, repo: Repo, issue: Issue, label: Label) -> None:
    """Take ``label`` off ``issue`` and send ``issues unlabeled``."""
    issue.labels.remove(label.id)
    issue.updated_at = call.view.world.now()
    call.view.world.record_event(issue, "unlabeled", call.actor.login, label=label.name)
    call.view.world.touch()
    call.events.issue_label(repo, issue, label, "unlabeled")


def set_labels(call: Call, repo: Repo, issue: Issue, names: list[str]) -> None:
    """Replace the issue's labels with ``names``: removals first, then additions, as deltas."""
    wanted = {name.lower() for name in names}
    for label_id in list(issue.labels):
        label = call.view.world.label_by_id(repo, label_id)
        if label is not None and label.name.lower() not in wanted:
            remove_label(call, repo, issue, label)
    add_labels(call, repo, issue, names)


def labels_reply(call: Call, repo: Repo, issue: Issue) -> list[dict[str, Any]]:
    return call.view.issue_labels(repo, issue)


def require_text(body: dict[str, Any], key: str, resource: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise validation_failed(resource, key, "missing_field")
    return value


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)
