"""R6 reverse: an agent of stage k may not create an issue for an earlier stage.

An actor's stages come from ``config.agents`` (:meth:`RepoConfig.stages_of`); without an
``agents`` entry the reactor cannot tell an agent's stage and the rule stays silent. An
actor listed for several stages may create issues for any stage from its earliest one on.
"Create" is the ``opened`` change, or the issue's author labelling its own issue's stage
afterwards (a new issue is often opened bare and labelled next). Maintainers are exempt.
"""

from __future__ import annotations

from reactor.core.actions import CloseReason, Rule
from reactor.core.labels import LabelKind, parse_label
from reactor.core.rules._base import Closure, Situation, Violation
from reactor.core.view import Change, ChangeKind, IssueSnapshot


def _creates(change: Change, issue: IssueSnapshot) -> bool:
    if change.kind is ChangeKind.OPENED:
        return True
    by_author = change.actor.login.casefold() == issue.author.casefold()
    is_stage = change.label is not None and parse_label(change.label).kind is LabelKind.AGENT
    return change.kind is ChangeKind.LABELED and by_author and is_stage


def reverse_closure(issue: IssueSnapshot, sit: Situation) -> Closure | None:
    """Close ``issue`` when an agent of a later stage created it."""
    stage = sit.stage_of(issue)
    index = sit.config.stage_index(stage)
    if index is None or not issue.is_open:
        return None
    for change in sit.of(issue.number):
        if sit.is_maintainer(change) or not _creates(change, issue):
            continue
        own = sit.config.stages_of(change.actor.login)
        if own and index < min(sit.config.stages.index(s) for s in own):
            return Closure(_violation(issue, stage or "", own, change), CloseReason.NOT_PLANNED)
    return None


def _violation(issue: IssueSnapshot, stage: str, own: tuple[str, ...],
               change: Change) -> Violation:
    return Violation(
        Rule.R6, issue.number, change.actor.login,
        f"created #{issue.number} for the {stage} stage, which comes before its own "
        f"stage ({', '.join(own)})",
        "Work flows forward only: report the problem on your own issue, or ask a maintainer "
        f"to reopen the {stage} stage.", change.delivery_id)
