"""Repairs of an agent issue's identity and creation, from its state alone (R3, R6).

- **identity (R3)**: an agent issue has one ``agent:`` and one ``comp:`` label. The ones the
  reactor remembers are put back and any other is taken off; with no memory, the one the
  title ``[<comp>] <stage>: …`` names is kept; when nothing tells, the issue goes to a human
  (``reactor:needs-human`` and one comment).
- **creation (R3 scope, R6 reverse)**: an issue the reactor never judged, opened by an actor
  outside the competition's ``scopes`` or by an agent of a later stage, is closed as not
  planned. One it judged (it saw the issue opened, or a maintainer reopened it) stays.
"""

from __future__ import annotations

import re

from reactor.core import comments
from reactor.core.actions import CloseReason, Identity, Rule
from reactor.core.labels import LabelKind
from reactor.core.rules._assemble import closure_actions
from reactor.core.rules._base import Closure, Situation, Violation
from reactor.core.rules._repair import Repairs, listed, relabel, state_key, unclear, undone
from reactor.core.view import IssueSnapshot
from reactor.core.words import code

_TITLE = re.compile(r"^\s*\[(?P<comp>[^\]]*)\]\s*(?P<stage>[^\s:]+)\s*:")


def titled(title: str, kind: LabelKind) -> str | None:
    """The competition or stage a ``[<comp>] <stage>: <task>`` title names, folded."""
    match = _TITLE.match(title)
    if match is None:
        return None
    value = match.group("comp" if kind is LabelKind.COMP else "stage").strip().casefold()
    return value or None


def chosen(issue: IssueSnapshot, kind: LabelKind, remembered: str | None) -> str | None:
    """The issue's one ``agent:``/``comp:`` value: the remembered one, else its only label,
    else the one of its labels its title names; None when nothing tells."""
    if remembered is not None:
        return remembered
    shown = issue.tags.values(kind)
    if len(shown) == 1:
        return next(iter(shown))
    named = titled(issue.title, kind)
    return named if named in shown else None


def identity(issue: IssueSnapshot, sit: Situation, out: Repairs) -> Identity | None:
    """The issue's competition and stage, its labels repaired to show exactly those."""
    values: dict[LabelKind, str] = {}
    add: list[str] = []
    remove: list[str] = []
    for kind in (LabelKind.COMP, LabelKind.AGENT):
        shown = issue.tags.of(kind)
        want = chosen(issue, kind, sit.remembered(issue, kind))
        if want is None:
            if len(shown) > 1:
                unclear(issue, sit, out, Rule.R3, ", ".join(code(i.name) for i in shown),
                        f"`{kind.prefix}` labels")
            return None
        values[kind] = want
        remove += [i.name for i in shown if i.value != want]
        add += [] if any(i.value == want for i in shown) else [f"{kind.prefix}{want}"]
    if add or remove:
        relabel(out, issue, Rule.R3, add=add, remove=remove)
        found = f"#{issue.number} with {listed(issue, LabelKind.COMP, LabelKind.AGENT)}"
        done = undone(add, remove)
        out.actions.append(comments.repaired(
            issue=issue.number, rule=Rule.R3, found=found, done=(
                f"An agent issue keeps exactly one `agent:` and one `comp:` label, set when "
                f"it is created, so the reactor {done}."),
            instead="Open a new issue in the right competition or stage instead of "
                    "relabelling this one.", key=state_key(issue)))
    return Identity(values[LabelKind.COMP], values[LabelKind.AGENT])


def misplaced(issue: IssueSnapshot, identity: Identity, sit: Situation,
              out: Repairs) -> bool:
    """Close an issue the reactor never judged that its author had no business opening."""
    view, author = sit.view, issue.author
    known = issue.number in view.accepted or issue.number in view.stages \
        or issue.number in view.competitions
    if known or view.created_by_reactor(issue.number) or sit.config.is_maintainer(author):
        return False
    violation = _scope(issue, identity, sit) or _reverse(issue, identity, sit)
    if violation is None:
        return False
    out.actions += closure_actions([Closure(violation, CloseReason.NOT_PLANNED)])
    out.closing.add(issue.number)
    return True


def _scope(issue: IssueSnapshot, identity: Identity, sit: Situation) -> Violation | None:
    if sit.config.in_scope(issue.author, identity.comp):
        return None
    return Violation(Rule.R3, issue.number, issue.author,
                     f"opened #{issue.number} in competition {code(identity.comp)}, outside "
                     f"its scope", "Open issues only in your own competitions.",
                     state_key(issue))


def _reverse(issue: IssueSnapshot, identity: Identity, sit: Situation) -> Violation | None:
    index, own = sit.config.stage_index(identity.stage), sit.config.stages_of(issue.author)
    if index is None or not own or index >= min(sit.config.stages.index(s) for s in own):
        return None
    return Violation(
        Rule.R6, issue.number, issue.author,
        f"created #{issue.number} for the {identity.stage} stage, which comes before its own "
        f"stage ({', '.join(own)})",
        "Work flows forward only: report the problem on your own issue, or ask a maintainer "
        f"to reopen the {identity.stage} stage.", state_key(issue))
