"""Repository labels: list, create, get, update, delete.

https://docs.github.com/rest/issues/labels — names are unique regardless of case and at most
50 characters; a clash is 422 with ``code: already_exists``. Deleting a label takes it off
every issue without ``unlabeled`` webhooks, as on GitHub (only ``label deleted`` is sent).
"""

from __future__ import annotations

import re
from typing import Any

from ghsandbox.model import Label, Repo
from ghsandbox.pipeline import Endpoint
from ghsandbox.protocol import Call, Reply, not_found, validation_failed
from ghsandbox.rest.limits import LABELS_DOCS, repository_label_name

COLOR = re.compile(r"^[0-9a-fA-F]{6}$")
MAX_DESCRIPTION = 100


def list_labels(call: Call) -> Reply:
    repo = call.repo()
    page, link = call.page_of([call.view.label(repo, lab) for lab in repo.labels.values()])
    return Reply(body=page, headers=link)


def create(call: Call) -> Reply:
    repo = call.repo()
    body = call.json_object()
    name = repository_label_name(body.get("name"), docs=LABELS_DOCS + "#create-a-label")
    color, description = _color(body, "ededed"), _description(body, None)
    if name.lower() in repo.labels:
        raise validation_failed("Label", "name", "already_exists")
    label, _ = call.view.world.ensure_label(repo, name)
    label.color, label.description = color, description
    call.events.label(repo, label, "created")
    return Reply(201, call.view.label(repo, label))


def _label(call: Call, repo: Repo) -> Label:
    label = repo.labels.get(call.params["name"].lower())
    if label is None:
        raise not_found()
    return label


def get(call: Call) -> Reply:
    repo = call.repo()
    return Reply(body=call.view.label(repo, _label(call, repo)))


def update(call: Call) -> Reply:
    """``PATCH .../labels/{name}`` with ``new_name``, ``color``, ``description``."""
    repo = call.repo()
    label = _label(call, repo)
    body = call.json_object()
    new_name = label.name
    if "new_name" in body:
        new_name = repository_label_name(body["new_name"], docs=LABELS_DOCS + "#update-a-label")
    color, description = _color(body, label.color), _description(body, label.description)
    clash = repo.labels.get(new_name.lower())
    if clash is not None and clash is not label:
        raise validation_failed("Label", "name", "already_exists")
    changes: dict[str, Any] = {}
    for key, old, new in (
        ("name", label.name, new_name),
        ("color", label.color, color),
        ("description", label.description, description),
    ):
        if old != new:
            changes[key] = {"from": old or ""}
    del repo.labels[label.name.lower()]
    label.name, label.color, label.description = new_name, color, description
    repo.labels[new_name.lower()] = label
    call.view.world.touch()
    if changes:
        call.events.label(repo, label, "edited", changes=changes)
    return Reply(body=call.view.label(repo, label))


def delete(call: Call) -> Reply:
    repo = call.repo()
    label = _label(call, repo)
    del repo.labels[label.name.lower()]
    for issue in repo.issues.values():
        if label.id in issue.labels:
            issue.labels.remove(label.id)
    call.view.world.touch()
    call.events.label(repo, label, "deleted")
    return Reply(204)


def _color(body: dict[str, Any], default: str) -> str:
    color = body.get("color", default)
    if not isinstance(color, str) or not COLOR.match(color.removeprefix("#")):
        raise validation_failed("Label", "color", "invalid")
    return color.removeprefix("#").lower()


def _description(body: dict[str, Any], default: str | None) -> str | None:
    description = body.get("description", default)
    if description is not None and (
        not isinstance(description, str) or len(description) > MAX_DESCRIPTION
    ):
        raise validation_failed("Label", "description", "invalid")
    return description


_REPO = "/repos/{owner}/{repo}/labels"
ENDPOINTS = [
    Endpoint("GET", _REPO, list_labels),
    Endpoint("POST", _REPO, create),
    Endpoint("GET", _REPO + "/{name:path}", get),
    Endpoint("PATCH", _REPO + "/{name:path}", update),
    Endpoint("DELETE", _REPO + "/{name:path}", delete),
]
