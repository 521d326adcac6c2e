"""``issue_dependencies``: an issue is now (or no longer) blocked by another (R7).

The reactor remembers what GitHub reported, so judging a competition costs no extra read,
and hands the change to the blocked issue's competition, where R7 refuses a link that closes
a cycle and lifts ``reactor:blocked`` once none runs through the issue. GitHub sends each link
twice (``blocked_by_*`` to the blocked issue's repository, ``blocking_*`` to the blocking
issue's): the ``blocked_by_*`` half is the one judged; a link to another repository is not
part of any competition's graph.
https://docs.github.com/en/webhooks/webhook-events-and-payloads#issue_dependencies
"""

from __future__ import annotations

from datetime import UTC, datetime

from gidgethub import routing, sansio

from reactor.core.events import Event, change_from_event
from reactor.shell.context import Context
from reactor.shell.intake import Intake
from reactor.store import memory

router = routing.Router()


@router.register("issue_dependencies", action="blocked_by_added")
@router.register("issue_dependencies", action="blocked_by_removed")
async def judge_link(raw: sansio.Event, event: Event, ctx: Context, intake: Intake) -> None:
    """Remember the link, then let the blocked issue's competition judge it."""
    change = change_from_event(event, now=datetime.now(UTC))
    if change is None or event.repo is None or event.installation_id is None \
            or change.other is None:
        await intake.observe(event, detail="a link to another repository")
        return
    await memory.record_dependency(ctx.redis, event.repo.id, change.issue, change.other,
                                   added=event.action == "blocked_by_added")
    await intake.judge(event, change)


@router.register("issue_dependencies")
async def observe(raw: sansio.Event, event: Event, ctx: Context, intake: Intake) -> None:
    """The ``blocking_*`` twin of a link, audited only."""
    if event.action not in ("blocked_by_added", "blocked_by_removed"):
        await intake.observe(event, detail="the blocking side of a link")
