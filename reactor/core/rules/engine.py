"""evaluate(): one burst of changes on one competition, judged on its fresh state.

Order of work, and why:

1. Closures first — R3 (opened outside the actor's scope), R6 (reverse stage), then R5
   (duplicates) — because a closed issue needs no other correction. Issues already closed
   as not planned or duplicate are out of play for every later step.
2. Label reverts on the remaining touched issues: R3 identity and scope (and a stage taken
   out of its competition's parent issue put back), and the ``reactor:`` labels only the
   reactor sets.
3. Status verdicts in stage order, so R2 on a later stage sees what was just decided for
   an earlier one.
4. Hand-offs (R9) for each issue accepted into ``completed`` in this burst.
5. Dependency cycles (R7): a change that closes one is refused with ``reactor:blocked``, and
   ``reactor:blocked`` is lifted where no cycle runs any more.

Two actors caught undoing each other's change past the limit (R12) stop the reverts on that
issue first: it gets ``reactor:needs-human`` and one comment naming both, as the revert-war
cap's escalation does. A competition paused for a runaway actor (R11) judges no status: its
agents' label changes are undone instead (step 2), so nothing hands off (step 4).

The reactor's own writes never reach the rules: their echoes are set aside as they arrive
(R10). The result is idempotent by construction: every finding is computed from the fresh
state against the accepted memory, so evaluating the state a decision leaves behind (with its
``accepted``) asks for nothing more, and replaying the same changes repeats the same comment
markers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from reactor.core import comments
from reactor.core.actions import Action, Decision, Escalate, Identity, Note, Rule, Saga
from reactor.core.config import RepoConfig
from reactor.core.labels import LabelKind, Status, parse_label
from reactor.core.rules import _assemble, cycles, parent, pingpong, runaway
from reactor.core.rules._base import Closure, Revert, Situation
from reactor.core.rules.duplicates import duplicate_closures
from reactor.core.rules.handoff import hand_off
from reactor.core.rules.isolation import creation_closures, label_reverts
from reactor.core.rules.lifecycle import Judged, Leave, Settle, judge
from reactor.core.rules.reserved import forged_needs_human, handed_back, reserved_revert
from reactor.core.rules.reverse import reverse_closure
from reactor.core.view import Change, ChangeKind, CompetitionView, IssueSnapshot


@dataclass
class _Statuses:
    decided: dict[int, Status] = field(default_factory=dict)
    reverts: list[Revert] = field(default_factory=list)
    completed: list[Judged] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    settle: list[datetime] = field(default_factory=list)
    settling: set[int] = field(default_factory=set)


def evaluate(changes: Sequence[Change], view: CompetitionView, config: RepoConfig, *,
             now: datetime) -> Decision:
    """Decide what the burst ``changes`` on ``view`` call for. Pure: no I/O, no clock."""
    sit = Situation.build(changes, view, config, now=now)
    notes = _label_notes(sit)
    closures = _closures(sit)
    closing = frozenset(c.violation.issue for c in closures)
    open_touched = [n for n in sit.touched()
                    if n not in closing and not _issue(sit, n).dismissed]
    brake = runaway.brake(sit)
    reverts = [r for n in open_touched
               for r in _label_reverts(_issue(sit, n), sit, frozen=brake.frozen)]
    statuses = _judge_statuses(sit, [n for n in open_touched if not brake.frozen or all(
        sit.is_maintainer(c) for c in sit.of(n))])  # paused: only maintainers move statuses
    back = frozenset(n for n in open_touched if handed_back(_issue(sit, n), sit))
    forged = frozenset(n for n in open_touched if forged_needs_human(_issue(sit, n), sit))
    looped = _loops(sit, [n for n in open_touched if n not in back], forged)
    stopped = frozenset(a.issue for a in looped if isinstance(a, Escalate))
    undone = _assemble.revert_actions(
        [r for r in [*reverts, *statuses.reverts] if r.violation.issue not in stopped], sit,
        fresh=back, forged=forged)
    restored = _restore_parents(sit, [n for n in open_touched if n not in stopped], back, forged)
    handoff_actions: list[Action] = []
    plans: list[tuple[Change, list[Action]]] = []
    accepted = dict(statuses.decided)
    shown = _assemble.labels_after(undone.actions, sit)
    for judged in statuses.completed:
        assert judged.moved_by is not None  # only moves credited to a change are completed
        result = hand_off(_issue(sit, judged.moved_by.issue), judged.moved_by, sit,
                          statuses.decided, closing, shown)
        handoff_actions += result.actions
        plans.append((judged.moved_by, result.actions))
        accepted.update(result.accepted)
        notes += result.notes
    blocked = _cycles(sit, {**view.accepted, **accepted})
    notes += blocked.notes
    actions = _assemble.cancel_pairs(
        (*_assemble.closure_actions(closures), *brake.actions, *looped, *undone.actions,
         *restored.actions, *handoff_actions, *blocked.actions))
    return Decision(
        actions=actions,
        sagas=tuple(Saga(change.issue, change.delivery_id, steps, _settled_by(change, sit))
                    for change, planned in plans
                    if (steps := tuple(a for a in actions if a in planned))),
        accepted=MappingProxyType(accepted),
        reverted=frozenset(undone.reverted | restored.reverted),
        settle_until=max(statuses.settle, default=None),
        notes=(*notes, *statuses.notes, *undone.notes, *restored.notes),
        identities=MappingProxyType(
            {n: i for n, i in _identities(sit).items() if n not in statuses.settling}),
        moved=MappingProxyType(_moved(sit)),
        handed_back=back,
        settling=frozenset(statuses.settling),
        paused_by=brake.paused_by,
        resumed=brake.resumed,
    )


def seed_accepted(view: CompetitionView) -> dict[int, Status]:
    """Memory rebuilt from GitHub (``reactor reconcile`` after a Redis wipe): each agent
    issue's status as read now, where the read is unambiguous."""
    return {i.number: s for i in view.issues if i.stage is not None and (s := i.status)}


