"""``issues`` events: the agents' status, stage and competition changes land here.

Each change goes to its competition's turn (:mod:`reactor.shell.turn`), where the rules R1–R9
decide on a fresh read of the whole competition. A comment on an agent issue goes there too,
to be counted against its author's budget (R11).
https://docs.github.com/en/webhooks/webhook-events-and-payloads#issues
https://docs.github.com/en/webhooks/webhook-events-and-payloads#issue_comment
"""

from __future__ import annotations

from datetime import UTC, datetime

from gidgethub import routing, sansio

from reactor.core.events import Event, change_from_event
from reactor.core.labels import LabelKind, parse_label
from reactor.shell.context import Context
from reactor.shell.intake import Intake

router = routing.Router()

ACTIONS = (
    "opened", "edited", "labeled", "unlabeled", "closed", "reopened", "transferred", "deleted",
)


# Labels whose presence makes an issue the rules' business.
_RULED = frozenset({LabelKind.AGENT, LabelKind.COMP, LabelKind.STATUS, LabelKind.REACTOR})


def concerns_the_rules(event: Event) -> bool:
    """Whether the issue or the changed label is an agent, competition or status matter.

    An issue that never carried such a label needs nothing, so it costs no GitHub call
    (SPEC §7). A stale payload cannot hide one: the webhook of the change that added the
    label names it.
    """
    names = (*event.issue_labels, *((event.label,) if event.label else ()))
    return any(parse_label(name).kind in _RULED for name in names)


async def to_the_turn(raw: sansio.Event, event: Event, ctx: Context, intake: Intake) -> None:
    """Hand the change to its competition's turn (or only audit it when nothing is at stake)."""
    change = change_from_event(event, now=datetime.now(UTC))
    if change is None or event.repo is None or event.installation_id is None:
        await intake.observe(event, detail="no repository or installation to act on")
    elif not concerns_the_rules(event):
        await intake.observe(event, detail="not an agent or competition issue")
    else:
        await intake.judge(event, change)


async def a_comment(raw: sansio.Event, event: Event, ctx: Context, intake: Intake) -> None:
    """Count a comment on an agent issue against its author (R11); audit any other."""
    if event.repo is None or event.installation_id is None or event.sender is None:
        await intake.observe(event, detail="no repository or installation to act on")
    elif not concerns_the_rules(event):
        await intake.observe(event, detail="not an agent or competition issue")
    else:
        await intake.comment(event)


for _action in ACTIONS:
    router.add(to_the_turn, "issues", action=_action)
router.add(a_comment, "issue_comment", action="created")
