"""R3 isolation: an agent issue keeps its one ``comp:`` (and one ``agent:``) label for life,
and an actor scoped to some competitions touches no issue of another.

Identity labels. The labels an issue had before the burst are the fresh ones minus those the
burst added, plus those it removed. With exactly one such label, any change is undone; with
none (a new issue being labelled), the first label added is the issue's identity and any
other added in the same burst is removed. The ``agent:`` label follows the same rule as
``comp:`` — changing an issue's stage would let an agent walk around R2 and R4.

Scope. A scoped actor's label changes on an issue whose competitions (before or now) lie
outside its scope are undone; an issue it opens in another competition is closed as not
planned. ``status:`` labels are left to :mod:`reactor.core.rules.lifecycle`, which asks
:func:`scope_violation` so that status reverts stay in one place. Maintainers are exempt.
"""

from __future__ import annotations

from reactor.core.actions import CloseReason, Rule
from reactor.core.labels import LabelKind, parse_label
from reactor.core.rules._base import Closure, LabelKey, Revert, Situation, Violation, label_key
from reactor.core.view import Change, ChangeKind, IssueSnapshot

IDENTITY = (LabelKind.AGENT, LabelKind.COMP)
NON_STATUS = tuple(k for k in LabelKind if k is not LabelKind.STATUS)
NON_IDENTITY = tuple(k for k in NON_STATUS if k not in IDENTITY)


def comps_touched(issue: IssueSnapshot, sit: Situation) -> frozenset[str]:
    """Competitions the issue belongs to before or after the burst."""
    return issue.comps | sit.identity_before(issue, LabelKind.COMP)


def out_of_scope(change: Change, issue: IssueSnapshot, sit: Situation) -> bool:
    if sit.is_maintainer(change):
        return False
    return any(not sit.config.in_scope(change.actor.login, c) for c in comps_touched(issue, sit))


def scope_violation(issue: IssueSnapshot, changes: tuple[Change, ...],
                    sit: Situation) -> Violation | None:
    """The first of ``changes`` made by an actor outside its competitions, as a violation."""
    culprit = next((c for c in changes if out_of_scope(c, issue, sit)), None)
    if culprit is None:
        return None
    comps = ", ".join(sorted(comps_touched(issue, sit)))
    scope = ", ".join(sorted(sit.config.scopes.get(culprit.actor.login.casefold(), ())))
    return Violation(
        Rule.R3, issue.number, culprit.actor.login,
        f"changed labels of #{issue.number} (competition {comps}) outside its scope ({scope})",
        "Work only on issues of your own competitions, or ask a maintainer to widen the "
        "`scopes` entry in `.github/reactor.yml`.", culprit.delivery_id)


def label_reverts(issue: IssueSnapshot, sit: Situation) -> tuple[Revert, ...]:
    """R3 reverts of identity and out-of-scope label changes on one issue."""
    found = [_identity_revert(issue, sit, kind) for kind in IDENTITY]
    found.append(_scope_revert(issue, sit))
    return tuple(r for r in found if r is not None)


def _identity_revert(issue: IssueSnapshot, sit: Situation, kind: LabelKind) -> Revert | None:
    if kind is LabelKind.COMP and not (issue.stages or sit.stage_of(issue)):
        return None  # only agent issues have a fixed competition
    net = sit.net(issue, (kind,), lambda c: not sit.is_maintainer(c))
    before = sit.identity_before(issue, kind)
    keep = sit.identity(issue, kind) if not before else None
    remove = tuple(name for (k, v), name in net.added.items() if k is kind and v != keep)
    add = tuple(name for (k, _), name in net.removed.items() if k is kind and len(before) == 1)
    remembered = sit.remembered(issue, kind)
    if sit.rehomed(issue, kind):
        return None  # a maintainer moved the issue: its new labels are its identity
    if remembered is not None and before == {remembered} and (net.added or net.removed):
        # State-based, so a swap whose halves arrived in separate bursts is still undone.
        remove = tuple(item.name for item in issue.tags.of(kind) if item.value != remembered)
        add = () if remembered in issue.tags.values(kind) else (f"{kind.prefix}{remembered}",)
    if not remove and not add:
        return None
    culprit = _first_change(sit, issue, {*net.added, *net.removed})
    what = (f"changed the `{kind.prefix}` label of #{issue.number}; an agent issue keeps "
            f"exactly one, set when it is created")
    instead = ("Open a new issue in the right competition or stage instead of relabelling "
               "this one.")
    violation = Violation(Rule.R3, issue.number, culprit.actor.login, what, instead,
                          culprit.delivery_id)
    return Revert(violation, add=add, remove=remove)


def _scope_revert(issue: IssueSnapshot, sit: Situation) -> Revert | None:
    changes = tuple(c for c in sit.of(issue.number) if c.kind in (ChangeKind.LABELED,
                                                                   ChangeKind.UNLABELED))
    violation = scope_violation(issue, changes, sit)
    if violation is None:
        return None
    # An agent issue's own ``comp:`` and ``agent:`` labels are the identity rule's to keep.
    kinds = NON_IDENTITY if (issue.stages or sit.stage_of(issue)) else NON_STATUS
    net = sit.net(issue, kinds, lambda c: out_of_scope(c, issue, sit))
    if not net.added and not net.removed:
        return None
    return Revert(violation, add=tuple(net.removed.values()), remove=tuple(net.added.values()))


def _first_change(sit: Situation, issue: IssueSnapshot, keys: set[LabelKey]) -> Change:
    return next(c for c in sit.of(issue.number)
                if c.label and label_key(parse_label(c.label)) in keys)


def creation_closures(issue: IssueSnapshot, sit: Situation) -> Closure | None:
    """Close an issue a scoped actor opened in a competition outside its scope."""
    if not issue.is_open:
        return None
    opened = tuple(c for c in sit.of(issue.number) if c.kind is ChangeKind.OPENED)
    culprit = next((c for c in opened if out_of_scope(c, issue, sit)), None)
    if culprit is None:
        return None
    comps = ", ".join(sorted(comps_touched(issue, sit)))
    violation = Violation(
        Rule.R3, issue.number, culprit.actor.login,
        f"opened #{issue.number} in competition {comps}, outside its scope",
        "Open issues only in your own competitions.", culprit.delivery_id)
    return Closure(violation, CloseReason.NOT_PLANNED)
