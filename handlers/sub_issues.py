"""``sub_issues``: an issue became, or stopped being, a sub-issue of another (R3, R9).

With ``chain: [sub_issues]`` each stage's issue is a sub-issue of its competition's parent
issue (``reactor:competition``); taking it out of that parent is an isolation change, which
the sub-issue's competition judges on its fresh read. GitHub sends each change twice
(``sub_issue_*`` to the parent's repository, ``parent_issue_*`` to the sub-issue's): the
``sub_issue_*`` half is the one judged; a parent in another repository is no competition's.
https://docs.github.com/en/webhooks/webhook-events-and-payloads#sub_issues
"""

from __future__ import annotations

from datetime import UTC, datetime

from gidgethub import routing, sansio

from reactor.core.events import Event, change_from_event
from reactor.shell.context import Context
from reactor.shell.intake import Intake

router = routing.Router()


@router.register("sub_issues", action="sub_issue_added")
@router.register("sub_issues", action="sub_issue_removed")
async def judge_parent(raw: sansio.Event, event: Event, ctx: Context, intake: Intake) -> None:
    """Let the sub-issue's competition judge the change."""
    change = change_from_event(event, now=datetime.now(UTC))
    if change is None:
        await intake.observe(event, detail="a sub-issue of another repository's issue")
        return
    await intake.judge(event, change)


@router.register("sub_issues")
async def observe(raw: sansio.Event, event: Event, ctx: Context, intake: Intake) -> None:
    """The ``parent_issue_*`` twin of a change, audited only."""
    if event.action not in ("sub_issue_added", "sub_issue_removed"):
        await intake.observe(event, detail="the sub-issue's side of the change")
