"""R8 timeouts on the real stack: a stage that runs past its time is moved to
``status:timeout`` once, by a check RQ's scheduler runs at the deadline; a stage that moves on
in time is left alone."""

from __future__ import annotations

from tests.scenarios.conftest import (
    AGENTS,
    CONFIG,
    Scenario,
    agent_labels,
    move_one_request,
    stays,
    title,
    wait_until,
)

RUN_2S = CONFIG + "timeouts: {planner: 2s}\nstart_timeout: 1h\n"
RUN_8S = CONFIG + "timeouts: {planner: 8s}\nstart_timeout: 1h\n"
START_3S = CONFIG + "timeouts: {planner: 1h}\nstart_timeout: 3s\n"


def started_planner(s: Scenario, comp: str) -> int:
    login = AGENTS["planner"]
    number = s.open_issue(login, title(comp, "planner"), sorted(agent_labels(comp, "planner")))
    s.idle()
    s.add_labels(login, number, "status:starting")
    s.idle()
    return number


def test_a_stage_running_past_its_timeout_is_moved_to_timeout_once(scenario: Scenario) -> None:
    s, comp = scenario, "titanic"
    s.write_config(RUN_2S)
    s.idle()
    number = started_planner(s, comp)
    move_one_request(s, AGENTS["planner"], number, comp, "planner", "running")
    wait_until(lambda: "status:timeout" in s.labels(number), timeout=30,
               what="the planner moved to status:timeout", describe=lambda: s.state(number))
    s.idle()
    assert s.labels(number) == agent_labels(comp, "planner", "status:timeout")
    bodies = [b for b in s.app_comments(number) if "R8" in b]
    assert len(bodies) == 1 and "`timeouts.planner`" in bodies[0], bodies
    stays(lambda: len(s.app_comments(number)) == 1, for_s=3, what="one comment")


def test_a_stage_that_moves_on_in_time_is_left_alone(scenario: Scenario) -> None:
    """Completed well inside 8 s; the check that fires at 8 s finds another status entry."""
    s, comp = scenario, "titanic"
    s.write_config(RUN_8S)
    s.idle()
    number = started_planner(s, comp)
    move_one_request(s, AGENTS["planner"], number, comp, "planner", "running")
    s.idle()
    move_one_request(s, AGENTS["planner"], number, comp, "planner", "completed")
    s.idle()
    stays(lambda: s.labels(number) == agent_labels(comp, "planner", "status:completed"),
          for_s=10, what="the completed planner left alone", describe=lambda: s.state(number))
    assert not [b for b in s.app_comments(number) if "R8" in b]


def test_an_agent_that_never_reports_is_timed_out_from_starting(scenario: Scenario) -> None:
    s, comp = scenario, "titanic"
    s.write_config(START_3S)
    s.idle()
    number = started_planner(s, comp)
    wait_until(lambda: "status:timeout" in s.labels(number), timeout=30,
               what="the planner moved from starting to timeout",
               describe=lambda: s.state(number))
    comment = wait_until(lambda: next((b for b in s.app_comments(number) if "R8" in b), None),
                         what="the R8 comment posted after the labels")
    assert "`start_timeout`" in comment
