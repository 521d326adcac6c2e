"""R7 cycles: dependencies (native, body, stage order) form no cycle; the edit that closes one
is refused, a cycle that formed anyway is broken at its longest-waiting issue, and
``reactor:blocked`` is lifted once no cycle runs through its issue."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from reactor.core.actions import AddLabel, Comment, Decision, RemoveLabel, Rule
from reactor.core.config import DEFAULT_CONFIG, RepoConfig, parse_config
from reactor.core.labels import Status
from reactor.core.markers import comment_marker
from reactor.core.rules import cycles
from reactor.core.rules.cycles import Deps, Trigger
from reactor.core.view import IssueSnapshot
from tests.core.world import agent, at, issue, of_type

BLOCKED = "reactor:blocked"
T = TypeVar("T")


def deps(*issues: IssueSnapshot, native: Mapping[int, Iterable[int]] | None = None,
         accepted: Mapping[int, str] | None = None,
         config: RepoConfig = DEFAULT_CONFIG) -> Deps:
    """The dependency input of a competition made of ``issues``."""
    return Deps.build(issues, config,
                      native={n: frozenset(v) for n, v in (native or {}).items()},
                      accepted={n: Status(s) for n, s in (accepted or {}).items()})


def edit(number: int, *waits_for: int, key: str = "d-1", by: str = "alice") -> Trigger:
    """A change after which ``number`` newly waits for ``waits_for``."""
    return Trigger(number, by, key, frozenset(waits_for))


def edges(d: Deps) -> set[tuple[int, int]]:
    return set(d.graph.edges)


# --- parsing bodies -------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "expected"), [
    ("depends on #3", {3}),
    ("Depends On #3 and BLOCKED BY #14.\nAlso blocked by: #7", {3, 14, 7}),
    ("depends   on\n#5", {5}),
    ("depends on #3, #4", {3}),  # each reference needs its own phrase
    ("fixes #3, see #4, relates to #5", set()),
    ("depends on acme/lab#3 and depends on #12abc", set()),  # #N only
    ("independs on #3; unblocked by #4", set()),
    ("depends on #3 ... depends on #3", {3}),
    ("", set()),
])
def test_body_dependencies_reads_each_depends_on_and_blocked_by_reference(
        body: str, expected: set[int]) -> None:
    assert cycles.body_dependencies(body) == expected


def test_body_trigger_counts_only_the_references_an_edit_adds() -> None:
    trigger = cycles.body_trigger(4, actor="a", key="k", before="depends on #1",
                                  after="depends on #1\nblocked by #2")
    assert trigger.waits_for == {2}
    assert cycles.body_trigger(4, actor="a", key="k", before=None, after="x").waits_for is None


def test_only_blocked_by_added_is_a_dependency_trigger() -> None:
    """GitHub sends ``blocking_added`` as a twin of ``blocked_by_added`` for the same edge."""
    found = cycles.dependency_trigger("blocked_by_added", blocked=2, blocking=5, actor="a",
                                      key="k")
    assert found == Trigger(2, "a", "k", frozenset({5}))
    for action in ("blocking_added", "blocked_by_removed", "blocking_removed"):
        assert cycles.dependency_trigger(action, blocked=2, blocking=5, actor="a",
                                         key="k") is None


# --- the graph ------------------------------------------------------------------------------

def test_edges_come_from_native_dependencies_bodies_and_stage_order() -> None:
    d = deps(agent(1, "planner"), agent(2, "analyzer", body="blocked by #3"),
             agent(3, "analyzer"), native={3: [1]})
    assert edges(d) == {(2, 1), (3, 1), (2, 3)}
    assert d.graph.edges[3, 1]["sources"] == (cycles.Source.NATIVE, cycles.Source.STAGE)
    assert d.graph.edges[2, 3]["phrase"] == "blocked by #3"


def test_a_stage_waits_for_the_nearest_earlier_stage_that_has_issues() -> None:
    d = deps(agent(1, "planner"), agent(2, "planner"), agent(5, "executor"))
    assert edges(d) == {(5, 1), (5, 2)}


def test_unknown_issues_self_references_and_issues_out_of_play_make_no_edges() -> None:
    d = deps(agent(1, "planner", body="depends on #1, depends on #99, depends on #3"),
             agent(2, "planner", body="depends on #4"),
             agent(3, "analyzer", state="closed", reason="not_planned"),
             issue(4, "bug"), native={1: [42, 2]})
    assert set(d.graph.nodes) == {1, 2} and edges(d) == {(1, 2)}


def test_stage_order_stays_inside_a_competition() -> None:
    d = deps(agent(1, "planner", comp="a"), agent(2, "analyzer", comp="b"))
    assert edges(d) == set()


def test_an_issue_closed_as_completed_stays_in_the_graph() -> None:
    d = deps(agent(1, "planner", "completed", state="closed", reason="completed"),
             agent(2, "analyzer"))
    assert edges(d) == {(2, 1)}


# --- (a) refusing the edit that closes a cycle ----------------------------------------------

def test_a_body_edit_closing_a_cycle_is_refused_with_the_cycle_named() -> None:
    d = deps(agent(1, "executor", body="depends on #2"),
             agent(2, "executor", body="Depends on #1"))
    decision = cycles.refuse(d, [edit(2, 1, key="delivery-7", by="exec-bot[bot]")])
    [label] = of_type(decision, AddLabel)
    assert (label.issue, label.label, label.rule) == (2, BLOCKED, Rule.R7)
    [comment] = of_type(decision, Comment)
    assert comment.issue == 2 and comment.rule is Rule.R7
    assert "#2 → #1 → #2" in comment.body and "@exec-bot[bot]" in comment.body
    assert "its body says `Depends on #1`" in comment.body
    assert comment.marker == comment_marker("R7", 2, "delivery-7")


def test_a_native_dependency_closing_a_cycle_is_refused() -> None:
    d = deps(agent(1, "executor"), agent(2, "executor"), agent(3, "executor"),
             native={1: [2], 2: [3], 3: [1]})
    trigger = cycles.dependency_trigger("blocked_by_added", blocked=3, blocking=1,
                                        actor="bob", key="d-9")
    assert trigger is not None
    decision = cycles.refuse(d, [trigger])
    [comment] = of_type(decision, Comment)
    assert "#3 → #1 → #2 → #3" in comment.body and "*blocked by*" in comment.body
    assert of_type(decision, AddLabel)[0].issue == 3


def test_an_edit_that_closes_no_cycle_is_left_alone() -> None:
    d = deps(agent(1, "executor", body="depends on #2"), agent(2, "executor"))
    assert cycles.refuse(d, [edit(1, 2)]) == Decision()


def test_an_edit_is_judged_by_the_edges_it_added_not_by_older_cycles() -> None:
    """#1 and #2 already wait on each other; #1's new reference to #3 closes nothing."""
    d = deps(agent(1, "executor", body="depends on #2\ndepends on #3"),
             agent(2, "executor", body="depends on #1"), agent(3, "executor"))
    assert cycles.refuse(d, [edit(1, 3)]).actions == ()