def _issue(sit: Situation, number: int) -> IssueSnapshot:
    found = sit.view.issue(number)
    assert found is not None  # only issues present in the view are ever judged
    return found


def reads_links(changes: Sequence[Change], view: CompetitionView, config: RepoConfig, *,
                now: datetime) -> bool:
    """Whether R7 needs the issues' "blocked by" links to judge the burst: a change may add a
    dependency, or an issue is labelled ``reactor:blocked``. Otherwise the shell need not
    read them."""
    sit = Situation.build(changes, view, config, now=now)
    return _blocked(sit) or any(_trigger(c, sit) is not None for c in sit.changes)


def _blocked(sit: Situation) -> bool:
    return any(i.tags.has(LabelKind.REACTOR, "blocked") for i in sit.view.issues)


def _cycles(sit: Situation, statuses: Mapping[int, Status]) -> Decision:
    """R7 on the burst: refuse the changes that close a cycle, lift what none justifies."""
    triggers = [t for c in sit.changes if (t := _trigger(c, sit)) is not None]
    if not triggers and not _blocked(sit):
        return Decision()
    deps = cycles.Deps.build(sit.view.issues, sit.config, native=sit.view.native,
                             accepted=statuses, stage_of=sit.stage_of, comp_of=sit.comp_of,
                             neighbours=sit.view.neighbours)
    return cycles.refuse(deps, triggers)


