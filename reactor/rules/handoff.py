"""R9 hand-off: when stage k of a competition is accepted into ``completed``, stage k+1 starts.

The next stage's issue is the lowest-numbered open issue of (competition, next stage) — one
the reactor created first. If it reads ``idle`` (and the reactor remembers it idle) it gets
``status:starting``; any other status is left alone and audited. If there is none, a
:class:`~reactor.actions.CreateIssue` makes it, born in ``starting``, titled
``[<comp>] <next>: <task>`` with the task taken from the completed issue's title, carrying
its ``priority:`` labels, and keyed ``<repo>:<comp>:<next>`` so it is created at most once.
With ``repository_dispatch`` configured a Dispatch follows; the label is always written,
because it is the state the lifecycle and the order rule read.

The hand-off itself must respect R2: if an earlier stage has meanwhile left ``completed``,
nothing starts and the reason is audited. Completing the last stage only notes that the
competition is done.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from reactor import comments
from reactor.actions import Action, AddLabel, CreateIssue, Dispatch, Note, RemoveLabel, Rule
from reactor.config import DispatchMode
from reactor.labels import LabelKind, Status, agent_label, comp_label
from reactor.markers import creation_marker, creation_ref
from reactor.rules._base import Situation
from reactor.rules.order import blocker
from reactor.view import Change, IssueSnapshot

_TITLE = re.compile(r"^\s*\[[^\]]*\]\s*[^\s:]+\s*:\s*(?P<task>.*)$", re.DOTALL)
EVENT_TYPE = "reactor.handoff"


@dataclass
class HandOff:
    """What one completion asks for."""

    actions: list[Action] = field(default_factory=list)
    accepted: dict[int, Status] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)


def task_of(title: str) -> str:
    """The task part of ``[<comp>] <stage>: <task>``, or the whole title without a prefix."""
    match = _TITLE.match(title)
    return (match.group("task") if match else title).strip()


def creation_key(repo: str, comp: str, stage: str) -> str:
    return f"{repo}:{comp}:{stage}"


@dataclass(frozen=True, slots=True)
class Move:
    """One hand-off: ``issue`` (stage ``done``) completed; stage ``next`` of ``comp`` starts."""

    issue: IssueSnapshot
    comp: str
    done: str
    next: str
    culprit: Change

    @property
    def reason(self) -> str:
        return f"hand-off from #{self.issue.number} ({self.done}) to {self.next}"


def hand_off(issue: IssueSnapshot, culprit: Change, sit: Situation,
             decided: Mapping[int, Status], closing: frozenset[int]) -> HandOff:
    """The actions that start the stage after ``issue``, which was just accepted completed."""
    result = HandOff()
    comp, stage = sit.comp_of(issue), sit.stage_of(issue)
    index = sit.config.stage_index(stage)
    if comp is None or stage is None or index is None:
        result.notes.append(Note(Rule.R9, issue.number, "completed outside a known "
                                 "competition or stage: no hand-off"))
        return result
    if index == len(sit.config.stages) - 1:
        result.notes.append(Note(Rule.R9, issue.number, f"competition {comp} done"))
        return result
    move = Move(issue, comp, stage, sit.config.stages[index + 1], culprit)
    blocked = blocker(comp, move.next, sit, decided)
    if blocked is not None:
        reason = f"no hand-off to {move.next}: {blocked.describe(comp)}"
        result.notes.append(Note(Rule.R9, issue.number, reason))
        return result
    target = _target(move, sit, closing)
    if target is None:
        result.actions.extend(_create(move, sit))
    else:
        _start(result, move, target, sit, decided)
    if DispatchMode.REPOSITORY_DISPATCH in sit.config.dispatch:
        result.actions.append(_dispatch(move, target))
    return result


def _target(move: Move, sit: Situation, closing: frozenset[int]) -> IssueSnapshot | None:
    """The oldest open issue of the next stage; one the reactor created comes first."""
    candidates = [i for i in sit.in_stage(move.comp, move.next)
                  if i.is_open and i.number not in closing]
    return min(candidates, key=lambda i: (not sit.view.created_by_reactor(i.number), i.number),
               default=None)


def _start(result: HandOff, move: Move, target: IssueSnapshot, sit: Situation,
           decided: Mapping[int, Status]) -> None:
    remembered = decided.get(target.number) or sit.view.accepted_status(target.number)
    if target.status is not Status.IDLE or remembered is not Status.IDLE:
        status = target.status or "ambiguous"
        result.notes.append(Note(Rule.R9, target.number, f"{move.reason}: "
                                 f"#{target.number} is `{status}`, not idle; left alone"))
        return
    for name in target.tags.names(LabelKind.STATUS, Status.IDLE.value):
        result.actions.append(RemoveLabel(target.number, name, Rule.R9, move.reason))
    result.actions.append(AddLabel(target.number, Status.STARTING.label, Rule.R9, move.reason))
    result.actions.append(comments.handoff(
        issue=target.number, completed=move.issue.number, stage=move.done,
        target=f"#{target.number} ({move.next})", key=move.culprit.delivery_id))
    result.accepted[target.number] = Status.STARTING


def _create(move: Move, sit: Situation) -> list[Action]:
    number = move.issue.number
    key = creation_key(sit.view.repo, move.comp, move.next)
    task = task_of(move.issue.title) or f"continue #{number}"
    priorities = tuple(item.name for item in move.issue.tags.of(LabelKind.PRIORITY))
    body = (f"Hand-off from #{number}: the {move.done} stage of competition {move.comp} "
            f"completed.\n\nTask: {task}\n\n{creation_marker(key)}")
    labels = (agent_label(move.next), comp_label(move.comp), *priorities,
              Status.STARTING.label)
    create = CreateIssue(title=f"[{move.comp}] {move.next}: {task}", body=body, labels=labels,
                         key=key, status=Status.STARTING, rule=Rule.R9,
                         reason=f"{move.reason}: no open {move.next} issue")
    comment = comments.handoff(issue=number, completed=number, stage=move.done,
                               target=f"{creation_ref(key)} (a new {move.next} issue)",
                               key=move.culprit.delivery_id)
    return [create, comment]


def _dispatch(move: Move, target: IssueSnapshot | None) -> Dispatch:
    """``client_payload``: comp, stage, from_stage, from_issue, and issue once it exists."""
    payload: tuple[tuple[str, str | int], ...] = (
        ("comp", move.comp), ("stage", move.next), ("from_stage", move.done),
        ("from_issue", move.issue.number))
    if target is not None:
        payload += (("issue", target.number),)
    return Dispatch(EVENT_TYPE, payload, Rule.R9, move.reason)