def test_with_unknown_edges_any_cycle_through_the_issue_counts_once() -> None:
    d = deps(agent(1, "executor", body="depends on #2"),
             agent(2, "executor", body="depends on #1"))
    assert of_type(cycles.refuse(d, [Trigger(1, "a", "k")]), AddLabel)
    again = deps(agent(1, "executor", None, BLOCKED, body="depends on #2"),
                 agent(2, "executor", body="depends on #1"))
    assert cycles.refuse(again, [Trigger(1, "a", "k2")]).actions == ()


def test_a_new_cycle_on_a_blocked_issue_gets_its_comment_but_no_second_label() -> None:
    """Also what a retry sees when the label was written and the comment was not."""
    d = deps(agent(1, "executor", None, BLOCKED, body="depends on #2"),
             agent(2, "executor", body="depends on #1"))
    decision = cycles.refuse(d, [edit(1, 2, key="d-2")])
    assert of_type(decision, AddLabel) == [] and len(of_type(decision, Comment)) == 1


def test_several_changes_to_one_issue_in_a_burst_are_refused_once() -> None:
    d = deps(agent(1, "executor", body="depends on #2\ndepends on #3"),
             agent(2, "executor", body="depends on #1"), agent(3, "executor",
                                                            body="depends on #1"))
    decision = cycles.refuse(d, [edit(1, 2, key="a"), edit(1, 3, key="b")])
    [comment] = of_type(decision, Comment)
    assert comment.marker == comment_marker("R7", 1, "a")


