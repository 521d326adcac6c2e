"""Each chaos checker fires on a made-up history that breaks its invariant, and stays silent
on the same history done right (a checker that never fires proves nothing). The live negative
controls are in ``test_chaos.py``; these cover what they cannot reach, such as a comment
posted twice or a delivery lost after its 202."""

from __future__ import annotations

import itertools

import pytest

from tests.scenarios.chaos_checks import CHECKERS, Event, History, Issue, Mistake, check

BOT = "reactor[bot]"
STAGES = ("planner", "analyzer")
AUTHORISED = {"planner": frozenset({"planner-bot"}), "analyzer": frozenset({"analyzer-bot"})}
_ids = itertools.count(1)


def ev(kind: str, actor: str, label: str | None = None) -> Event:
    return Event(next(_ids), kind, actor, label)


def handoff(completed: int, stage: str = "planner") -> str:
    return f"**R9 hand-off**: #{completed} ({stage}) completed; #2 (analyzer) is now starting."


def clean() -> History:
    """One competition done right: the planner ran, the App handed off, the analyzer ran."""
    planner = Issue(1, "[c] planner: win", "planner-bot", "open",
                    {"agent:planner", "comp:c", "status:completed"}, [], [
                        ev("labeled", "planner-bot", "agent:planner"),
                        ev("labeled", "planner-bot", "comp:c"),
                        ev("labeled", "planner-bot", "status:starting"),
                        ev("unlabeled", "planner-bot", "status:starting"),
                        ev("labeled", "planner-bot", "status:running"),
                        ev("unlabeled", "planner-bot", "status:running"),
                        ev("labeled", "planner-bot", "status:completed")])
    analyzer = Issue(2, "[c] analyzer: win", "planner-bot", "open",
                     {"agent:analyzer", "comp:c", "status:completed"}, [handoff(1)], [
                         ev("labeled", "analyzer-bot", "agent:analyzer"),
                         ev("labeled", "analyzer-bot", "comp:c"),
                         ev("labeled", BOT, "status:starting"),
                         ev("unlabeled", "analyzer-bot", "status:starting"),
                         ev("labeled", "analyzer-bot", "status:running"),
                         ev("unlabeled", "analyzer-bot", "status:running"),
                         ev("labeled", "analyzer-bot", "status:completed")])
    return History(issues={1: planner, 2: analyzer}, bot=BOT, stages=STAGES,
                   authorised=AUTHORISED, comps=["c"], answered={"g1", "g2"},
                   accounted={"g1", "g2"})


def broken(name: str) -> History:
    """``clean()`` with the one fault ``name`` must see."""
    h = clean()
    planner, analyzer = h.issues[1], h.issues[2]
    extra = Issue(3, "[c] planner: win", "planner-bot", "open", {"agent:planner", "comp:c"},
                  [], [ev("labeled", "planner-bot", "agent:planner"),
                       ev("labeled", "planner-bot", "comp:c")])
    if name == "duplicate_issues":
        h.issues[3] = extra
    elif name == "two_status_labels":
        planner.labels.add("status:running")
    elif name == "two_comp_labels":
        planner.labels.add("comp:d")
    elif name == "invalid_transitions_left":
        planner.events += [ev("unlabeled", "planner-bot", "status:completed"),
                           ev("labeled", "planner-bot", "status:starting")]
    elif name == "stage_before_predecessor":
        # the analyzer's agent started its issue before the planner completed (id 0)
        analyzer.events.insert(0, Event(0, "labeled", "analyzer-bot", "status:starting"))
    elif name == "isolation_left":
        planner.labels = (planner.labels - {"comp:c"}) | {"comp:d"}
    elif name == "authority_left":
        planner.events.append(ev("unlabeled", "mallory", "status:completed"))
    elif name == "reverse_left_open":
        h.issues[3] = Issue(3, "[c] planner: redo", "analyzer-bot", "open",
                            {"agent:planner", "comp:c"}, [], extra.events)
    elif name == "comments_twice":
        analyzer.comments.append(handoff(1))
    elif name == "valid_moves_undone":
        analyzer.events.append(ev("unlabeled", BOT, "status:completed"))
    elif name == "handoffs_missing":
        analyzer.comments.clear()
    elif name == "handoffs_doubled":
        planner.comments.append(handoff(1))
    elif name == "unfinished":
        analyzer.labels.discard("status:completed")
    elif name == "deliveries_unaccounted":
        h.answered.add("g3")
    else:
        raise AssertionError(f"no broken history for {name}")
    return h


def test_a_clean_history_has_no_finding() -> None:
    assert {k: v for k, v in check(clean()).items() if v} == {}


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_each_checker_sees_its_fault(name: str) -> None:
    found = CHECKERS[name](broken(name))
    assert found, f"{name} did not fire"


def test_a_mistake_the_app_undid_is_not_a_valid_move_undone_but_a_mistake_left_is_seen() -> None:
    h = clean()
    planner = h.issues[1]
    mark = planner.events[-1].id
    planner.events.append(ev("labeled", "planner-bot", "status:running"))  # R1: two statuses
    h.mistakes.append(Mistake("R1", "c", 1, "planner-bot", mark, planner.events[-1].id))
    planner.labels.add("status:running")
    assert check(h)["two_status_labels"]  # left in place
    planner.events.append(ev("unlabeled", BOT, "status:running"))
    planner.labels.discard("status:running")
    assert {k: v for k, v in check(h).items() if v} == {}  # undone by the App, and no more


def test_a_detour_the_app_took_back_is_not_an_invalid_transition() -> None:
    h = clean()
    planner = h.issues[1]
    planner.events += [ev("unlabeled", "planner-bot", "status:completed"),
                       ev("labeled", "planner-bot", "status:starting"),
                       ev("unlabeled", BOT, "status:starting"),
                       ev("labeled", BOT, "status:completed")]
    h.mistakes.append(Mistake("R1", "c", 1, "planner-bot", planner.events[-5].id,
                              planner.events[-3].id))
    assert check(h)["invalid_transitions_left"] == []


def test_a_hand_off_shown_by_its_link_alone_is_seen_once_and_a_repeat_is_seen_twice() -> None:
    """With the native link the hand-off's comment is only its fallback: the link alone is
    one hand-off; a repeated hand-off (its link refused, so it comments) shows as two."""
    h = clean()
    h.issues[2].comments.clear()
    h.issues[2].linked_from.append(1)
    assert not any(check(h).values())
    h.issues[2].comments.append(handoff(1))
    assert [name for name, found in check(h).items() if found] == ["handoffs_doubled"]
