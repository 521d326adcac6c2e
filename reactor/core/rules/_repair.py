"""What the repairs of :mod:`reactor.core.rules.repairs` share: the result they build, and how
a repair is written (labels put back first, one comment keyed by the state found)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from reactor.core import comments
from reactor.core.actions import Action, AddLabel, Escalate, Identity, RemoveLabel, Rule
from reactor.core.labels import LabelKind, Status
from reactor.core.rules._base import Situation
from reactor.core.view import IssueSnapshot
from reactor.core.words import code


@dataclass
class Repairs:
    """What the state calls for: actions, and what the reactor accepts and remembers."""

    actions: list[Action] = field(default_factory=list)
    accepted: dict[int, Status] = field(default_factory=dict)
    identities: dict[int, Identity] = field(default_factory=dict)
    closing: set[int] = field(default_factory=set)
    unsettled: set[int] = field(default_factory=set)  # changed moments ago: not judged here


def state_key(issue: IssueSnapshot) -> str:
    """A comment key for the state found: the same state repaired twice comments once."""
    state = "\n".join([issue.state, *sorted(issue.labels)])
    return f"reconcile:{issue.number}:{hashlib.sha256(state.encode()).hexdigest()[:12]}"


def listed(issue: IssueSnapshot, *kinds: LabelKind) -> str:
    names = [item.name for kind in kinds for item in issue.tags.of(kind)]
    return ", ".join(code(n) for n in names) or "no status label"


def undone(add: list[str], remove: list[str]) -> str:
    parts = [f"removed {', '.join(code(n) for n in remove)}" if remove else "",
             f"restored {', '.join(code(n) for n in add)}" if add else ""]
    return " and ".join(p for p in parts if p)


def relabel(out: Repairs, issue: IssueSnapshot, rule: Rule, *, add: list[str],
            remove: list[str]) -> None:
    """What is put back first, then what goes (a repair cut off half-way is repaired again)."""
    out.actions += [AddLabel(issue.number, n, rule, f"repair: restore {n}") for n in add]
    out.actions += [RemoveLabel(issue.number, n, rule, f"repair: {n} does not belong")
                    for n in remove]


def unclear(issue: IssueSnapshot, sit: Situation, out: Repairs, rule: Rule, shown: str,
            what: str) -> None:
    """Nothing tells which of several labels is right: a human decides (one comment)."""
    maintainers = tuple(sorted(sit.config.maintainers))
    out.actions.append(Escalate(issue.number, maintainers, rule,
                                f"repair: {what} unclear ({shown})"))
    out.actions.append(comments.unclear(issue=issue.number, rule=rule,
                                        found=f"#{issue.number} with {shown}", what=what,
                                        maintainers=maintainers, key=state_key(issue)))