def test_a_refusal_is_the_same_on_replay() -> None:
    """Replaying the delivery (``reactor replay``, a retried job) once its refusal was applied
    asks for the very same comment — same marker, so the applier finds it posted and posts
    nothing — and for no second label; another delivery's refusal has a marker of its own."""
    before = deps(agent(1, "executor", body="depends on #2"),
                  agent(2, "executor", body="depends on #1"))
    first = cycles.refuse(before, [edit(2, 1)])
    [label] = of_type(first, AddLabel)
    [comment] = of_type(first, Comment)
    assert (label.issue, label.label) == (2, BLOCKED)
    applied = deps(agent(1, "executor", body="depends on #2"),
                   agent(2, "executor", None, BLOCKED, body="depends on #1"))
    replayed = cycles.refuse(applied, [edit(2, 1)])
    assert of_type(replayed, AddLabel) == [] and of_type(replayed, RemoveLabel) == []
    assert of_type(replayed, Comment) == [comment]
    [other] = of_type(cycles.refuse(before, [edit(2, 1, key="d-2")]), Comment)
    assert other.marker != comment.marker


def test_the_shortest_cycle_through_the_new_edge_is_named() -> None:
    d = deps(*(agent(n, "executor") for n in range(1, 6)),
             native={1: [2], 2: [3], 3: [4], 4: [1], 5: [1]})
    d2 = deps(*(agent(n, "executor") for n in range(1, 6)),
              native={1: [2, 5], 2: [3], 3: [4], 4: [1], 5: [4]})
    assert cycles.closes(d, edit(1, 2)) == (1, 2, 3, 4)
    assert cycles.closes(d2, edit(1, 2, 5)) == (1, 5, 4)


# --- (b) reverse dependencies ---------------------------------------------------------------

def test_an_earlier_stage_depending_on_a_later_one_is_refused() -> None:
    d = deps(agent(1, "planner", body="depends on #3"), agent(2, "analyzer"),
             agent(3, "executor"))
    decision = cycles.refuse(d, [edit(1, 3)])
    [comment] = of_type(decision, Comment)
    assert "#1 → #3 → #2 → #1" in comment.body
    assert "#1 (`planner`) waits for #3 (`executor`), a later stage" in comment.body
    assert "reverse dependency" in comment.body


def test_a_reverse_dependency_across_a_missing_stage_is_refused() -> None:
    d = deps(agent(1, "planner"), agent(4, "monitor"), native={1: [4]})
    assert cycles.closes(d, edit(1, 4)) == (1, 4)


def test_a_forward_dependency_on_a_later_issue_number_is_fine() -> None:
    d = deps(agent(7, "analyzer", body="depends on #9"), agent(9, "planner"))
    assert cycles.refuse(d, [edit(7, 9)]).actions == ()


def test_competition_and_stage_names_are_quoted_in_comments() -> None:
    d = deps(agent(1, "planner", comp="@mallory", body="depends on #2"),
             agent(2, "analyzer", comp="@mallory"))
    [comment] = of_type(cycles.refuse(d, [edit(1, 2)]), Comment)
    assert "`@mallory`" in comment.body and " @mallory" not in comment.body


# --- (c) lifting ----------------------------------------------------------------------------

def test_the_label_is_lifted_once_no_cycle_runs_through_the_issue() -> None:
    d = deps(agent(1, "executor", "running", "Reactor: Blocked"), agent(2, "executor"))
    [lift] = cycles.refuse(d, []).actions
    assert lift == RemoveLabel(1, "Reactor: Blocked", Rule.R7,
                               "no dependency cycle runs through #1 any more")


def test_the_label_stays_while_a_cycle_remains() -> None:
    d = deps(agent(1, "executor", None, BLOCKED, body="depends on #2"),
             agent(2, "executor", body="depends on #1"))
    assert cycles.refuse(d, []).actions == ()
    assert of_type(cycles.sweep(d, entered={}), RemoveLabel) == []


# --- (c') across competitions -----------------------------------------------------------------

