"""The chaos suite's invariants, computed after a run from what GitHub shows (SPEC §8).

A :class:`History` is the repository as the sandbox left it — every issue with its final
labels, its App comments and its timeline (``GET …/issues/{n}/events``) — plus which webhook
deliveries the reactor answered 2xx and which of those it accounted for (an audit record or
RQ's failed registry), and the mistakes the adversaries made. Each checker counts one kind of
violation and says where; a clean run has none. The functions are pure, so
``test_chaos_checks.py`` proves on made-up histories that each one fires.

"Reverted" below means undone by the App: the next event on the same issue and label is the
opposite change, made by the App's bot.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

# SPEC §3: the allowed status transitions (no status label is idle).
ALLOWED = {
    "idle": {"starting", "error"},
    "starting": {"running", "error", "timeout"},
    "running": {"completed", "error", "timeout"},
    "completed": {"idle"},
    "error": {"idle", "starting"},
    "timeout": {"idle", "starting"},
}
HANDOFF_PREFIX = "**R9 hand-off**: "  # then "#<completed issue> (<stage>) completed; …"


@dataclass(frozen=True)
class Event:
    """One timeline entry: ``labeled``/``unlabeled`` (with the label) or ``closed``/``reopened``."""

    id: int
    kind: str
    actor: str
    label: str | None = None


@dataclass
class Issue:
    number: int
    title: str
    author: str
    state: str
    labels: set[str]
    comments: list[str]  # the App's, oldest first
    events: list[Event]
    # the issues GitHub lists as blocking this one (in the chaos run, only hand-offs link)
    linked_from: list[int] = field(default_factory=list)

    def first(self, prefix: str) -> str | None:
        """The value of the first ``prefix`` label the issue was given (its identity)."""
        return next((e.label[len(prefix):] for e in self.events if e.kind == "labeled"
                     and e.label is not None and e.label.startswith(prefix)), None)

    @property
    def comp(self) -> str | None:
        return self.first("comp:")

    @property
    def stage(self) -> str | None:
        return self.first("agent:")

    def values(self, prefix: str) -> set[str]:
        return {n[len(prefix):] for n in self.labels if n.startswith(prefix)}


@dataclass(frozen=True)
class Mistake:
    """A mistake as an adversary made it: the changes ``actor`` made on ``issue`` after the
    event ``after`` up to the event ``upto`` (``whole``: the issue itself is the mistake,
    e.g. a duplicate it opened)."""

    kind: str
    comp: str
    issue: int
    actor: str
    after: int = 0
    upto: int = 0
    whole: bool = False

    def covers(self, issue: int, event: Event) -> bool:
        return (issue == self.issue and event.actor == self.actor
                and (self.whole or self.after < event.id <= self.upto))


@dataclass
class History:
    issues: dict[int, Issue]
    bot: str
    stages: tuple[str, ...]
    authorised: dict[str, frozenset[str]]  # stage -> the logins that may change its status
    comps: list[str]
    mistakes: list[Mistake] = field(default_factory=list)
    answered: set[str] = field(default_factory=set)  # GUIDs answered 2xx
    accounted: set[str] = field(default_factory=set)  # GUIDs audited or in the failed registry

    def of(self, comp: str, stage: str) -> list[Issue]:
        return [i for i in self.issues.values() if i.comp == comp and i.stage == stage]

    def is_mistake(self, issue: int, event: Event) -> bool:
        return any(m.covers(issue, event) for m in self.mistakes)


def reverted(issue: Issue, event: Event, bot: str) -> bool:
    """Whether the App undid ``event`` (the next change of its label or state is the App's
    opposite one)."""
    opposite = {"labeled": "unlabeled", "unlabeled": "labeled",
                "closed": "reopened", "reopened": "closed"}[event.kind]
    later = [e for e in issue.events if e.id > event.id and e.label == event.label
             and (event.label is not None or e.kind in ("closed", "reopened"))]
    return bool(later) and later[0].kind == opposite and later[0].actor == bot


def _standing(issue: Issue, bot: str, labels: set[str]) -> list[Event]:
    """``labeled`` events of ``labels`` the App did not undo."""
    return [e for e in issue.events if e.kind == "labeled" and e.label in labels
            and not reverted(issue, e, bot)]


# -- the checkers -------------------------------------------------------------------------------


def duplicate_issues(h: History) -> list[str]:
    """More than one open issue for one (competition, stage)."""
    found = Counter((i.comp, i.stage) for i in h.issues.values() if i.state == "open" and i.stage)
    return [f"{c}/{s}: {n} open issues" for (c, s), n in sorted(found.items()) if n > 1]


def two_status_labels(h: History) -> list[str]:
    return [f"#{i.number}: {sorted(i.values('status:'))}" for i in h.issues.values()
            if len(i.values("status:")) > 1]


def two_comp_labels(h: History) -> list[str]:
    return [f"#{i.number}: {sorted(i.values('comp:'))}" for i in h.issues.values()
            if i.stage and len(i.values("comp:")) != 1]


def invalid_transitions_left(h: History) -> list[str]:
    """Status moves outside the lifecycle that stand. The issue's statuses are replayed from
    its timeline (moments with exactly one ``status:`` label, or none: idle); a detour the
    App took back (X → Y → X, the return by the App) is dropped."""
    found = []
    for issue in h.issues.values():
        path = _status_path(issue)
        changed = True
        while changed:
            changed = False
            for k in range(len(path) - 2):
                if path[k][0] == path[k + 2][0] and path[k + 2][1] == h.bot:
                    del path[k + 1: k + 3]
                    changed = True
                    break
        found += [f"#{issue.number}: {a} → {b} by {who}" for (a, _), (b, who)
                  in itertools.pairwise(path) if b not in ALLOWED[a]]
    return found


def _status_path(issue: Issue) -> list[tuple[str, str]]:
    """(status, who made it so) at each moment the issue had one status, repeats merged. An
    issue is idle until its first status label; an issue that has had one is not judged
    while it has none (a two-request move, or a revert, half done)."""
    labels: set[str] = set()
    path = [("idle", "")]
    for event in issue.events:
        if event.label is None or not event.label.startswith("status:"):
            continue
        (labels.add if event.kind == "labeled" else labels.discard)(event.label)
        if len(labels) == 1:
            status = next(iter(labels))[len("status:"):]
            if status != path[-1][0] and status in ALLOWED:
                path.append((status, event.actor))
    return path


def stage_before_predecessor(h: History) -> list[str]:
    """A stage put in ``starting`` or ``running`` (and left so by the App) before every
    earlier stage of its competition had a ``completed`` issue."""
    found = []
    for issue in h.issues.values():
        if issue.comp is None or issue.stage not in h.stages:
            continue
        k = h.stages.index(issue.stage)
        for event in _standing(issue, h.bot, {"status:starting", "status:running"}):
            for earlier in h.stages[:k]:
                done = [e.id for i in h.of(issue.comp, earlier)
                        for e in _standing(i, h.bot, {"status:completed"})]
                if not done or min(done) > event.id:
                    found.append(f"#{issue.number} {issue.comp}/{issue.stage} "
                                 f"{event.label} by {event.actor} before {earlier} completed")
                    break
    return found


def isolation_left(h: History) -> list[str]:
    """An agent issue whose ``comp:`` labels are not just the one it was created with."""
    return [f"#{i.number}: created in {i.comp}, now {sorted(i.values('comp:'))}"
            for i in h.issues.values() if i.stage and i.values("comp:") != {i.comp}]


def authority_left(h: History) -> list[str]:
    """A ``status:`` change by someone not allowed to drive the issue's stage, not undone."""
    found = []
    for issue in h.issues.values():
        allowed = h.authorised.get(issue.stage or "", frozenset()) | {h.bot}
        found += [f"#{issue.number}: {e.kind} {e.label} by {e.actor}" for e in issue.events
                  if e.label is not None and e.label.startswith("status:")
                  and e.actor not in allowed and not reverted(issue, e, h.bot)]
    return found


