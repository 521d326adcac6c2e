"""The edges of the core: payloads into Events and Changes, REST issues into snapshots,
comment and creation markers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from reactor.core.actions import Rule
from reactor.core.comments import revert
from reactor.core.errors import PayloadError
from reactor.core.events import change_from_event, parse_event, parse_issue
from reactor.core.labels import Status
from reactor.core.markers import comment_marker, comment_markers, creation_key, creation_marker
from reactor.core.view import ChangeKind, IssueState
from reactor.shell import schedule as burst
from tests.core.world import APP, T0, agent, view


def rest_issue(**over: Any) -> dict[str, Any]:
    issue = {
        "number": 7, "id": 9007, "title": "[titanic] executor: fit", "body": None,
        "state": "open", "state_reason": None, "created_at": "2025-01-01T12:00:00Z",
        "user": {"login": "exec-bot[bot]", "id": 1, "type": "Bot"},
        "labels": [{"name": "agent:executor"}, {"name": "comp:titanic"}, "status:running"],
    }
    return {**issue, **over}


def labeled_payload(**issue: Any) -> dict[str, Any]:
    return {
        "action": "labeled", "label": {"name": "status:running"},
        "issue": rest_issue(**issue),
        "sender": {"login": "exec-bot[bot]", "id": 1, "type": "Bot"},
        "repository": {"name": "lab", "id": 3, "owner": {"login": "acme"}},
    }


def test_a_rest_issue_parses_into_a_snapshot_with_derived_meanings() -> None:
    snap = parse_issue(rest_issue())
    assert (snap.number, snap.id, snap.author, snap.body) == (7, 9007, "exec-bot[bot]", "")
    assert snap.state is IssueState.OPEN and snap.created_at == datetime(2025, 1, 1, 12, tzinfo=UTC)
    assert (snap.stage, snap.comp, snap.status) == ("executor", "titanic", Status.RUNNING)


@pytest.mark.parametrize(("over", "field"), [
    ({"number": "7"}, "issue.number"), ({"state": "merged"}, "issue.state"),
    ({"labels": [{"nom": "x"}]}, "issue.labels"), ({"labels": "bug"}, "issue.labels"),
    ({"created_at": "yesterday"}, "issue.created_at"), ({"user": "octocat"}, "issue.user"),
])
def test_a_rest_issue_missing_a_field_is_rejected_by_name(over: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError, match=field.replace(".", r"\.")):
        parse_issue(rest_issue(**over))


def test_snapshot_derivations_for_odd_label_sets() -> None:
    two = agent(1, "planner", "running", "status:error")
    assert two.status is None and two.stage == "planner"
    assert agent(2, "planner", None).status is Status.IDLE
    assert agent(3, "planner", "done").status is None
    both = agent(4, "planner", None, "agent:executor", "comp:iris")
    assert both.stage is None and both.comp is None and both.comps == {"titanic", "iris"}
    closed = agent(5, "planner", state="closed", reason="completed")
    assert closed.closed_as_completed and not closed.dismissed
    assert agent(6, "planner", state="closed", reason="duplicate").dismissed


def test_the_event_carries_the_payload_issue_labels_for_routing() -> None:
    event = parse_event("issues", "g-1", labeled_payload())
    assert event.comps == {"titanic"}
    assert event.issue_author == "exec-bot[bot]"
    assert "status:running" in event.issue_labels


def test_a_label_rename_reports_the_old_name() -> None:
    payload = {"action": "edited", "label": {"name": "status:run"},
               "changes": {"name": {"from": "status:running"}}}
    assert parse_event("label", "g", payload).label_renamed_from == "status:running"
    assert parse_event("label", "g", {**payload, "changes": {}}).label_renamed_from is None


def test_an_issues_event_becomes_a_change() -> None:
    event = parse_event("issues", "g-2", labeled_payload())
    found = change_from_event(event, now=T0)
    assert found is not None
    assert (found.kind, found.issue, found.label, found.delivery_id, found.at) == \
        (ChangeKind.LABELED, 7, "status:running", "g-2", T0)
    assert found.actor.login == "exec-bot[bot]"


def test_a_change_is_timed_by_its_arrival_and_keeps_the_status_labels_it_showed() -> None:
    """The web process's receive time, not the worker's clock, times a change; the payload's
    ``status:`` labels order a burst's changes (reactor.core.rules.chain)."""
    event = parse_event("issues", "g-3", labeled_payload(), received_at=T0.timestamp() + 5)
    found = change_from_event(event, now=T0)
    assert found is not None and (found.at - T0).total_seconds() == 5
    assert found.shown == frozenset(
        n for n in event.issue_labels if n.casefold().startswith("status:"))


def test_other_events_and_actions_are_no_change() -> None:
    pinned = parse_event("issues", "g", {**labeled_payload(), "action": "pinned"})
    assert change_from_event(pinned, now=T0) is None
    ping = parse_event("ping", "g", {})
    assert change_from_event(ping, now=T0) is None
    opened = parse_event("issues", "g", {**labeled_payload(), "action": "opened"})
    assert change_from_event(opened, now=T0).label is None  # type: ignore[union-attr]


