"""Judging one issue's status: R1 lifecycle, with R3 scope, R4 authority and R2 order.

What is judged is *what changed*, never the order in which workers happened to see it
(SPEC §6): the status changes of the burst (deduplicated by delivery), the status accepted
before them, and the status read now.

1. Who. A status change by an actor outside its scope (R3) or not allowed to drive the stage
   (R4) is undone as the exact inverse of that actor's own changes — the label it added is
   removed, the one it removed put back — and nothing else is touched. The others' changes
   are judged on the read those inverses leave. A maintainer's change is accepted outright.
2. What and when. The move from the accepted status to the status read is valid when some
   order of the burst's changes is a valid lifecycle path (:mod:`reactor.core.rules.paths`) that
   never enters ``starting``/``running`` while an earlier stage is unfinished (R2); it is
   accepted at once. Anything else — two ``status:`` labels, none right after a non-idle
   status, a move the burst does not explain — waits for the settle window
   (``config.settle`` after the issue's latest change) and is read again with whatever
   webhooks arrived meanwhile: a two-request change is judged once, as a whole, and a
   webhook still on its way is never mistaken for a violation.
3. Otherwise the status labels go back to the furthest status a valid prefix of the burst
   reached, so exactly the invalid rest is undone.

The status accepted before the burst is the reactor's memory of it; with no memory it is
what GitHub showed before the burst (the read minus the burst's changes: GitHub is the
source of truth), except that an issue that *became* an agent issue in this burst starts
from ``idle``, so a status set before its ``agent:`` label is judged too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from reactor.core.actions import Rule
from reactor.core.labels import LabelKind, ParsedLabel, Status, parse_label
from reactor.core.rules import paths
from reactor.core.rules._base import (
    LabelKey,
    Revert,
    Situation,
    Violation,
    label_key,
)
from reactor.core.rules.authority import authority_violation
from reactor.core.rules.chain import Chain, chain, shown_after
from reactor.core.rules.isolation import scope_violation
from reactor.core.rules.order import GUARDED, order_violation
from reactor.core.transitions import allowed_from, is_allowed
from reactor.core.view import Change, ChangeKind, IssueSnapshot
from reactor.core.words import code


@dataclass(frozen=True, slots=True)
class Judged:
    """The status the reactor accepts for the issue after this burst, and what it undoes.

    ``moved_by`` is the change credited with a move (None when nothing moved); ``override``
    is set when a maintainer made it so.
    """

    status: Status
    before: Status
    moved_by: Change | None = None
    reverts: tuple[Revert, ...] = ()
    override: bool = False


@dataclass(frozen=True, slots=True)
class Settle:
    """Not decidable yet: judge again at or after ``until``."""

    until: datetime


@dataclass(frozen=True, slots=True)
class Leave:
    """Nothing to write; the reason is audited."""

    reason: str


Verdict = Judged | Settle | Leave


def judge(issue: IssueSnapshot, sit: Situation, decided: Mapping[int, Status]) -> Verdict | None:
    """The verdict on ``issue``'s status, or None when the burst gives nothing to judge."""
    stage = sit.stage_of(issue)
    changes = sit.status_changes(issue)
    became = sit.became_agent(issue)
    if stage is None or not (changes or became):
        return None
    found, remembered = sit.status_before(issue, changes, became=became)
    ahead = sit.settle_until(issue, in_flight=True)
    if found is None and sit.now < ahead:
        return Settle(ahead)  # the burst does not add up to the read yet
    before = found or issue.status or Status.IDLE  # past the window: GitHub is the truth
    maintainers = [c for c in changes if sit.is_maintainer(c)]
    if maintainers:
        return _override(issue, before, maintainers[-1], sit, ahead)
    intruders: dict[str, Violation] = {}  # by actor: the violation of its first change
    for change in changes:
        culprit = scope_violation(issue, (change,), sit) or authority_violation(
            issue, stage, (change,), sit)
        if culprit is not None:
            intruders.setdefault(change.actor.login.casefold(), culprit)
    agents = tuple(c for c in changes if c.actor.login.casefold() not in intruders)
    read = _Read.of(issue)
    agents_added = {s for c in agents if c.kind is ChangeKind.LABELED
                    and (s := parse_label(c.label or "").status) is not None}
    undone = _undo(read, [c for c in changes if c.actor.login.casefold() in intruders],
                   intruders, keep={before, *agents_added} - {Status.IDLE}, never_remove=before)
    return _Judge(issue, stage, sit, decided, before, remembered, undone.read, agents,
                  undone.reverts).verdict()


def _override(issue: IssueSnapshot, before: Status, culprit: Change, sit: Situation,
              until: datetime) -> Verdict:
    status, ambiguous = _Read.of(issue).status(before)
    if status is None or ambiguous:
        if sit.now < until:
            return Settle(until)
        return Leave(f"maintainer @{culprit.actor.login} left an ambiguous status")
    return Judged(status, before, culprit, override=True)


