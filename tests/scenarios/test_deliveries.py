"""Deliveries seen again change nothing (SPEC §6 at-least-once, §3 "a comment is never posted
twice for the same delivery (retries and replays included)").

- a *redelivery* keeps its ``X-GitHub-Delivery`` GUID: through the App's delivery log
  (``POST /app/hook/deliveries/{id}/attempts``) or re-posted as is → 200 duplicate;
- a *replay* is the same payload under a new GUID → 202, processed, and changes nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.scenarios.conftest import (
    AGENTS,
    Scenario,
    agent_labels,
    names,
    next_issue,
    run_planner,
    stays,
    title,
    wait_until,
)


def see_again(s: Scenario, delivery: dict[str, Any]) -> None:
    """Redeliver ``delivery`` through the delivery log and by re-posting it; replay it."""
    guid = delivery["guid"]
    payload = delivery["request"]["payload"]
    before = len(s.client.webhooks())
    attempt = s.client.http.post(f"/app/hook/deliveries/{delivery['id']}/attempts",
                                 headers=s.jwt_headers())
    assert attempt.status_code == 202, attempt.text
    s.client.drain()
    redelivered = [w for w in s.client.webhooks(before) if w["guid"] == guid]
    assert [w["status_code"] for w in redelivered] == [200], redelivered

    again = s.post_delivery(payload, guid=guid)
    assert again.status_code == 200 and again.json() == {"duplicate": True}, again.text
    replayed = s.post_delivery(payload, guid=f"replay-{uuid.uuid4()}")
    assert replayed.status_code == 202, replayed.text
    s.settle()


def test_a_revert_is_not_repeated_for_a_redelivered_or_replayed_delivery(
    scenario: Scenario,
) -> None:
    s = scenario
    number = s.open_issue(AGENTS["planner"], title("spaceship", "planner"),
                          sorted(agent_labels("spaceship", "planner")))
    s.idle()
    s.add_labels("mallory", number, "status:starting")
    expected = agent_labels("spaceship", "planner")
    wait_until(lambda: s.labels(number) == expected and len(s.app_comments(number)) == 1,
               what="mallory's status:starting reverted with one comment",
               describe=lambda: s.state(number))
    s.settle()
    writes = len(s.app_calls(0))

    delivery = s.find_delivery(lambda p: p.get("action") == "labeled"
                               and p["issue"]["number"] == number
                               and p["label"]["name"] == "status:starting")
    assert delivery["request"]["payload"]["sender"]["login"] == "mallory"
    see_again(s, delivery)

    stays(lambda: s.labels(number) == expected and len(s.app_comments(number)) == 1,
          what="one revert, one comment", describe=lambda: s.state(number))
    extra = [c for c in s.app_calls(0)[writes:] if c["method"] != "GET"]
    assert extra == [], extra


def test_a_hand_off_is_not_repeated_for_a_redelivered_or_replayed_completion(
    scenario: Scenario,
) -> None:
    s, comp = scenario, "titanic"
    planner = run_planner(s, comp)
    analyzer = next_issue(s, comp, "analyzer")["number"]
    s.settle()
    comments = {n: s.app_comments(n) for n in (planner, analyzer)}
    writes = len(s.app_calls(0))

    completion = s.find_delivery(lambda p: p.get("action") == "labeled"
                                 and p["issue"]["number"] == planner
                                 and p["label"]["name"] == "status:completed")
    see_again(s, completion)

    def unchanged() -> bool:
        return (len(s.agent_issues(comp, "analyzer")) == 1
                and all(s.app_comments(n) == comments[n] for n in comments)
                and s.labels(analyzer) == agent_labels(comp, "analyzer", "status:starting"))

    stays(unchanged, what="one analyzer issue and no new comment",
          describe=lambda: ([s.state(n) for n in comments],
                            [(i["number"], sorted(names(i))) for i in s.issues()]))
    extra = [c for c in s.app_calls(0)[writes:] if c["method"] != "GET"]
    assert extra == [], extra