def _trigger(change: Change, sit: Situation) -> cycles.Trigger | None:
    """The dependency a change may add: a body written or edited, an issue given its stage
    or competition, a "blocked by" link (R7)."""
    issue, actor, key = sit.view.issue(change.issue), change.actor.login, change.delivery_id
    if issue is None:
        return None
    if change.kind in (ChangeKind.OPENED, ChangeKind.EDITED):
        before = "" if change.kind is ChangeKind.OPENED else None
        return cycles.body_trigger(issue.number, actor=actor, key=key, before=before,
                                   after=issue.body)
    if change.kind is ChangeKind.BLOCKED_BY_ADDED and change.other is not None:
        return cycles.dependency_trigger(change.kind.value, blocked=issue.number,
                                         blocking=change.other, actor=actor, key=key)
    parsed = parse_label(change.label) if change.label else None
    if change.kind is ChangeKind.LABELED and parsed and parsed.kind in (LabelKind.AGENT,
                                                                        LabelKind.COMP):
        return cycles.Trigger(issue.number, actor, key)
    return None


def _loops(sit: Situation, numbers: list[int], forged: frozenset[int]) -> list[Action]:
    """R12: an issue whose rally went over the limit in this burst is handed to a human
    (unless it waits for one already): ``reactor:needs-human`` and one comment."""
    config, actions = sit.config, list[Action]()
    for number in numbers:
        before = sit.view.rallies.get(number, {})
        changes = sit.of(number)
        found = pingpong.loops(number, before, pingpong.follow(before, changes), changes,
                               limit=config.pingpong_limit, window=config.pingpong_window,
                               exempt=config.maintainers)
        issue = _issue(sit, number)
        if not found or (number not in forged and issue.tags.has(LabelKind.REACTOR,
                                                                 "needs-human")):
            continue
        loop, maintainers = found[0], tuple(sorted(config.maintainers))
        what = (f"@{loop.first} and @{loop.second} undid each other's change of "
                f"{loop.label} {loop.undos} times")
        actions += [Escalate(number, maintainers, Rule.R12, f"ping-pong: {what}"),
                    comments.pingpong(issue=number, first=loop.first, second=loop.second,
                                      label=loop.label, undos=loop.undos,
                                      window=config.pingpong_window, maintainers=maintainers,
                                      key=loop.key)]
    return actions


def _restore_parents(sit: Situation, numbers: list[int], back: frozenset[int],
                     forged: frozenset[int]) -> _assemble.Assembled:
    """R3: stages taken out of their competition's parent issue go back, within the
    revert-war cap (each counts as a revert)."""
    out = _assemble.Assembled()
    for number in numbers:
        capped = _assemble.capped(number, sit, fresh=number in back, forged=number in forged)
        actions, notes = parent.restore(_issue(sit, number), sit, capped=capped)
        out.actions += actions
        out.notes += notes
        if actions:
            out.reverted.add(number)
    return out


def _label_reverts(issue: IssueSnapshot, sit: Situation, *, frozen: bool) -> list[Revert]:
    """R3's and R4's reverts on the issue; in a paused competition (R11), every agent label
    change on its agent issues instead of R3's."""
    paused = frozen and issue.stage is not None and sit.comp_of(issue) == sit.view.comp
    found = [r for r in [runaway.undo(issue, sit)] if r is not None] if paused \
        else list(label_reverts(issue, sit))
    reserved = reserved_revert(issue, sit)
    return found if reserved is None else [*found, reserved]


def _identities(sit: Situation) -> dict[int, Identity]:
    """Every agent issue's competition and stage, as the rules settled them."""
    found = {}
    for issue in sit.view.issues:
        comp, stage = sit.comp_of(issue), sit.stage_of(issue)
        if comp is not None and stage is not None:
            found[issue.number] = Identity(comp, stage)
    return found


def _moved(sit: Situation) -> dict[int, str]:
    """Issues a maintainer moved out of the competition evaluated, by their new one."""
    moved = {}
    for number in sit.touched():
        comp = sit.comp_of(_issue(sit, number))
        if comp is not None and sit.view.comp is not None and comp != sit.view.comp:
            if sit.rehomed(_issue(sit, number), LabelKind.COMP):
                moved[number] = comp
    return moved


