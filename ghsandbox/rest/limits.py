"""GitHub's size limits on what people write, answered with GitHub's own 422 bodies.

GitHub does not document these limits on its REST pages; the numbers and the ``errors``
entries below are what api.github.com answers (as quoted in many client bug reports):

- an issue title is at most 256 characters: ``{"resource": "Issue", "code": "custom",
  "field": "title", "message": "title is too long (maximum is 256 characters)"}``;
- an issue body is at most 65,536 characters (``field: body``, same shape);
- a comment body is at most 65,536 characters: ``{"resource": "IssueComment", "code":
  "unprocessable", "field": "data", "message": "Body is too long (maximum is 65536
  characters)"}``;
- a label name is at most 50 characters: creating or renaming a repository label answers
  ``{"resource": "Label", "code": "custom", "field": "name", "message": "name is too long
  (maximum is 50 characters)"}``, while adding an unknown label to an issue (which would
  create it) answers ``{"value": "<name>", "resource": "Label", "field": "name", "code":
  "invalid"}``.

Lengths are counted in characters (code points), as GitHub counts them. Each error names
the documentation of the operation that refused it, as GitHub's ``documentation_url`` does.
"""

from __future__ import annotations

from typing import Any

from ghsandbox.protocol import validation_failed

MAX_TITLE = 256
MAX_BODY = 65_536
MAX_LABEL_NAME = 50
ISSUES_DOCS = "https://docs.github.com/rest/issues/issues"
LABELS_DOCS = "https://docs.github.com/rest/issues/labels"
COMMENTS_DOCS = "https://docs.github.com/rest/issues/comments"


def check_issue_text(title: str | None, body: str | None, *, docs: str) -> None:
    """422 when an issue's title or body is longer than GitHub stores."""
    for field_name, value, maximum in (("title", title, MAX_TITLE), ("body", body, MAX_BODY)):
        if value is not None and len(value) > maximum:
            raise validation_failed(
                "Issue",
                field_name,
                "custom",
                message=f"{field_name} is too long (maximum is {maximum} characters)",
                docs=docs,
            )


def check_comment_body(body: str, *, docs: str) -> None:
    """422 when a comment is longer than GitHub stores."""
    if len(body) > MAX_BODY:
        raise validation_failed(
            "IssueComment",
            "data",
            "unprocessable",
            message=f"Body is too long (maximum is {MAX_BODY} characters)",
            docs=docs,
        )


def repository_label_name(name: Any, *, docs: str) -> str:
    """A valid name for a repository label (create, rename), or GitHub's 422."""
    if not isinstance(name, str) or not name.strip():
        raise validation_failed("Label", "name", "missing_field", docs=docs)
    if len(name) > MAX_LABEL_NAME:
        raise validation_failed(
            "Label",
            "name",
            "custom",
            message=f"name is too long (maximum is {MAX_LABEL_NAME} characters)",
            docs=docs,
        )
    return name


def issue_label_name(name: Any, *, docs: str) -> str:
    """A valid label name to put on an issue (creating the label if needed), or GitHub's 422."""
    if not isinstance(name, str) or not name.strip():
        raise validation_failed("Label", "name", "missing_field", docs=docs)
    if len(name) > MAX_LABEL_NAME:
        raise validation_failed("Label", "name", "invalid", value=name, docs=docs)
    return name
