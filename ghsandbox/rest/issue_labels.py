"""Labels on an issue: list, add, set, remove one, remove all.

https://docs.github.com/rest/issues/labels — adding a label the repository lacks creates it
(``label created`` is sent first); removing a label the issue does not have is a 404
``Label does not exist``.
"""

from __future__ import annotations

from ghsandbox.pipeline import Endpoint
from ghsandbox.protocol import ApiError, Call, Reply
from ghsandbox.rest.common import add_labels, issue_of, label_names, remove_label, set_labels
from ghsandbox.rest.limits import LABELS_DOCS


def list_labels(call: Call) -> Reply:
    repo = call.repo()
    page, link = call.page_of(call.view.issue_labels(repo, issue_of(call, repo)))
    return Reply(body=page, headers=link)


def add(call: Call) -> Reply:
    """``POST .../labels``: adds to the existing labels; answers the issue's full label list."""
    repo = call.repo()
    issue = issue_of(call, repo)
    names = label_names(call.body, docs=LABELS_DOCS + "#add-labels-to-an-issue")
    if not names:
        raise ApiError(
            422,
            "Validation Failed",
            errors=[{"resource": "Label", "field": "labels", "code": "missing_field"}],
        )
    add_labels(call, repo, issue, names)
    return Reply(body=call.view.issue_labels(repo, issue))


def replace(call: Call) -> Reply:
    """``PUT .../labels``: the issue ends with exactly these labels (deltas sent as webhooks)."""
    repo = call.repo()
    issue = issue_of(call, repo)
    body = call.body if call.body is not None else []
    set_labels(call, repo, issue, label_names(body, docs=LABELS_DOCS + "#set-labels-for-an-issue"))
    return Reply(body=call.view.issue_labels(repo, issue))


def remove_all(call: Call) -> Reply:
    repo = call.repo()
    set_labels(call, repo, issue_of(call, repo), [])
    return Reply(204)


def remove_one(call: Call) -> Reply:
    """``DELETE .../labels/{name}``: 404 ``Label does not exist`` unless the issue has it."""
    repo = call.repo()
    issue = issue_of(call, repo)
    label = repo.labels.get(call.params["name"].lower())
    if label is None or label.id not in issue.labels:
        raise ApiError(
            404, "Label does not exist", docs=LABELS_DOCS + "#remove-a-label-from-an-issue"
        )
    remove_label(call, repo, issue, label)
    return Reply(body=call.view.issue_labels(repo, issue))


_ISSUE = "/repos/{owner}/{repo}/issues/{issue_number}/labels"
ENDPOINTS = [
    Endpoint("GET", _ISSUE, list_labels),
    Endpoint("POST", _ISSUE, add),
    Endpoint("PUT", _ISSUE, replace),
    Endpoint("DELETE", _ISSUE, remove_all),
    Endpoint("DELETE", _ISSUE + "/{name:path}", remove_one),
]
