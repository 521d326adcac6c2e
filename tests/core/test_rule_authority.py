"""R4 authority: only the stage's configured agents (or maintainers) move its status."""

from __future__ import annotations

from reactor.core.actions import AddLabel, Comment, RemoveLabel, Rule
from reactor.core.config import parse_config
from reactor.core.labels import Status
from tests.core.world import K, agent, change, of_type, settles, view

AGENTS = parse_config("agents: {planner: ['planner-bot[bot]']}\nmaintainers: [boss]")


def test_an_actor_not_configured_for_the_stage_is_reverted() -> None:
    state = view(agent(1, "planner", "starting"))
    decision = settles([change(K.LABELED, 1, "status:starting", by="intruder")], state, AGENTS)
    [remove] = of_type(decision, RemoveLabel)
    assert (remove.label, remove.rule) == ("status:starting", Rule.R4)
    [comment] = of_type(decision, Comment)
    assert "@intruder" in comment.body and "@planner-bot[bot]" in comment.body


def test_the_configured_agent_drives_its_stage_whatever_the_case() -> None:
    state = view(agent(1, "planner", "starting"))
    changes = [change(K.LABELED, 1, "status:starting", by="Planner-Bot[bot]")]
    decision = settles(changes, state, AGENTS)
    assert decision.actions == () and decision.accepted == {1: Status.STARTING}


def test_a_stage_without_an_agents_entry_is_open_to_anyone() -> None:
    state = view(agent(1, "planner", "completed"), agent(2, "analyzer", "starting"),
                 accepted={1: "completed"})
    assert settles([change(K.LABELED, 2, "status:starting", by="anyone")], state,
                   AGENTS).actions == ()


def test_with_no_agents_config_anyone_may() -> None:
    state = view(agent(1, "planner", "starting"))
    assert settles([change(K.LABELED, 1, "status:starting", by="anyone")], state).actions == ()


def test_a_maintainer_may_do_anything_and_it_is_audited() -> None:
    """Even a move the lifecycle forbids (idle → completed) is accepted from a maintainer."""
    state = view(agent(1, "planner", "completed"))
    decision = settles([change(K.LABELED, 1, "status:completed", by="Boss")], state, AGENTS)
    assert decision.accepted[1] is Status.COMPLETED
    assert of_type(decision, RemoveLabel) == []
    assert any("maintainer override" in n.reason for n in decision.notes)


def test_an_intruders_half_of_a_move_is_undone_and_blamed_on_the_intruder() -> None:
    """The intruder removed ``status:starting`` (R4): it is put back. The agent's own half
    (``status:running`` added) then leaves two status labels, which R1 settles."""
    state = view(agent(1, "planner", "running"), accepted={1: "starting"})
    changes = [change(K.LABELED, 1, "status:running", by="planner-bot[bot]", t=1),
               change(K.UNLABELED, 1, "status:starting", by="intruder", t=2)]
    decision = settles(changes, state, AGENTS)
    assert [(a.label, a.rule) for a in of_type(decision, AddLabel)] == \
        [("status:starting", Rule.R4)]
    assert any("@intruder" in c.body and "R4" in c.body for c in of_type(decision, Comment))


def test_an_intruder_in_the_burst_of_a_valid_move_loses_only_its_own_change() -> None:
    """SPEC §3: the analyzer moves starting → running; an unauthorised user adds
    ``status:error`` in the same burst. Only ``status:error`` is removed; the move stands."""
    state = view(agent(1, "planner", "running", "status:error"), accepted={1: "starting"})
    changes = [change(K.UNLABELED, 1, "status:starting", by="planner-bot[bot]", t=1),
               change(K.LABELED, 1, "status:running", by="planner-bot[bot]", t=1),
               change(K.LABELED, 1, "status:error", by="intruder", t=1.1)]
    decision = settles(changes, state, AGENTS)
    assert [(a.label, a.rule) for a in of_type(decision, RemoveLabel)] == \
        [("status:error", Rule.R4)]
    assert of_type(decision, AddLabel) == []
    [comment] = of_type(decision, Comment)
    assert comment.body.startswith("**R4 authority**: @intruder changed the status of #1")
    assert decision.accepted == {1: Status.RUNNING}


def test_an_intruders_removal_is_undone_when_the_agents_first_webhooks_were_lost() -> None:
    """The issue was opened in the burst; the deliveries of its ``comp:`` label and its
    ``status:starting`` never came. The agent's run to ``completed`` still stands, so the
    intruder's removal of ``completed`` is undone."""
    state = view(agent(1, "planner", None))
    bot = "planner-bot[bot]"
    changes = [change(K.OPENED, 1, t=1),
               change(K.LABELED, 1, "agent:planner", by=bot, t=1.005),
               change(K.UNLABELED, 1, "status:starting", by=bot, t=1.02),
               change(K.LABELED, 1, "status:running", by=bot, t=1.03),
               change(K.LABELED, 1, "status:completed", by=bot, t=1.04),
               change(K.UNLABELED, 1, "status:running", by=bot, t=1.05),
               change(K.UNLABELED, 1, "status:completed", by="intruder", t=1.2)]
    decision = settles(changes, state, AGENTS)
    assert [(a.label, a.rule) for a in of_type(decision, AddLabel)] == [
        ("status:completed", Rule.R4)]
    assert decision.accepted == {1: Status.COMPLETED}
