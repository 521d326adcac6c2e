"""R11 runaway: an actor over its budget pauses its competition until a maintainer resumes it.

The shell counts, per installation and actor, the label changes on agent issues, the agent
issues opened and the comments on them, each within its window (``limits`` in the config),
and hands the overruns of the burst's actors to the rules (:attr:`CompetitionView.overruns`).
An actor over any budget pauses the competition: the issue of the actor's last change gets
``reactor:paused`` and one comment with the figures, mentioning the maintainers, and then
its other open agent issues get the label (so a pause cut short by a conflict still shows
where it began). While any of them carries the label the competition is frozen: every change
an agent (anyone but a maintainer) makes to an agent issue's labels is undone, so no status
moves and no hand-off starts. A maintainer removing ``reactor:paused`` from one issue
resumes the competition: the reactor takes the label off the others, and the shell forgives
the actor that paused it whatever it did before the resume, even what a later round counts
(:mod:`reactor.store.budgets`), so a flood still queued then cannot pause it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reactor.core import comments
from reactor.core.actions import Action, AddLabel, RemoveLabel, Rule
from reactor.core.labels import LabelKind, ReactorLabel, parse_label
from reactor.core.rules._base import LABEL_CHANGES, Revert, Situation, Violation, label_key
from reactor.core.view import IssueSnapshot, Overrun
from reactor.core.words import code

PAUSED = ReactorLabel.PAUSED.value
_PAUSED_KEY = label_key(parse_label(PAUSED))
_UNDONE = tuple(k for k in LabelKind if k is not LabelKind.REACTOR)  # reactor: labels: R4


@dataclass
class Brake:
    """What R11 asks of a burst: ``frozen`` — the competition is (or now gets) paused, so
    its agents' label changes are undone; ``resumed`` — a maintainer lifted the pause."""

    frozen: bool = False
    resumed: bool = False
    actions: list[Action] = field(default_factory=list)
    paused_by: str | None = None


def _issues(sit: Situation) -> list[IssueSnapshot]:
    """The competition's open agent issues."""
    return [i for i in sit.view.issues if i.is_open and i.stage is not None
            and sit.comp_of(i) == sit.view.comp]


def brake(sit: Situation) -> Brake:
    """The pause R11 puts on (or lifts from) the competition for this burst."""
    if sit.view.comp is None:
        return Brake()
    issues = _issues(sit)
    if any(_PAUSED_KEY in sit.net(i, (LabelKind.REACTOR,), sit.is_maintainer).removed
           for i in sit.view.issues):
        return Brake(resumed=True, actions=[
            RemoveLabel(i.number, name, Rule.R11, "a maintainer resumed the competition")
            for i in issues for name in i.tags.names(LabelKind.REACTOR, "paused")])
    paused = any(i.tags.has(LabelKind.REACTOR, "paused") for i in issues)
    over = [o for o in sit.view.overruns if not sit.config.is_maintainer(o.actor)]
    if paused or not over:
        return Brake(frozen=paused)
    return _pause(sit, sit.view.comp, issues, over)


def _pause(sit: Situation, comp: str, issues: list[IssueSnapshot], over: list[Overrun]
           ) -> Brake:
    """Pause the competition: ``reactor:paused`` on the culprit's issue and the comment
    there first, then on the other issues. A pause cut short (a conflict on an issue an agent
    is changing, a crash) is a pause all the same, shown where it began; one that found a
    label in place is not completed later, as a maintainer's resume may be on its way."""
    culprit = over[0]
    maintainers = tuple(sorted(sit.config.maintainers))
    figures = [(o.count, o.kind, o.budget) for o in over if o.actor == culprit.actor]
    why = (f"paused: @{culprit.actor} made {culprit.count} {culprit.kind} "
           f"(budget: {culprit.budget})")
    labels = [AddLabel(i.number, PAUSED, Rule.R11, why)
              for i in sorted(issues, key=lambda i: i.number != culprit.issue)]
    first = 1 if labels and labels[0].issue == culprit.issue else 0
    said = comments.paused(issue=culprit.issue, actor=culprit.actor, figures=figures, comp=comp,
                           maintainers=maintainers, key=culprit.delivery)
    return Brake(frozen=True, actions=[*labels[:first], said, *labels[first:]],
                 paused_by=culprit.actor)


def undo(issue: IssueSnapshot, sit: Situation) -> Revert | None:
    """While the competition is paused: undo what anyone but a maintainer changed in the
    issue's labels (``reactor:`` labels aside: R4 keeps those)."""
    net = sit.net(issue, _UNDONE, lambda c: not sit.is_maintainer(c))
    if not net.added and not net.removed:
        return None
    keys = {*net.added, *net.removed}
    culprit = next(c for c in sit.of(issue.number) if c.kind in LABEL_CHANGES and c.label
                   and not sit.is_maintainer(c) and label_key(parse_label(c.label)) in keys)
    names = ", ".join(code(n) for n in sorted({*net.added.values(), *net.removed.values()}))
    violation = Violation(
        Rule.R11, issue.number, culprit.actor.login,
        f"changed {names} on #{issue.number} while its competition is paused",
        "The competition stays paused until a maintainer removes `reactor:paused`.",
        culprit.delivery_id)
    return Revert(violation, add=tuple(net.removed.values()), remove=tuple(net.added.values()))
