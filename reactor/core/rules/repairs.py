"""What reconcile repairs from an issue's state alone, whatever its history.

The webhook path judges *changes*. Reconcile has none to judge — the web was down, the
deliveries were lost, Redis was wiped — only the state GitHub shows now and whatever the
reactor remembers. These invariants are properties of that state, so reconcile repairs them,
each as SPEC §3's "on violation" column says, as far as the state allows
(:mod:`~reactor.core.rules.repair_identity`, :mod:`~reactor.core.rules.repair_status`):

- **identity (R3)**: an agent issue has one ``agent:`` and one ``comp:`` label. The ones the
  reactor remembers are put back and any other is taken off; with no memory, the one the
  title ``[<comp>] <stage>: …`` names is kept; when nothing tells, the issue goes to a human
  (``reactor:needs-human`` and one comment).
- **creation (R3 scope, R6 reverse)**: an issue the reactor never judged, opened by an actor
  outside the competition's ``scopes`` or by an agent of a later stage, is closed as not
  planned.
- **one status (R1)**: an issue with two ``status:`` labels (or one naming no state) keeps
  the status the reactor accepted; with no memory, the later of two statuses one lifecycle
  move apart (an agent's two-request change cut in half) when R2 allows it, else the
  earlier; the one known status beside unknown ones; any other mix goes to a human.
- **order (R2)**: an issue in ``starting`` or ``running`` the reactor did not accept there,
  while an earlier stage has no completed issue, goes back to the status the reactor
  accepted, else ``idle`` — from where the hand-off starts it once the earlier stages are done.

A status the reactor accepted stands: R2 guards *entering* a stage, which was judged when it
happened (an earlier stage re-run since leaves it be), and a maintainer's override is accepted
too. Issues changed within the settle window (longer while deliveries wait in the queue) are
the webhook path's, whose deliveries may still be on their way: reconcile neither repairs nor
remembers them. Issues labelled ``reactor:needs-human`` are left to their human.
"""

from __future__ import annotations

from collections.abc import Mapping

from reactor.core.actions import Identity
from reactor.core.labels import LabelKind, Status
from reactor.core.rules._base import GITHUB_CLOCK_STEP, STRETCH, Situation
from reactor.core.rules._repair import Repairs
from reactor.core.rules.repair_identity import chosen, identity, misplaced, titled
from reactor.core.rules.repair_status import repair_status
from reactor.core.view import IssueSnapshot

__all__ = ["Repairs", "chosen", "home_comp", "is_quiet", "repair", "titled"]


def home_comp(issue: IssueSnapshot, remembered: str | None) -> str | None:
    """The one competition whose reconcile judges ``issue`` (a deterministic pick when its
    labels name several and nothing tells which is its own)."""
    return chosen(issue, LabelKind.COMP, remembered) or min(issue.comps, default=None)


def is_quiet(issue: IssueSnapshot, sit: Situation) -> bool:
    """Unchanged for longer than the webhook path may still be judging it: the bound on a
    change's settle window (``settle`` + STRETCH) after GitHub's ``updated_at``, which
    counts to the second."""
    if issue.updated_at is None:
        return True
    return sit.now >= issue.updated_at + sit.config.settle + STRETCH + GITHUB_CLOCK_STEP


def repair(sit: Situation, statuses: Mapping[int, Status], *,
           closing: frozenset[int]) -> Repairs:
    """Every repair the competition's state calls for (``statuses``: what the reactor
    trusts for each issue before them; ``closing``: issues already being closed)."""
    out = Repairs()
    mine: dict[int, Identity] = {}
    for issue in sorted(sit.view.issues, key=lambda i: i.number):
        if not _judged_here(issue, sit, closing):
            continue
        if not is_quiet(issue, sit):
            out.unsettled.add(issue.number)
        elif not issue.tags.has(LabelKind.REACTOR, "needs-human"):
            found = identity(issue, sit, out)
            if found is not None:
                out.identities[issue.number] = found
                if not misplaced(issue, found, sit, out):
                    mine[issue.number] = found
    decided = dict(statuses)
    for number, settled in sorted(mine.items(), key=lambda m: _order(m[1], sit, m[0])):
        repair_status(_issue(sit, number), settled, sit, decided, out)
    return out


def _judged_here(issue: IssueSnapshot, sit: Situation, closing: frozenset[int]) -> bool:
    """An open agent issue (by label or memory) of this view's competition."""
    remembered = sit.remembered(issue, LabelKind.COMP)
    agent = issue.stages or sit.remembered(issue, LabelKind.AGENT)
    return bool(agent) and issue.is_open and issue.number not in closing \
        and home_comp(issue, remembered) == sit.view.comp


def _issue(sit: Situation, number: int) -> IssueSnapshot:
    found = sit.view.issue(number)
    assert found is not None  # only issues of the view are repaired
    return found


def _order(identity: Identity, sit: Situation, number: int) -> tuple[int, int]:
    index = sit.config.stage_index(identity.stage)
    return (len(sit.config.stages) if index is None else index), number
