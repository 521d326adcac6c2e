"""Hostile input on the real stack (issue 11): a pasted creation marker, user text that
would speak through the App, competition names RQ could not schedule, very long titles,
and what the reactor leaves in Redis."""

from __future__ import annotations

import re

import pytest
import redis

from reactor.core.markers import creation_marker
from tests.scenarios.conftest import (
    AGENTS,
    CONFIG,
    MAINTAINER,
    Scenario,
    agent_labels,
    move_one_request,
    next_issue,
    run_planner,
    title,
    wait_until,
)

_SPAN = re.compile(r"(?P<fence>`+)(?P<inner>.*?)(?P=fence)(?!`)", re.DOTALL)


def shown(markdown: str) -> str:
    """What GitHub renders outside inline code spans (mentions and links live there)."""
    return _SPAN.sub(" ", markdown)


def test_a_pasted_creation_marker_does_not_make_the_genuine_issue_a_duplicate(
    scenario: Scenario,
) -> None:
    s, comp = scenario, "titanic"
    run_planner(s, comp)
    genuine = next_issue(s, comp, "analyzer")
    s.idle()
    spoof = s.open_issue("mallory", genuine["title"], sorted(agent_labels(comp, "analyzer")),
                         body=f"Mine now.\n\n{creation_marker('anything')}")
    wait_until(lambda: s.issue(spoof)["state"] == "closed", what="the spoof closed",
               describe=lambda: s.state(spoof))
    s.settle()
    assert s.issue(genuine["number"])["state"] == "open"
    assert s.issue(spoof)["state_reason"] == "duplicate"


def test_user_text_repeated_by_the_app_mentions_no_one_and_links_nowhere(
    scenario: Scenario,
) -> None:
    """A label named like a Markdown payload, reverted; a planner title full of mentions and
    links, handed off: the App's comments and the issue it creates carry them quoted."""
    s, comp = scenario, "titanic"
    hostile_label = "status:x` @victim [c](https://e.x) `"[:50]
    planner = s.open_issue(AGENTS["planner"],
                           title(comp, "planner", "@victim2 [docs](https://evil.example) now"),
                           sorted(agent_labels(comp, "planner")))
    s.idle()
    s.add_labels("mallory", planner, hostile_label)
    wait_until(lambda: hostile_label not in s.labels(planner), what="the label removed",
               describe=lambda: s.state(planner))
    s.settle()
    for body in s.app_comments(planner):
        assert "@victim" not in shown(body) and "](http" not in shown(body), body
    login = AGENTS["planner"]
    s.add_labels(login, planner, "status:starting")
    s.idle()
    move_one_request(s, login, planner, comp, "planner", "running")
    s.idle()
    move_one_request(s, login, planner, comp, "planner", "completed")
    created = next_issue(s, comp, "analyzer")
    assert not re.search(r"@victim2", created["title"]), created["title"]
    assert "@victim2" not in shown(created["body"]) and "](http" not in shown(created["body"])


@pytest.mark.parametrize("comp", ["my comp", "a.b", "キャンペーン", "a:b"],
                         ids=["space", "dot", "non-ascii", "colon"])
def test_any_competition_name_is_scheduled_and_judged(scenario: Scenario, comp: str) -> None:
    """Settle re-checks and timeouts are RQ jobs named from a hash of the scope, so any
    name works (the fixture asserts RQ's failed registry stays empty)."""
    s = scenario
    s.write_config(CONFIG + "timeouts: {planner: 2s}\n")
    s.idle()
    login = AGENTS["planner"]
    number = s.open_issue(login, title(comp, "planner"), sorted(agent_labels(comp, "planner")))
    s.idle()
    s.add_labels(login, number, "status:starting")  # a settle re-check is not needed …
    s.add_labels(login, number, "status:running")  # … but two labels at once park the burst
    s.remove_label(login, number, "status:starting")
    wait_until(lambda: "status:timeout" in s.labels(number), timeout=30,
               what="the planner timed out", describe=lambda: s.state(number))


def test_a_task_too_long_for_a_title_is_cut_to_fit_on_hand_off(scenario: Scenario) -> None:
    s, comp = scenario, "titanic"
    run_planner(s, comp, task="x" * 237)  # "[titanic] planner: " + 237 = 256, at the limit
    created = next_issue(s, comp, "analyzer")
    assert len(created["title"]) <= 256 and created["title"].endswith("…")


ALLOWED_FOREVER = re.compile(
    r"reactor:(audit|config-good:\d+|catchup:since)$")


def test_everything_kept_per_issue_or_competition_expires(scenario: Scenario) -> None:
    """Redis does not grow with a repository's history: every key the reactor wrote for an
    issue, a competition or a delivery has a TTL (the capped audit stream, the last good
    config of each repository and the catch-up cursor excepted)."""
    s, comp = scenario, "titanic"
    run_planner(s, comp)
    next_issue(s, comp, "analyzer")
    s.add_labels(MAINTAINER, 1, "priority:high")
    s.settle()
    client = redis.Redis.from_url(s.stack.redis_url)
    forever = [key.decode() for key in client.scan_iter("reactor:*")
               if client.ttl(key) == -1 and not ALLOWED_FOREVER.match(key.decode())]
    assert forever == []
