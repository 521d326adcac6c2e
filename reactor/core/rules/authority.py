"""R4 authority: only the agents configured for stage S, or maintainers, move the status of an
``agent:S`` issue.

A stage with no ``agents`` entry (or a repository with no ``agents`` key) is open to anyone
GitHub lets label the issue — triage or write access already guards that (SPEC §3).
Maintainers never reach this check: the lifecycle rule accepts their changes outright.
"""

from __future__ import annotations

from reactor.core.actions import Rule
from reactor.core.rules._base import Situation, Violation
from reactor.core.view import Change, IssueSnapshot


def authority_violation(issue: IssueSnapshot, stage: str, changes: tuple[Change, ...],
                        sit: Situation) -> Violation | None:
    """The first status change on ``issue`` by an actor not allowed to drive ``stage``."""
    culprit = next((c for c in changes if not sit.config.may_drive(c.actor.login, stage)), None)
    if culprit is None:
        return None
    allowed = ", ".join(f"@{login}" for login in sorted(sit.config.agents.get(stage, ())))
    return Violation(
        Rule.R4, issue.number, culprit.actor.login,
        f"changed the status of #{issue.number}, an `agent:{stage}` issue, but only "
        f"{allowed} (or a maintainer) may",
        f"Leave `status:` labels of {stage} issues to the {stage} agent.", culprit.delivery_id)
