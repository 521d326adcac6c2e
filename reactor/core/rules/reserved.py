"""``reactor:`` labels are the reactor's alone (SPEC §3).

``reactor:blocked``, ``reactor:needs-human`` and ``reactor:duplicate`` are set by the reactor
only; anyone else's change to them is undone — an agent that labels its own issue
``reactor:needs-human`` would otherwise switch enforcement off. A maintainer may change them:
removing ``reactor:needs-human`` hands the issue back to the reactor, which then starts the
revert-war count afresh.
"""

from __future__ import annotations

from reactor.core.actions import Rule
from reactor.core.labels import LabelKind, ReactorLabel, parse_label
from reactor.core.rules._base import Revert, Situation, Violation, label_key
from reactor.core.view import IssueSnapshot
from reactor.core.words import code

_NEEDS_HUMAN = label_key(parse_label(ReactorLabel.NEEDS_HUMAN.value))


def reserved_revert(issue: IssueSnapshot, sit: Situation) -> Revert | None:
    """Undo the ``reactor:`` label changes of anyone but a maintainer."""
    net = sit.net(issue, (LabelKind.REACTOR,), lambda c: not sit.is_maintainer(c))
    if not net.added and not net.removed:
        return None
    keys = {*net.added, *net.removed}
    culprit = next(c for c in sit.of(issue.number) if not sit.is_maintainer(c)
                   and c.label and label_key(parse_label(c.label)) in keys)
    names = ", ".join(code(n) for n in sorted({*net.added.values(), *net.removed.values()}))
    violation = Violation(
        Rule.R4, issue.number, culprit.actor.login,
        f"changed {names} on #{issue.number}; only the reactor sets `reactor:` labels",
        "Leave `reactor:` labels to the reactor; a maintainer removes `reactor:needs-human` "
        "to hand an issue back.", culprit.delivery_id)
    return Revert(violation, add=tuple(net.removed.values()), remove=tuple(net.added.values()))


def forged_needs_human(issue: IssueSnapshot, sit: Situation) -> bool:
    """``reactor:needs-human`` was added in this burst by someone other than a maintainer."""
    net = sit.net(issue, (LabelKind.REACTOR,), lambda c: not sit.is_maintainer(c))
    return _NEEDS_HUMAN in net.added


def handed_back(issue: IssueSnapshot, sit: Situation) -> bool:
    """A maintainer removed ``reactor:needs-human`` in this burst."""
    net = sit.net(issue, (LabelKind.REACTOR,), sit.is_maintainer)
    return _NEEDS_HUMAN in net.removed