def across(*issues: IssueSnapshot, neighbours: Iterable[IssueSnapshot],
           native: Mapping[int, Iterable[int]] | None = None) -> Deps:
    """A competition made of ``issues``, with the other competitions' ``neighbours``."""
    return Deps.build(issues, DEFAULT_CONFIG, neighbours=neighbours,
                      native={n: frozenset(v) for n, v in (native or {}).items()})


def test_a_link_that_closes_a_cycle_through_another_competition_is_refused() -> None:
    """#1 (titanic's planner) blocked by #3 (lusitania's executor), which waits for #2
    (lusitania's planner) by stage order; #2 blocked by #1 closes the cycle."""
    d = across(agent(1, "planner"),
               neighbours=[agent(2, "planner", comp="lusitania"),
                           agent(3, "executor", comp="lusitania")],
               native={1: [3], 2: [1]})
    decision = cycles.refuse(d, [edit(1, 3)])
    [comment] = of_type(decision, Comment)
    assert "#1 → #3 → #2 → #1" in comment.body
    assert of_type(decision, AddLabel) == [
        AddLabel(1, BLOCKED, Rule.R7, "closes the dependency cycle #1 → #3 → #2 → #1")]


def test_without_its_neighbours_the_same_cycle_is_invisible() -> None:
    d = deps(agent(1, "planner"), native={1: [3]})
    assert cycles.refuse(d, [edit(1, 3)]) == Decision()


def test_a_cycle_across_competitions_keeps_the_label_and_neighbours_are_never_written() -> None:
    """The refused issue stays blocked while the cycle through the neighbours runs; a
    neighbour's own stale label is its competition's to lift; a knot of neighbours only is
    theirs to break."""
    d = across(agent(1, "planner", None, BLOCKED),
               neighbours=[agent(2, "planner", "running", BLOCKED, comp="lusitania"),
                           agent(3, "executor", comp="lusitania"),
                           agent(4, "executor", "running", comp="olympic",
                                 body="depends on #5"),
                           agent(5, "executor", "running", comp="olympic",
                                 body="depends on #4")],
               native={1: [3], 3: [1]})
    assert cycles.refuse(d, []).actions == ()
    assert cycles.sweep(d, entered={}).actions == ()
    assert d.acts_on(1) and not d.acts_on(2) and not d.acts_on(4)


def test_a_cycle_across_competitions_is_broken_at_the_competitions_own_issue() -> None:
    d = across(agent(1, "executor", "running"),
               neighbours=[agent(2, "executor", "running", comp="lusitania")],
               native={1: [2], 2: [1]})
    [chosen] = cycles.breaks(d, waiting(i1=50, i2=0))  # #2 waits longer, but is not ours
    assert chosen.issue == 1


# --- (d) the periodic check -----------------------------------------------------------------

def waiting(**since: float) -> dict[int, datetime]:
    return {int(n.lstrip("i")): at(s) for n, s in since.items()}


def test_a_cycle_that_formed_anyway_is_broken_at_its_longest_waiting_issue() -> None:
    d = deps(agent(1, "executor", "running", body="depends on #2"),
             agent(2, "executor", None, "Status: Starting", body="depends on #3"),
             agent(3, "executor", "running", body="depends on #1"))
    decision = cycles.sweep(d, entered=waiting(i1=30, i2=10, i3=20))
    assert [(type(a).__name__, a.issue) for a in decision.actions] == [
        ("RemoveLabel", 2), ("AddLabel", 2), ("Comment", 2)]
    remove, add, comment = decision.actions
    assert isinstance(remove, RemoveLabel) and remove.label == "Status: Starting"
    assert isinstance(add, AddLabel) and add.label == "status:timeout"
    assert isinstance(comment, Comment) and "#2 → #3 → #1 → #2" in comment.body
    assert "`status:starting` since 2025-01-01 12:00:10 UTC" in comment.body
    assert decision.accepted == {2: Status.TIMEOUT}


def test_ties_go_to_the_lowest_number_and_missing_records_count_from_creation() -> None:
    d = deps(agent(4, "executor", "running", body="depends on #6"),
             agent(6, "executor", "running", body="depends on #4"))
    assert cycles.breaks(d, waiting(i4=5, i6=5))[0].issue == 4
    assert cycles.breaks(d, waiting(i4=5))[0].issue == 6  # created at T0, before 5 s


