"""A hand-off a killed worker began is carried out by the next; the burst it was judging is
then judged from the saga's outcome, so the agent's moves into ``completed`` are not read
again as moves out of it — and a real move out of it is still undone."""

from __future__ import annotations

import dataclasses

import redis.asyncio

from reactor.core.actions import AddLabel, Comment, RemoveLabel, Rule, Saga
from reactor.core.config import parse_config
from reactor.core.labels import Status
from reactor.core.view import Change
from reactor.shell import saga as journals
from reactor.shell.decide import still_to_judge
from tests.core.world import K, agent, change, of_type, run, view

CONFIG = parse_config("agents: {planner: [planner-bot]}")


def moved(kind: K, label: str | None, t: float, *shown: str) -> Change:
    return dataclasses.replace(change(kind, 39, label, by="planner-bot", t=t,
                                      delivery=f"d-{t}"), shown=frozenset(shown))


def test_the_moves_into_completed_are_left_out_and_a_move_out_of_it_is_undone() -> None:
    run_to_completed = [
        change(K.OPENED, 39, by="planner-bot", t=0.9, delivery="d-open"),
        moved(K.LABELED, "status:starting", 0.91, "status:starting"),
        moved(K.LABELED, "status:running", 0.95, "status:starting", "status:running"),
        moved(K.UNLABELED, "status:starting", 0.96, "status:running"),
        moved(K.LABELED, "status:completed", 0.99, "status:running", "status:completed"),
        moved(K.UNLABELED, "status:running", 1.0, "status:completed")]
    invalid = [moved(K.UNLABELED, "status:completed", 11, "status:starting"),
               moved(K.LABELED, "status:starting", 11.001, "status:starting")]
    begun = run(run_to_completed, view(agent(39, "planner", "completed")), CONFIG)
    [handed_off] = begun.sagas
    assert set(handed_off.settled) == {c.delivery_id for c in run_to_completed}

    left = still_to_judge([*run_to_completed, *invalid], handed_off)

    assert left == invalid
    state = view(agent(39, "planner", "starting"), accepted={39: "completed"})
    decision = run(left, state, CONFIG)
    assert [a.label for a in of_type(decision, RemoveLabel)] == ["status:starting"]
    assert [a.label for a in of_type(decision, AddLabel)] == ["status:completed"]
    assert decision.accepted == {39: Status.COMPLETED}


def test_a_journal_written_before_settled_existed_leaves_nothing_out() -> None:
    burst = [moved(K.UNLABELED, "status:running", 1.0, "status:completed")]
    assert still_to_judge(burst, Saga(39, "d-0.99", ())) == burst


async def test_the_journal_keeps_what_the_completion_settled(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        saga = Saga(39, "d-0.99", (Comment(39, "**R9 hand-off**", "<!-- m -->", Rule.R9, "r"),),
                    settled=("d-open", "d-0.99"))
        await journals.begin(client, "1:comp:titanic", saga)
        [journal] = await journals.pending(client, "1:comp:titanic")
        assert journal.saga == saga
    finally:
        await client.aclose()