def test_a_snapshot_knows_its_parent_issue_in_this_repository() -> None:
    home = "https://api.github.com/repos/acme/lab"
    assert parse_issue(rest_issue(repository_url=home)).parent is None
    assert parse_issue(rest_issue(repository_url=home,
                                  parent_issue_url=f"{home}/issues/41")).parent == 41
    elsewhere = "https://api.github.com/repos/acme/other/issues/41"
    assert parse_issue(rest_issue(repository_url=home, parent_issue_url=elsewhere)).parent == 0


def link_payload(name: str, action: str, *, far: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    """A link event's half: the changed issue #7 and the other side #41 (blocking, parent)."""
    here = {"name": "lab", "id": 3, "owner": {"login": "acme"}}
    changed, other, far_key = {
        "issue_dependencies": ("blocked_issue", "blocking_issue", "blocking_issue_repo"),
        "sub_issues": ("sub_issue", "parent_issue", "sub_issue_repo")}[name]
    return {"action": action, changed: rest_issue(), other: rest_issue(number=41),
            far_key: far or here, "sender": {"login": "exec-bot[bot]", "id": 1, "type": "Bot"},
            "repository": here, "installation": {"id": 5}}


@pytest.mark.parametrize(("name", "action", "kind"), [
    ("issue_dependencies", "blocked_by_added", ChangeKind.BLOCKED_BY_ADDED),
    ("sub_issues", "sub_issue_added", ChangeKind.SUB_ISSUE_ADDED),
    ("sub_issues", "sub_issue_removed", ChangeKind.SUB_ISSUE_REMOVED),
])
def test_a_link_event_becomes_a_change_of_its_issue_naming_the_other(
        name: str, action: str, kind: ChangeKind) -> None:
    found = change_from_event(parse_event(name, "g", link_payload(name, action)), now=T0)
    assert found is not None and (found.kind, found.issue, found.other) == (kind, 7, 41)


def test_a_link_s_twin_half_another_repository_or_a_mislabelled_action_is_no_change() -> None:
    elsewhere = {"name": "other", "id": 99, "owner": {"login": "acme"}}
    for name, action, far in [("sub_issues", "parent_issue_added", None),
                              ("sub_issues", "sub_issue_added", elsewhere),
                              ("issue_dependencies", "blocked_by_added", elsewhere),
                              ("issue_dependencies", "sub_issue_added", None)]:
        event = parse_event(name, "g", link_payload(name, action, far=far))
        assert change_from_event(event, now=T0) is None, (name, action, far)
    mislabelled = parse_event("issues", "g", {**labeled_payload(), "action": "sub_issue_added"})
    assert change_from_event(mislabelled, now=T0) is None


def test_an_opened_change_keeps_the_identity_labels_the_issue_was_opened_with() -> None:
    """They tell R3 the issue's competition even when the fresh read shows a second one whose
    change another competition's burst holds (reactor.core.rules._base.Situation.opened_with)."""
    opened = change_from_event(
        parse_event("issues", "g", {**labeled_payload(), "action": "opened"}), now=T0)
    assert opened is not None and opened.opened_with is not None
    assert {n.split(":")[0] for n in opened.opened_with} == {"agent", "comp"}
    assert burst.decode(burst.encode(opened)) == opened
    labeled = change_from_event(parse_event("issues", "g", labeled_payload()), now=T0)
    assert labeled is not None and labeled.opened_with is None


def test_comment_markers_are_stable_and_safe() -> None:
    marker = comment_marker("R1", 12, "72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert marker == "<!-- reactor:R1:12:72d3162e-cc78-11e3-81ab-4c9367dc0958 -->"
    nasty = comment_marker("R2", 1, "a --> b")
    assert nasty.count("-->") == 1 and nasty.endswith(" -->")
    body = f"text\n\n{marker}\n{nasty}"
    assert comment_markers(body) == ("R1:12:72d3162e-cc78-11e3-81ab-4c9367dc0958",
                                     "R2:1:a%20-%2D%3E%20b")


def test_creation_markers_round_trip() -> None:
    key = "acme/lab:ti tanic--x:executor"
    body = f"Hand-off\n\n{creation_marker(key)}"
    assert creation_key(body) == key
    assert creation_key("no marker here") is None
    assert view(agent(1, "executor", body=body, author=APP)).created_by_reactor(1)
    # Anyone can paste a marker: it counts only in a body the App's account wrote.
    assert not view(agent(1, "executor", body=body)).created_by_reactor(1)


def test_a_revert_comment_names_rule_actor_undo_and_advice() -> None:
    comment = revert(issue=3, rule=Rule.R4, actor="eve", what="did a thing",
                     instead="Do the other thing.", key="g", added=["status:idle"],
                     removed=["status:running"])
    assert comment.body.startswith("**R4 authority**: @eve did a thing.")
    assert "removed `status:running` and restored `status:idle`" in comment.body
    assert "Do the other thing." in comment.body and comment.body.endswith(comment.marker)