def test_a_status_the_lifecycle_cannot_time_out_is_blocked_instead() -> None:
    d = deps(agent(1, "executor", body="depends on #2"),
             agent(2, "executor", "running", body="depends on #1"))
    decision = cycles.sweep(d, entered=waiting(i1=0, i2=50))
    assert [type(a).__name__ for a in decision.actions] == ["AddLabel", "Comment"]
    assert of_type(decision, AddLabel)[0].label == BLOCKED and decision.accepted == {}
    assert "from `idle` the lifecycle does not allow it" in of_type(decision, Comment)[0].body


def test_the_accepted_status_decides_what_the_lifecycle_allows() -> None:
    d = deps(agent(1, "executor", "running", body="depends on #2"),
             agent(2, "executor", "running", body="depends on #1"),
             accepted={1: "completed"})
    decision = cycles.sweep(d, entered=waiting(i1=0, i2=50))
    assert of_type(decision, AddLabel) == [AddLabel(1, BLOCKED, Rule.R7,
                                                    "breaks the dependency cycle #1 → #2 → #1")]


def test_reported_or_broken_cycles_are_not_broken_again() -> None:
    for settled in (agent(2, "executor", None, BLOCKED, body="depends on #1"),
                    agent(2, "executor", "timeout", body="depends on #1")):
        d = deps(agent(1, "executor", "running", body="depends on #2"), settled)
        assert cycles.sweep(d, entered=waiting(i1=0)).actions == ()


def test_every_cycle_of_a_knot_is_broken() -> None:
    """#1 is in two cycles; breaking it at the oldest issue (#1) breaks both."""
    d = deps(*(agent(n, "executor", "running") for n in (1, 2, 3)),
             native={1: [2, 3], 2: [1], 3: [1]})
    assert [b.issue for b in cycles.breaks(d, waiting(i1=0, i2=5, i3=9))] == [1]
    assert [b.issue for b in cycles.breaks(d, waiting(i1=9, i2=0, i3=5))] == [2, 3]


def test_the_break_comment_key_is_stable_and_new_for_a_new_entry() -> None:
    d = deps(agent(1, "executor", "running", body="depends on #2"),
             agent(2, "executor", "running", body="depends on #1"))
    first = of_type(cycles.sweep(d, entered=waiting(i1=0, i2=9)), Comment)[0]
    again = of_type(cycles.sweep(d, entered=waiting(i1=0, i2=9)), Comment)[0]
    later = of_type(cycles.sweep(d, entered=waiting(i1=60, i2=90)), Comment)[0]
    assert first.marker == again.marker != later.marker


def test_an_acyclic_graph_needs_no_sweep() -> None:
    d = deps(agent(1, "planner", "completed"), agent(2, "analyzer", "running"))
    assert cycles.sweep(d, entered={}) == Decision()


# --- describing the graph -------------------------------------------------------------------

def test_the_graph_as_json_and_dot() -> None:
    d = deps(agent(1, "planner", "completed", comp='a"b'), agent(2, "analyzer", None, BLOCKED,
                                                                comp='a"b', body="depends on #1"))
    data = cycles.to_json(d.graph)
    assert data["nodes"][1] == {"number": 2, "stage": "analyzer", "comp": 'a"b',
                                "status": "idle", "blocked": True, "in_cycle": False}
    assert data["edges"] == [{"from": 2, "to": 1, "sources": ["body", "stage"],
                              "phrase": "depends on #1"}]
    dot = cycles.to_dot(d.graph)
    assert dot.startswith("digraph dependencies {") and dot.endswith("}\n")
    assert '2 -> 1 [label="body,stage" style=dashed];' in dot
    assert 'a\\"b / analyzer' in dot and "style=bold" in dot


def test_configured_stages_set_the_order() -> None:
    config = parse_config("stages: [build, test]")
    d = deps(agent(1, "test"), agent(2, "build"), config=config)
    assert edges(d) == {(1, 2)}


# --- properties on random graphs ------------------------------------------------------------

STAGES = DEFAULT_CONFIG.stages