def _label_notes(sit: Situation) -> list[Note]:
    """Flag label names the reactor refuses to read (over 50 characters, empty values)."""
    bad = [c for c in sit.changes
           if c.label is not None and parse_label(c.label).kind is LabelKind.INVALID]
    return [Note(Rule.R3, c.issue, f"ignored an unreadable label name ({len(c.label or '')} "
                                   f"characters) from @{c.actor.login}") for c in bad]


def _closures(sit: Situation) -> list[Closure]:
    found: list[Closure] = []
    for number in sit.touched():
        issue = _issue(sit, number)
        closure = creation_closures(issue, sit) or reverse_closure(issue, sit)
        if closure is not None:
            found.append(closure)
    closing = [c.violation.issue for c in found]
    return found + list(duplicate_closures(sit, closing))


def _stage_order(sit: Situation, number: int) -> tuple[int, int]:
    index = sit.config.stage_index(_issue(sit, number).stage)
    return (len(sit.config.stages) if index is None else index), number


def _judge_statuses(sit: Situation, numbers: list[int]) -> _Statuses:
    out = _Statuses()
    for number in sorted(numbers, key=lambda n: _stage_order(sit, n)):
        verdict = judge(_issue(sit, number), sit, out.decided)
        if isinstance(verdict, Settle):
            out.settle.append(verdict.until)
            out.settling.add(number)
        elif isinstance(verdict, Leave):
            out.notes.append(Note(Rule.R1, number, verdict.reason))
        elif isinstance(verdict, Judged):
            out.decided[number] = verdict.status
            out.reverts.extend(verdict.reverts)
            _accepted(out, verdict, number, sit)
    return out


def _learned_completion(sit: Situation, number: int, verdict: Judged) -> Judged | None:
    """A completion the reactor learns of without seeing the move: it remembers nothing of
    the issue, and the burst lacks the deliveries that led there (held up past the settle
    window — a rate limit, an outage, a redelivery — or lost), so GitHub's state is taken as
    it is. It still hands off, but only to a next stage that has not begun (no issue, or open
    ones without a status): a wiped memory never re-runs a stage."""
    if verdict.status is not Status.COMPLETED or number in sit.view.accepted:
        return None
    issue = sit.view.issue(number)
    changes = sit.of(number)
    if issue is None or not changes:
        return None
    comp, index = sit.comp_of(issue), sit.config.stage_index(sit.stage_of(issue))
    if comp is None or index is None or index + 1 >= len(sit.config.stages):
        return None
    later = sit.in_stage(comp, sit.config.stages[index + 1])
    if any(not i.is_open or i.status not in (None, Status.IDLE) for i in later):
        return None
    return Judged(verdict.status, verdict.before, moved_by=changes[-1])


def _accepted(out: _Statuses, verdict: Judged, number: int, sit: Situation) -> None:
    if verdict.status is verdict.before:
        learned = _learned_completion(sit, number, verdict)
        if learned is not None:
            out.notes.append(Note(Rule.R9, number, "found completed with no move seen (its "
                                  "deliveries came late or were lost): handed off"))
            out.completed.append(learned)
        return
    who = f"@{verdict.moved_by.actor.login}" if verdict.moved_by else "the burst"
    who += " (maintainer override)" if verdict.override else ""
    move = f"accepted {verdict.before} → {verdict.status} by {who}"
    out.notes.append(Note(Rule.R1, number, move))
    if verdict.status is Status.COMPLETED and verdict.moved_by is not None:
        out.completed.append(verdict)


def _settled_by(completion: Change, sit: Situation) -> tuple[str, ...]:
    """The deliveries of the source's changes a completion accounts for: those up to it, and
    a removal that left the issue showing ``completed`` alone (the end of the agent's move)."""
    def finishes(change: Change) -> bool:
        shown = {parse_label(n).status for n in change.shown or ()} - {None}
        return change.kind is ChangeKind.UNLABELED and shown == {Status.COMPLETED}

    return tuple(c.delivery_id for c in sit.of(completion.issue)
                 if c.at <= completion.at or finishes(c))
