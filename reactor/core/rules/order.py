"""R2 order: stage k of a competition enters ``starting`` or ``running`` only once every
earlier stage has an issue in ``completed`` (an issue closed as completed counts).

For an agent's own move, "in completed" means before the burst that holds the move
(:meth:`~reactor.core.rules._base.Situation.completed_before`): a completion judged together with
the move may have come after it — webhooks arrive in any order — so the move is undone and
the completion's hand-off starts the stage. For the hand-off itself, it is the status the
rules trust for each issue: the one decided in this evaluation, else the last accepted, else
the fresh read (:meth:`~reactor.core.rules._base.Situation.effective_status`), so a ``completed``
label an agent set invalidly in the same burst never unblocks a later stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reactor.core.actions import Rule
from reactor.core.labels import Status
from reactor.core.rules._base import Situation, Violation
from reactor.core.view import Change, IssueSnapshot

GUARDED = frozenset({Status.STARTING, Status.RUNNING})


@dataclass(frozen=True, slots=True)
class Blocker:
    """The earliest stage that has not completed, and its most relevant issue if any."""

    stage: str
    issue: IssueSnapshot | None
    status: Status | None = None  # the status the rule trusted for ``issue``

    def describe(self, comp: str) -> str:
        if self.issue is None:
            return f"stage {self.stage} of {comp} has no issue yet"
        if self.status is Status.COMPLETED:
            return (f"stage {self.stage} had not completed before it: "
                    f"#{self.issue.number} completed only as it was judged")
        trusted = self.status or "ambiguous"
        said = f"#{self.issue.number} is `{trusted}`"
        if self.issue.status is not None and self.issue.status != self.status:
            said += f" (its `{self.issue.status}` label not yet accepted)"
        return f"stage {self.stage} has not completed: {said}"


def blocker(comp: str, stage: str, sit: Situation, decided: Mapping[int, Status], *,
            before: bool = False) -> Blocker | None:
    """The first earlier stage of ``comp`` without a completed issue (``before`` the burst,
    for an agent's move), or None."""
    index = sit.config.stage_index(stage)
    for earlier in sit.config.stages[: index or 0]:
        issues = sit.in_stage(comp, earlier)
        done = sit.completed_before if before else (lambda i: sit.completed(i, decided))
        if not any(done(i) for i in issues):
            shown = next((i for i in issues if i.is_open), issues[0] if issues else None)
            trusted = None if shown is None else sit.effective_status(shown, decided)
            return Blocker(earlier, shown, trusted)
    return None


def order_violation(issue: IssueSnapshot, stage: str, comp: str | None, status: Status,
                    culprit: Change, sit: Situation,
                    decided: Mapping[int, Status]) -> Violation | None:
    """R2 for a move of ``issue`` into ``status``, or None when the move is in order."""
    if status not in GUARDED or comp is None:
        return None
    found = blocker(comp, stage, sit, decided, before=True)
    if found is None:
        return None
    wait = (f"Wait for #{found.issue.number} to reach `status:completed`"
            if found.issue else f"Open and complete the {found.stage} issue of {comp} first")
    return Violation(
        Rule.R2, issue.number, culprit.actor.login,
        f"moved #{issue.number} ({stage}) to `status:{status}`, but {found.describe(comp)}",
        f"{wait}; the hand-off then starts this stage.", culprit.delivery_id)
