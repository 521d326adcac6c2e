"""A competition's parent issue (``chain: [sub_issues]``): each stage's issue its sub-issue.

The parent is the lowest-numbered open issue labelled ``reactor:competition`` and the
competition's ``comp:`` label; the first hand-off that finds none creates it (keyed, so at
most once). Every hand-off makes the completed stage (when it has no parent yet) and the
started one sub-issues of it (R9), so a person sees the pipeline in GitHub itself. A stage's
issue taken out of its competition's parent by anyone but a maintainer is put back (R3), as
any other isolation change is undone — within the revert-war cap.
"""

from __future__ import annotations

from reactor.core import comments
from reactor.core.actions import Action, AddSubIssue, CreateIssue, Note, Rule
from reactor.core.config import Chain
from reactor.core.labels import LabelKind, ReactorLabel, Status, comp_label
from reactor.core.markers import creation_marker
from reactor.core.rules._base import Situation
from reactor.core.view import ChangeKind, IssueSnapshot
from reactor.core.words import code

LABEL = ReactorLabel.COMPETITION.value


def is_parent(issue: IssueSnapshot) -> bool:
    return issue.tags.has(LabelKind.REACTOR, "competition")


def of_competition(comp: str, sit: Situation) -> IssueSnapshot | None:
    """The competition's open parent issue, or None."""
    return min((i for i in sit.view.issues
                if i.is_open and is_parent(i) and sit.comp_of(i) == comp),
               key=lambda i: i.number, default=None)


def nest(comp: str, done: IssueSnapshot, started: IssueSnapshot | None, started_key: str,
         reason: str, sit: Situation) -> list[Action]:
    """A hand-off's sub-issue steps: the parent created when the competition has none, then
    the completed stage (if it has no parent) and the started one (``started`` None: the
    issue this decision creates under ``started_key``) made its sub-issues."""
    if Chain.SUB_ISSUES not in sit.config.chain:
        return []
    parent = of_competition(comp, sit)
    actions: list[Action] = []
    number, key = (parent.number, "") if parent is not None else (0, _key(comp, sit))
    if parent is None:
        actions.append(_create(comp, key))
    if done.parent is None:
        actions.append(AddSubIssue(number, key, done.number, "", done.id, False, Rule.R9,
                                   f"{reason}: #{done.number} a sub-issue of the competition"))
    if started is None:
        actions.append(AddSubIssue(number, key, 0, started_key, 0, False, Rule.R9,
                                   f"{reason}: the new issue a sub-issue of the competition"))
    elif parent is None or started.parent != parent.number:
        actions.append(AddSubIssue(number, key, started.number, "", started.id, False,
                                   Rule.R9, f"{reason}: #{started.number} a sub-issue of "
                                   f"the competition"))
    return actions


def _key(comp: str, sit: Situation) -> str:
    """``<repo>:<comp>:parent``; once parents were closed, the newest one's number joins the
    key, so a new one is created exactly once rather than the old one found."""
    base = f"{sit.view.repo}:{comp}:parent"
    earlier = sorted(i.number for i in sit.view.issues if is_parent(i) and sit.comp_of(i) == comp)
    return f"{base}:{earlier[-1]}" if earlier else base


def _create(comp: str, key: str) -> CreateIssue:
    body = (f"The stages of competition {code(comp)}, each a sub-issue of this one, as the "
            f"reactor hands off from one to the next. A stage's issue taken out of it is put "
            f"back (R3).\n\n{creation_marker(key)}")
    return CreateIssue(title=f"[{comp}] competition", body=body,
                       labels=(comp_label(comp), LABEL), key=key, status=Status.IDLE,
                       rule=Rule.R9, reason=f"competition {comp} has no parent issue")


def restore(issue: IssueSnapshot, sit: Situation, *, capped: bool
            ) -> tuple[list[Action], list[Note]]:
    """R3: a stage's issue someone other than a maintainer took out of its competition's
    parent goes back under it (from wherever it is now), with one comment; past the
    revert-war cap (``capped``) only a note."""
    removed = [c for c in sit.of(issue.number)
               if c.kind is ChangeKind.SUB_ISSUE_REMOVED and not sit.is_maintainer(c)]
    comp = sit.comp_of(issue)
    if not removed or not comp or not sit.stage_of(issue) \
            or Chain.SUB_ISSUES not in sit.config.chain:
        return [], []
    parent = of_competition(comp, sit)
    culprit = next((c for c in removed if parent is not None and c.other == parent.number), None)
    if parent is None or culprit is None or issue.parent == parent.number:
        return [], []
    reason = f"revert: #{issue.number} back under #{parent.number}"
    if capped:
        return [], [Note(Rule.R3, issue.number, f"needs a human; not reverted: {reason}")]
    return [AddSubIssue(parent.number, "", issue.number, "", issue.id, issue.parent is not None,
                        Rule.R3, reason),
            comments.parent_restored(issue=issue.number, parent=parent.number,
                                     actor=culprit.actor.login, key=culprit.delivery_id)], []