@dataclass(frozen=True)
class World:
    """Random agent issues: stage, competition, status, label and the references they make.

    References may name issues outside the world and the issue itself, as bodies do."""

    stage: dict[int, str]
    comp: dict[int, str]
    status: dict[int, Status | None]
    blocked: dict[int, bool]
    refs: dict[int, frozenset[int]]
    native: dict[int, frozenset[int]]

    @property
    def numbers(self) -> list[int]:
        return sorted(self.stage)

    def deps(self) -> Deps:
        made = []
        for n in self.numbers:
            status = self.status[n]
            body = "\n".join(f"{'Depends on' if r % 2 else 'blocked BY'} #{r}"
                             for r in sorted(self.refs[n]))
            made.append(agent(n, self.stage[n], None if status is None else status.value,
                              *([BLOCKED] if self.blocked[n] else []), comp=self.comp[n],
                              body=body))
        return deps(*made, native=self.native)

    @cached_property
    def edges(self) -> frozenset[tuple[int, int]]:
        """The edges the rules should see, computed independently of the module."""
        found = {(u, v) for u in self.numbers for v in self.refs[u] | self.native[u]
                 if v != u and v in self.stage}
        for u in self.numbers:
            index = STAGES.index(self.stage[u])
            for earlier in reversed(STAGES[:index]):
                same = [v for v in self.numbers
                        if self.comp[v] == self.comp[u] and self.stage[v] == earlier]
                if same:
                    found |= {(u, v) for v in same}
                    break
        return frozenset(found)

    def reaches(self, a: int, b: int, without: frozenset[int] = frozenset()) -> bool:
        seen, todo = {a}, [a]
        while todo:
            u = todo.pop()
            if u == b:
                return True
            for x, v in self.edges:
                if x == u and v not in seen and v not in without:
                    seen.add(v)
                    todo.append(v)
        return False

    def on_cycle(self, n: int, without: frozenset[int] = frozenset()) -> bool:
        return n not in without and any(
            u == n and v not in without and self.reaches(v, n, without) for u, v in self.edges)

    def is_cycle(self, members: tuple[int, ...]) -> bool:
        pairs = zip(members, (*members[1:], members[0]), strict=True)
        return len(set(members)) == len(members) and all(p in self.edges for p in pairs)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    numbers = range(1, draw(st.integers(2, 7)) + 1)
    refs = st.frozensets(st.integers(0, len(numbers) + 2), max_size=3)

    def each(strategy: st.SearchStrategy[T]) -> dict[int, T]:
        return {n: draw(strategy) for n in numbers}

    return World(
        stage=each(st.sampled_from(STAGES[:4])), comp=each(st.sampled_from(("a", "b"))),
        status=each(st.sampled_from([*Status, None])), blocked=each(st.booleans()),
        refs=each(refs), native=each(refs))


@st.composite
def triggers(draw: st.DrawFn, world: World) -> list[Trigger]:
    found = []
    for index in range(draw(st.integers(0, 3))):
        number = draw(st.sampled_from(world.numbers))
        known = draw(st.booleans())
        waits = draw(st.frozensets(st.sampled_from(world.numbers), max_size=3))
        found.append(Trigger(number, "agent", f"d-{index}", waits if known else None))
    return found


PROPERTY = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(worlds())
def test_the_graph_has_exactly_the_dependency_edges(world: World) -> None:
    assert set(world.deps().graph.edges) == world.edges


@PROPERTY
@given(st.data())
def test_every_refused_edit_closes_a_real_cycle_and_every_closing_edit_is_refused(
        data: st.DataObject) -> None:
    world = data.draw(worlds())
    d = world.deps()
    for trigger in data.draw(triggers(world)):
        found = cycles.closes(d, trigger)
        if trigger.waits_for is None:
            expected = not world.blocked[trigger.issue] and world.on_cycle(trigger.issue)
        else:
            expected = any((trigger.issue, v) in world.edges and world.reaches(v, trigger.issue)
                           for v in trigger.waits_for)
        assert (found is not None) == expected
        event(f"closes a cycle: {expected}")
        if found is not None:
            assert found[0] == trigger.issue and world.is_cycle(found)
            assert trigger.waits_for is None or found[1] in trigger.waits_for


