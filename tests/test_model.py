"""Parsing payloads into typed events: only the fields the reactor reads, clear rejections."""

from __future__ import annotations

from typing import Any

import pytest

from reactor.core.errors import PayloadError
from reactor.core.events import parse_event
from reactor.core.view import Actor, Repo
from tests.octokit import webhook_example, webhook_examples


def test_issues_labeled_example_parses_to_the_fields_the_rules_read() -> None:
    payload = webhook_example("issues", "labeled")
    event = parse_event("issues", "guid-1", payload)
    assert event.name == "issues" and event.action == "labeled"
    assert event.delivery_id == "guid-1"
    assert event.issue == payload["issue"]["number"]
    assert event.label == payload["label"]["name"]
    assert event.repo == Repo(
        owner=payload["repository"]["owner"]["login"], name=payload["repository"]["name"],
        id=payload["repository"]["id"],
    )
    assert event.sender == Actor(
        login=payload["sender"]["login"], id=payload["sender"]["id"], type=payload["sender"]["type"]
    )


def test_every_published_example_parses() -> None:
    for name, payload in webhook_examples():
        event = parse_event(name, "guid", payload)
        assert event.name == name


@pytest.mark.parametrize(
    ("name", "payload", "field"),
    [
        ("issues", {"action": "labeled"}, "issue"),
        ("issues", {"issue": {"number": "7"}}, "issue.number"),
        ("issues", {"issue": {"number": True}}, "issue.number"),
        ("label", {"label": {"name": ""}}, "label.name"),
        ("label", {"label": {"name": "x" * 51}}, "label.name"),
        ("ping", {"sender": {"login": "octocat"}}, "sender.id"),
        ("ping", {"repository": {"name": "r", "id": 1, "owner": "octocat"}}, "repository.owner"),
        ("ping", {"installation": {"id": "1"}}, "installation.id"),
        ("ping", {"action": 3}, "action"),
    ],
)
def test_missing_or_mistyped_fields_are_rejected_by_name(
    name: str, payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(PayloadError, match=field.replace(".", r"\.")) as caught:
        parse_event(name, "guid-2", payload)
    assert caught.value.delivery_id == "guid-2"


def test_a_payload_that_is_not_an_object_is_rejected() -> None:
    with pytest.raises(PayloadError, match="not a JSON object"):
        parse_event("issues", "guid", [1, 2])