def reverse_left_open(h: History) -> list[str]:
    """An open issue of a stage opened by the agent of a later stage of its competition."""
    found = []
    for issue in h.issues.values():
        if issue.state != "open" or issue.stage not in h.stages:
            continue
        k = h.stages.index(issue.stage)
        later = [s for s in h.stages[k + 1:] if issue.author in h.authorised.get(s, ())]
        if later and issue.author not in h.authorised.get(issue.stage, ()):
            found.append(f"#{issue.number} {issue.comp}/{issue.stage} opened by {issue.author}")
    return found


def comments_twice(h: History) -> list[str]:
    return [f"#{i.number}: {body.splitlines()[0][:80]!r} ×{n}" for i in h.issues.values()
            for body, n in Counter(i.comments).items() if n > 1]


def valid_moves_undone(h: History) -> list[str]:
    """A change by an agent of the issue's stage that was no mistake, undone by the App; or an
    issue an agent opened, closed by the App, that no mistake opened."""
    found = []
    for issue in h.issues.values():
        allowed = h.authorised.get(issue.stage or "", frozenset())
        for event in issue.events:
            if (event.label is not None and event.label.startswith("status:")
                    and event.actor in allowed and not h.is_mistake(issue.number, event)
                    and reverted(issue, event, h.bot)):
                found.append(f"#{issue.number}: {event.kind} {event.label} by {event.actor}")
        closed = [e for e in issue.events if e.kind == "closed" and e.actor == h.bot]
        opened_by_mistake = any(m.issue == issue.number and m.whole for m in h.mistakes)
        if closed and issue.author != h.bot and not opened_by_mistake:
            found.append(f"#{issue.number} ({issue.author}'s) closed by the App")
    return found