@dataclass(frozen=True, slots=True)
class _Read:
    """An issue's ``status:`` labels, by their exact names."""

    labels: tuple[ParsedLabel, ...]

    @classmethod
    def of(cls, issue: IssueSnapshot) -> _Read:
        return cls(issue.tags.of(LabelKind.STATUS))

    @property
    def names(self) -> frozenset[str]:
        return frozenset(item.name for item in self.labels)

    def status(self, before: Status) -> tuple[Status | None, bool]:
        """(status read, ambiguous?); None = two known labels or an unknown ``status:`` value.
        No label after a non-idle status is ambiguous: an agent may be between two requests
        (so is no label after a burst that added one, see :meth:`_Judge.verdict`)."""
        known = {s for item in self.labels if (s := item.status) is not None}
        if len(known) > 1:
            return None, True
        if len(known) < len(self.labels):
            return None, False
        if not known:
            return Status.IDLE, before is not Status.IDLE
        return known.pop(), False


@dataclass(frozen=True, slots=True)
class _Undone:
    read: _Read
    reverts: tuple[Revert, ...]


def _undo(read: _Read, changes: list[Change], why: Mapping[str, Violation], *,
          keep: set[Status], never_remove: Status) -> _Undone:
    """Undo each intruder's own status changes (``why``: its violation, by actor): per
    label, its last change is reversed when it still shows (an added label still there, a
    removed one still missing).

    Anchored to what the reactor knows: the label of the accepted status ``never_remove``
    is never removed, and only the labels of ``keep`` (the accepted status and those the
    authorised agents added in the burst) are put back. When GitHub and the reactor's
    memory agree, that is the exact inverse of the intruder's changes."""
    last: dict[tuple[str, LabelKey], Change] = {}
    for change in changes:
        last[(change.actor.login.casefold(), label_key(parse_label(change.label or "")))] = change
    by_violation: dict[str, tuple[list[str], list[str]]] = {}
    for (_, key), change in last.items():
        add, remove = by_violation.setdefault(change.actor.login.casefold(), ([], []))
        shown = [item.name for item in read.labels if label_key(item) == key]
        status = parse_label(change.label or "").status
        if change.kind is ChangeKind.LABELED and shown and status is not never_remove:
            remove.extend(shown)
            read = _Read(tuple(i for i in read.labels if label_key(i) != key))
        elif change.kind is ChangeKind.UNLABELED and not shown and status in keep:
            add.append(change.label or "")
            read = _Read((*read.labels, parse_label(change.label or "")))
    reverts = tuple(Revert(why[d], add=tuple(a), remove=tuple(r))
                    for d, (a, r) in by_violation.items() if a or r)
    return _Undone(read, reverts)