@PROPERTY
@given(st.data())
def test_refusals_label_and_comment_once_and_lifts_follow_the_cycles(
        data: st.DataObject) -> None:
    world = data.draw(worlds())
    d = world.deps()
    burst = data.draw(triggers(world))
    decision = cycles.refuse(d, burst)
    refused: list[int] = []
    for trigger in burst:
        if trigger.issue not in refused and cycles.closes(d, trigger) is not None:
            refused.append(trigger.issue)
    assert sorted(c.issue for c in of_type(decision, Comment)) == sorted(refused)
    assert {a.issue for a in of_type(decision, AddLabel)} == {
        n for n in refused if not world.blocked[n]}
    assert {a.issue for a in of_type(decision, RemoveLabel)} == {
        n for n in world.numbers if world.blocked[n] and not world.on_cycle(n)}


@PROPERTY
@given(st.data())
def test_the_periodic_check_breaks_every_live_cycle_at_its_longest_waiting_issue(
        data: st.DataObject) -> None:
    world = data.draw(worlds())
    entered = data.draw(st.dictionaries(st.sampled_from(world.numbers),
                                        st.integers(-5, 5).map(at)))
    d = world.deps()
    settled = frozenset(n for n in world.numbers
                        if world.blocked[n] or world.status[n] is Status.TIMEOUT)
    gone = set(settled)
    since = {n: entered.get(n, at(0)) for n in world.numbers}
    for chosen in cycles.breaks(d, entered):
        assert world.is_cycle(chosen.members) and chosen.members[0] == chosen.issue
        assert not gone & set(chosen.members)
        assert chosen.issue == min(chosen.members, key=lambda n: (since[n], n))
        gone.add(chosen.issue)
    event(f"breaks: {len(gone - settled)}")
    assert not any(world.on_cycle(n, frozenset(gone)) for n in world.numbers)
    decision = cycles.sweep(d, entered=entered)
    moved = {n for n in gone - settled
             if (world.status[n] or Status.IDLE) in (Status.STARTING, Status.RUNNING)}
    assert set(decision.accepted) == moved
    assert {a.issue for a in of_type(decision, AddLabel) if a.label == BLOCKED} == (
        gone - settled - moved)
    assert {a.issue for a in of_type(decision, RemoveLabel) if a.label == BLOCKED} == {
        n for n in world.numbers if world.blocked[n] and not world.on_cycle(n)}


@PROPERTY
@given(st.lists(st.integers(-50, 50), min_size=2, max_size=7, unique=False))
def test_on_a_simple_cycle_the_oldest_entry_breaks_it(seconds: list[int]) -> None:
    n = len(seconds)
    world = deps(*(agent(i, "executor", "running") for i in range(1, n + 1)),
                 native={i: [i % n + 1] for i in range(1, n + 1)})
    entered = {i: at(s) for i, s in enumerate(seconds, start=1)}
    [chosen] = cycles.breaks(world, entered)
    assert chosen.issue == min(entered, key=lambda i: (entered[i], i))


@PROPERTY
@given(st.data())
def test_seen_from_one_competition_the_graph_is_whole_and_only_its_own_issues_are_touched(
        data: st.DataObject) -> None:
    """Competition ``a`` judging with ``b``'s issues as neighbours sees the same graph and
    refuses the same of its own changes as a view of both would, and writes to none of
    ``b``'s issues — whether refusing, lifting or breaking."""
    world = data.draw(worlds())
    whole = world.deps()
    own = [i for i in whole.issues.values() if world.comp[i.number] == "a"]
    theirs = [i for i in whole.issues.values() if world.comp[i.number] == "b"]
    seen = Deps.build(own, DEFAULT_CONFIG, native=world.native, neighbours=theirs)
    assert set(seen.graph.edges) == world.edges
    mine = [t for t in data.draw(triggers(world)) if world.comp[t.issue] == "a"]
    assert [cycles.closes(seen, t) for t in mine] == [cycles.closes(whole, t) for t in mine]
    entered = {n: at(n) for n in world.numbers}
    for decision in (cycles.refuse(seen, mine), cycles.sweep(seen, entered=entered)):
        assert {a.issue for a in decision.actions if hasattr(a, "issue")} <= {
            i.number for i in own}