def handoffs_missing(h: History) -> list[str]:
    """A stage that completed (not the last) with no hand-off: neither its comment nor the
    App's "blocked by" link from the next stage's issue (the comment is the link's fallback)."""
    return [f"{c}/{s}" for c, s, n in _handoffs(h) if n == 0]


def handoffs_doubled(h: History) -> list[str]:
    """More than one hand-off from one stage, or more than one issue the App opened for it."""
    found = [f"{c}/{s}: {n} hand-off comments and links" for c, s, n in _handoffs(h) if n > 1]
    created = Counter((i.comp, i.stage) for i in h.issues.values() if i.author == h.bot)
    return found + [f"{c}/{s}: the App opened {n} issues" for (c, s), n in created.items()
                    if n > 1]


def _handoffs(h: History) -> list[tuple[str, str, int]]:
    """(competition, stage, hand-offs seen) for every stage but the last that completed.
    A hand-off shows as the App's "blocked by" link from the next stage's issue to the
    completed one, or — where GitHub refused the link, or a repeated hand-off found it made
    already — as its comment, on the next stage's issue or on the completed one when the
    hand-off created the next issue; either way the comment begins by naming the completed
    issue. One hand-off made twice shows twice: the repeat's link is refused, so it
    comments."""
    out = []
    for comp in h.comps:
        bodies = [b for i in h.issues.values() if i.comp == comp for b in i.comments]
        for k, stage in enumerate(h.stages[:-1]):
            done = [i.number for i in h.of(comp, stage)
                    if _standing(i, h.bot, {"status:completed"})]
            links = [n for i in h.of(comp, h.stages[k + 1]) for n in i.linked_from]
            if done:
                out.append((comp, stage, sum(b.startswith(f"{HANDOFF_PREFIX}#{n} (")
                                             for n in done for b in bodies)
                            + sum(n in done for n in links)))
    return out


def unfinished(h: History) -> list[str]:
    """A competition whose last stage has no issue in ``completed``."""
    last = h.stages[-1]
    return [comp for comp in h.comps
            if not any("status:completed" in i.labels for i in h.of(comp, last))]


def deliveries_unaccounted(h: History) -> list[str]:
    """Deliveries the reactor answered 2xx that it neither audited nor kept as failed."""
    return sorted(h.answered - h.accounted)


CHECKERS: dict[str, Callable[[History], list[str]]] = {
    f.__name__: f for f in (
        duplicate_issues, two_status_labels, two_comp_labels, invalid_transitions_left,
        stage_before_predecessor, isolation_left, authority_left, reverse_left_open,
        comments_twice, valid_moves_undone, handoffs_missing, handoffs_doubled, unfinished,
        deliveries_unaccounted,
    )
}


def check(h: History) -> dict[str, list[str]]:
    """Every checker's findings, by name (empty lists for a clean run)."""
    return {name: checker(h) for name, checker in CHECKERS.items()}


def counts(findings: dict[str, list[str]]) -> dict[str, int]:
    return {name: len(found) for name, found in findings.items()}