@dataclass(frozen=True)
class _Judge:
    """The authorised agents' changes of one issue, judged against the read they left.

    ``remembered`` says whether ``before`` is the reactor's memory (rather than inferred from
    the read), the only case in which the read can be ahead of the burst's webhooks.
    """

    issue: IssueSnapshot
    stage: str
    sit: Situation
    decided: Mapping[int, Status]
    before: Status
    remembered: bool
    read: _Read
    changes: tuple[Change, ...]
    undone: tuple[Revert, ...]

    @cached_property
    def until(self) -> datetime:
        """The settle window's end: from the burst's own changes when they account for the
        read, else — webhooks still on their way — as far as GitHub's newer read asks, within
        the bound (:meth:`Situation.settle_until`)."""
        return self.sit.settle_until(self.issue, in_flight=not self._explained())

    def verdict(self) -> Verdict:
        """Accept at once what is valid; anything else waits for the settle window, in case
        a webhook on its way (or an agent's second request) explains it."""
        status, ambiguous = self.read.status(self.before)
        midway = ambiguous or (not self.read.labels and any(
            added and s is not Status.IDLE for added, s in self._moves()))
        if midway and self.sit.now < self.until:
            return Settle(self.until)  # an agent may be between its two requests (SPEC §3)
        waiting = self.sit.now < self.until
        if status is self.before and not (waiting and not self._explained()):
            # Nothing moved — but a burst that does not add up (a label taken off that it
            # never showed) waits, so that the move it is half of is judged whole.
            return self._accept(status)
        walk, certain = self._walk(), self._chain.certain
        in_order = walk.possible and walk.broke is None and walk.reached is status
        if status is not None and status is not self.before and self._enters(status) and (
                (in_order and (certain or not waiting))
                or (not certain and is_allowed(self.before, status)  # memory → read
                    and (not waiting or self._explained(but_leaving=True)))
                or (not waiting and not certain and self._valid(status))):
            return self._accept(status)
        if waiting:
            return Settle(self.until)
        if status is not None and self._valid_but_for_blips(status):
            return self._accept(status)  # a blip's webhooks came after later moves
        if status is not None and not self._explained() and paths.lenient_path(
                self.before, status, self._evidenced, enters=self._enters):
            return self._accept(status)  # some webhooks never came: judge what is known
        return self._reject(status, walk)

    # -- the burst's changes -----------------------------------------------------------------

    @cached_property
    def _chain(self) -> Chain:
        """The changes of known ``status:`` values in the order GitHub most likely made them."""
        known = [(c, s) for c in self.changes if (s := parse_label(c.label or "").status)
                 is not None]
        return chain(self.before, known)

    def _moves(self) -> list[tuple[bool, Status]]:
        return [(c.kind is ChangeKind.LABELED, s) for c, s in self._chain.changes]

    def _walk(self) -> paths.Walk:
        if self._chain.certain:
            return paths.settled_walk(self.before, self._chain.ends(), enters=self._enters)
        return paths.ordered_walk(self.before, self._moves(), enters=self._enters)

    def _culprit_at(self, index: int) -> Change:
        """The change of the walk's step ``index``: the request's last change when the
        chain is certain, else the single change."""
        if self._chain.certain:
            return self._chain.requests[index][-1][0]
        return self._chain.changes[index][0]

    def _counted(self, kind: ChangeKind) -> Counter[Status]:
        return Counter(s for c in self.changes if c.kind is kind
                       and (s := parse_label(c.label or "").status) is not None)

    @property
    def _added(self) -> Counter[Status]:
        return self._counted(ChangeKind.LABELED)

    @property
    def _glimpsed(self) -> set[Status]:
        """The statuses the payloads showed on the issue."""
        return {s for c in self.changes for n in (c.shown or ())
                if (s := parse_label(n).status) is not None}

    @property
    def _evidenced(self) -> frozenset[Status]:
        """The statuses the burst shows the issue was in: added, taken off or shown by a
        payload — a status whose ``labeled`` webhook never came still shows this way."""
        removed = self._counted(ChangeKind.UNLABELED)
        return frozenset({*self._added, *removed, *self._glimpsed} - {self.before})

    def _explained(self, *, but_leaving: bool = False) -> bool:
        """Whether the burst's changes account for the read: what was shown before the burst
        (the read minus the burst's net changes) is what the reactor remembers, and every
        status a payload showed was added by the burst (or is the remembered one). With
        ``but_leaving``, the removal of the remembered status's own label may still be on
        its way (the other half of a ``PUT`` whose addition arrived first)."""
        added, removed = self._added, self._counted(ChangeKind.UNLABELED)
        shown = {s for item in self.read.labels if (s := item.status) is not None}
        if any(s is not Status.IDLE and s is not self.before and not added[s]
               for s in self._glimpsed):
            return False  # a payload showed a status whose webhook has not come
        opened = any(c.kind is ChangeKind.OPENED for c in self.sit.of(self.issue.number))
        for status in Status:
            if status is Status.IDLE:
                continue
            earlier = (status in shown) - (added[status] - removed[status])
            expected = int(self.remembered and status is self.before)
            if but_leaving and status is self.before and earlier == 0:
                continue
            if earlier not in (0, 1) or (self.remembered and earlier != expected):
                return False
            if opened and earlier:  # nothing showed before the issue existed
                return False
        return True

    def _valid_but_for_blips(self, status: Status) -> bool:
        """Whether the burst is a valid walk to the status read once its *blips* are set
        aside: a status label added and taken off again (or taken off and put back) by the
        next request, leaving the issue as it was. A blip's webhooks may come after those of
        later moves already judged — the reactor then remembers where the agent went next,
        or went through the blip to get there — so their order cannot be told; and a blip
        leaves nothing behind to undo."""
        requests = list(self._chain.requests)
        index, found = 0, False
        while index + 1 < len(requests):
            (first, one), (second, other) = requests[index][-1], requests[index + 1][0]
            if len(requests[index]) == len(requests[index + 1]) == 1 and one is other \
                    and first.kind is not second.kind:
                del requests[index:index + 2]
                index, found = max(0, index - 1), True
            else:
                index += 1
        if not found:
            return False
        if self._chain.certain:
            walk = paths.settled_walk(self.before, [shown_after(r) for r in requests],
                                      enters=self._enters)
        else:
            moves = [(c.kind is ChangeKind.LABELED, s) for r in requests for c, s in r]
            walk = paths.ordered_walk(self.before, moves, enters=self._enters)
        return walk.possible and walk.broke is None and walk.reached is status

    # -- the rules --------------------------------------------------------------------------

    def _enters(self, status: Status) -> bool:
        """R2: ``starting``/``running`` only once every earlier stage completed."""
        return status not in GUARDED or self._order(status) is None

    def _order(self, status: Status) -> Violation | None:
        return order_violation(self.issue, self.stage, self.sit.comp_of(self.issue), status,
                               self._culprit(status), self.sit, self.decided)

    def _valid(self, status: Status, enters: paths.Guard | None = None) -> bool:
        """Some order of the burst's changes is a valid path from ``before`` to ``status``."""
        guard = enters or self._enters
        if status is not Status.IDLE and not guard(status):
            return False
        return is_allowed(self.before, status) or paths.exact_walk(
            self.before, status, self._added, enters=guard)

    def _accept(self, status: Status) -> Judged:
        moved = self._culprit(status) if status is not self.before else None
        return Judged(status, self.before, moved, self.undone)

    def _reject(self, status: Status | None, walk: paths.Walk) -> Judged:
        """Back to the last status valid moves reached; exactly the invalid rest is undone.

        In the order received, that is the status before the first invalid move. When that
        order shows none (GitHub reordered the webhooks), the furthest status some valid
        prefix of the burst reaches."""
        reached = self._target(status, walk)
        moved = self._culprit(reached) if reached is not self.before else None
        violation = self._violation(status, reached, walk)
        if violation is None:  # only the intruders' changes were wrong
            return Judged(reached, self.before, moved, self.undone)
        revert = self._restore(reached, violation)
        reverts = (*self.undone, revert) if revert.add or revert.remove else self.undone
        return Judged(reached, self.before, moved, reverts)

    def _target(self, status: Status | None, walk: paths.Walk) -> Status:
        """Where the agent stood before its invalid move: the one status from which the
        burst reads as valid moves plus one last move to the read; where several fit, the
        one the order received shows. Failing that, the status before the first invalid
        move in the order received, else the furthest status valid moves can reach."""
        furthest = paths.furthest(self.before, frozenset(self._added),
                                  frozenset(self._counted(ChangeKind.UNLABELED)),
                                  enters=self._enters)
        ordered = walk.reached if walk.possible and walk.broke is not None else None
        if ordered is not None and self._chain.certain:
            return ordered  # the payloads told the order: no guessing
        short = () if status is None else paths.one_move_short(
            self.before, status, self._added, enters=self._enters)
        for choice in (ordered, furthest, *short):
            if choice is not None and (not short or choice in short):
                return choice
        return furthest

    def _violation(self, status: Status | None, reached: Status,
                   walk: paths.Walk) -> Violation | None:
        if status is reached:
            return None
        if walk.broke is not None and walk.possible:
            change = self._culprit_at(walk.broke)
            attempted: Status | None = walk.attempted
        else:
            change, attempted = self._culprit(status), status
        if attempted is not None and attempted in GUARDED and (
                is_allowed(reached, attempted) or self._valid(attempted, paths.always)):
            found = self._order(attempted)
            if found is not None:
                return found
        return _lifecycle_violation(self.issue, self.read, attempted, reached, change)

    def _culprit(self, status: Status | None) -> Change:
        """The change that set the status read (its last ``labeled``), else the latest."""
        setting = [c for c in self.changes if c.kind is ChangeKind.LABELED
                   and parse_label(c.label or "").status is status]
        found = setting or list(self.changes) or list(self.sit.of(self.issue.number))
        return found[-1]

    def _restore(self, target: Status, violation: Violation) -> Revert:
        """Status labels back to ``target`` (on the read the intruders' undoing left): drop
        every other ``status:`` label, put the target's back. ``status:idle`` is put back only
        if the burst removed it: no label already means idle."""
        remove = tuple(sorted(i.name for i in self.read.labels if i.status is not target))
        if any(i.status is target for i in self.read.labels):
            return Revert(violation, remove=remove)
        removed = [c.label for c in self.changes if c.kind is ChangeKind.UNLABELED
                   and c.label and parse_label(c.label).status is target]
        if removed:
            return Revert(violation, add=(removed[-1],), remove=remove)
        if target is Status.IDLE:
            return Revert(violation, remove=remove)
        return Revert(violation, add=(target.label,), remove=remove)


def _lifecycle_violation(issue: IssueSnapshot, read: _Read, status: Status | None,
                         target: Status, culprit: Change) -> Violation:
    nexts = ", ".join(code(f"status:{s}") for s in allowed_from(target))
    if status is None:
        labels = ", ".join(code(item.name) for item in read.labels)
        what = f"left #{issue.number} with {labels}; an issue has exactly one known status"
    else:
        what = (f"moved #{issue.number} from {code(str(target))} to {code(str(status))}, "
                f"which the lifecycle forbids")
    instead = f"From {code(str(target))} the next status is one of {nexts}, set in a single change."
    return Violation(Rule.R1, issue.number, culprit.actor.login, what, instead,
                     culprit.delivery_id)
