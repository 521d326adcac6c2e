"""R9 hand-off: when stage k of a competition is accepted into ``completed``, stage k+1 starts.

The next stage's issue is the lowest-numbered open issue of (competition, next stage) — one
the reactor created first — else, for a re-run, the one most recently closed as completed,
which is reopened. It moves to ``status:starting`` from ``idle``, ``error`` or ``timeout``,
and from ``completed`` through ``idle`` (the lifecycle's way back, so a competition can run
again); one already ``starting`` or ``running`` is left as it is, and one the reactor cannot
start (``reactor:needs-human``, no single status) gets one comment on the completed issue
saying why. With no such issue, a :class:`~reactor.core.actions.CreateIssue` makes it, born in
``starting``, titled ``[<comp>] <next>: <task>`` (the task taken from the completed issue's
title, mentions defused, cut to GitHub's 256 characters), carrying its ``priority:`` labels
and keyed so it is created at most once (:func:`_creation_key`). With
``repository_dispatch`` configured a Dispatch follows; the label is always written, because
it is the state the lifecycle and the order rule read. With ``chain: [dependencies]`` (the
default) the started issue is linked "blocked by" the completed one in GitHub's own issue
dependencies (:class:`~reactor.core.actions.LinkBlockedBy`), so the chain shows in GitHub,
and the hand-off's comment is posted only if GitHub refuses the link (a hand-off costs a
create, or a label or two, and the link);
with ``sub_issues`` both are made sub-issues of the competition's parent issue
(:mod:`reactor.core.rules.parent`).

The hand-off itself must respect R2: if an earlier stage has meanwhile left ``completed``,
nothing starts and the reason is audited. Completing the last stage only notes that the
competition is done.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from reactor.core import comments
from reactor.core.actions import (
    Action,
    AddLabel,
    CloseIssue,
    CloseReason,
    Comment,
    CreateIssue,
    Dispatch,
    LinkBlockedBy,
    Note,
    RemoveLabel,
    ReopenIssue,
    Rule,
)
from reactor.core.config import Chain, DispatchMode
from reactor.core.labels import LabelKind, LabelSet, ReactorLabel, Status, agent_label, comp_label
from reactor.core.markers import creation_marker, creation_ref
from reactor.core.rules import parent
from reactor.core.rules._base import Situation
from reactor.core.rules.order import blocker
from reactor.core.view import Change, IssueSnapshot
from reactor.core.words import code, safe_title

_TITLE = re.compile(r"^\s*\[[^\]]*\]\s*[^\s:]+\s*:\s*(?P<task>.*)$", re.DOTALL)
EVENT_TYPE = "reactor.handoff"
MAX_TITLE = 256  # GitHub's limit on an issue title


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
             decided: Mapping[int, Status], closing: frozenset[int],
             shown: Mapping[int, frozenset[str]]) -> HandOff:
    """The actions that start the stage after ``issue``, which was just accepted completed.

    ``shown`` has the labels of issues this decision reverts, as they will be by then."""
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
        _start(result, move, target, sit, decided, shown.get(target.number, target.labels))
    if target is None or target.number in result.accepted:
        if Chain.DEPENDENCIES in sit.config.chain:
            _link_for_comment(result.actions, _link(move, target, sit))
        result.actions.extend(parent.nest(
            move.comp, move.issue, target, "" if target is not None else _creation_key(move, sit),
            move.reason, sit))
    if DispatchMode.REPOSITORY_DISPATCH in sit.config.dispatch:
        result.actions.append(_dispatch(move, target))
    return result


def _target(move: Move, sit: Situation, closing: frozenset[int]) -> IssueSnapshot | None:
    """The next stage's issue: the oldest open one (one the reactor created first), else the
    one closed as completed most recently — a re-run reopens it."""
    issues = [i for i in sit.in_stage(move.comp, move.next) if i.number not in closing]
    candidates = [i for i in issues if i.is_open]
    if candidates:
        return min(candidates,
                   key=lambda i: (not sit.view.created_by_reactor(i.number), i.number))
    done = [i for i in issues if i.closed_as_completed]
    return max(done, key=lambda i: i.number, default=None)


def _start(result: HandOff, move: Move, target: IssueSnapshot, sit: Situation,
           decided: Mapping[int, Status], labels: frozenset[str]) -> None:
    """``idle``, ``error``, ``timeout`` → ``starting``; ``completed`` → ``idle`` → ``starting``
    (a re-run, reopening the issue if it was closed). Where the target cannot be started,
    one comment on the completed issue says why. A ``starting`` the target shows but the
    reactor has not accepted (an agent's early start, still waiting to be judged) is taken
    off and put back by the App: the App's ``labeled`` event is the agent's signal."""
    status = decided.get(target.number) or sit.standing_status(target)
    if status in (Status.STARTING, Status.RUNNING):
        result.notes.append(Note(Rule.R9, target.number, f"{move.reason}: #{target.number} is "
                                 f"already `{status}`; left as it is"))
        return
    problem = _unstartable(target, status)
    if problem is not None:
        result.notes.append(Note(Rule.R9, target.number, f"{move.reason}: {problem}"))
        result.actions.append(comments.handoff_blocked(
            issue=move.issue.number, target=target.number, stage=move.next, problem=problem,
            key=move.culprit.delivery_id))
        return
    if not target.is_open:
        result.actions.append(ReopenIssue(target.number, Rule.R9, f"{move.reason}: a re-run"))
    for item in LabelSet.parse(labels).of(LabelKind.STATUS):
        result.actions.append(RemoveLabel(target.number, item.name, Rule.R9, move.reason))
    result.actions.append(AddLabel(target.number, Status.STARTING.label, Rule.R9, move.reason))
    result.actions.append(comments.handoff(
        issue=target.number, completed=move.issue.number, stage=move.done,
        target=f"#{target.number} ({move.next})", key=move.culprit.delivery_id,
        rerun=status is Status.COMPLETED))
    result.accepted[target.number] = Status.STARTING


def _unstartable(target: IssueSnapshot, status: Status | None) -> str | None:
    """Why the hand-off cannot move ``target`` to ``starting``, or None when it can."""
    if target.tags.has(LabelKind.REACTOR, "needs-human"):
        return (f"#{target.number} is labelled `reactor:needs-human`; a maintainer must hand "
                f"it back first")
    if status is None:
        return (f"#{target.number} shows no single known status, so the reactor cannot tell "
                f"where it stands; give it exactly one `status:` label")
    return None


def _create(move: Move, sit: Situation) -> list[Action]:
    number = move.issue.number
    key = _creation_key(move, sit)
    task = safe_title(task_of(move.issue.title)) or f"continue #{number}"
    priorities = tuple(item.name for item in move.issue.tags.of(LabelKind.PRIORITY))
    body = (f"Hand-off from #{number}: the {move.done} stage of competition "
            f"{code(move.comp)} completed.\n\nTask: {code(task)}\n\n{creation_marker(key)}")
    labels = (agent_label(move.next), comp_label(move.comp), *priorities,
              Status.STARTING.label)
    create = CreateIssue(title=issue_title(move.comp, move.next, task), body=body,
                         labels=labels, key=key, status=Status.STARTING, rule=Rule.R9,
                         reason=f"{move.reason}, in a new issue (none was open)")
    comment = comments.handoff(issue=number, completed=number, stage=move.done,
                               target=f"{creation_ref(key)} (a new {move.next} issue)",
                               key=move.culprit.delivery_id)
    return [create, comment]


def _creation_key(move: Move, sit: Situation) -> str:
    """``<repo>:<comp>:<stage>`` for a stage's first issue; once issues of the stage exist
    (all closed as not planned or duplicate, or deleted), the newest one's number joins the
    key, so a re-run creates a new issue exactly once rather than finding the old one."""
    base = creation_key(sit.view.repo, move.comp, move.next)
    earlier = sit.in_stage(move.comp, move.next)
    return f"{base}:{earlier[-1].number}" if earlier else base


def issue_title(comp: str, stage: str, task: str) -> str:
    """``[<comp>] <stage>: <task>``, the task shortened to fit GitHub's 256 characters."""
    head = f"[{comp}] {stage}: "
    room = MAX_TITLE - len(head)
    return head + (task if len(task) <= room else task[: max(room - 1, 0)].rstrip() + "…")


def _link(move: Move, target: IssueSnapshot | None, sit: Situation) -> LinkBlockedBy:
    """The next stage's issue "blocked by" the completed one, in GitHub's own dependencies:
    a person sees the chain in GitHub without the dashboard (``chain`` in the config)."""
    return LinkBlockedBy(
        issue=target.number if target is not None else 0,
        key="" if target is not None else _creation_key(move, sit),
        blocking=move.issue.number, blocking_id=move.issue.id, rule=Rule.R9,
        reason=f"{move.reason}: blocked by #{move.issue.number} in GitHub's dependencies")


def _link_for_comment(actions: list[Action], link: LinkBlockedBy) -> None:
    """The link goes just before the hand-off's comment, which is then posted only if GitHub
    refuses the link: GitHub shows "blocked by" on the started issue and "blocking" on the
    completed one, so the comment would only repeat it (and cost a call)."""
    at, comment = next(((i, a) for i, a in enumerate(actions) if isinstance(a, Comment)),
                       (len(actions), None))
    if comment is not None:
        actions[at] = replace(comment, unless_linked=True,
                              reason=f"{comment.reason}, if GitHub refuses the link")
    actions.insert(at, link)


def _dispatch(move: Move, target: IssueSnapshot | None) -> Dispatch:
    """``client_payload``: comp, stage, from_stage, from_issue, and issue once it exists."""
    payload: tuple[tuple[str, str | int], ...] = (
        ("comp", move.comp), ("stage", move.next), ("from_stage", move.done),
        ("from_issue", move.issue.number))
    if target is not None:
        payload += (("issue", target.number),)
    return Dispatch(EVENT_TYPE, payload, Rule.R9, move.reason)


def undo_steps(done: Sequence[Action], created: Mapping[str, int]) -> tuple[Action, ...]:
    """The compensation of a hand-off's ``done`` steps, in reverse order: labels put back as
    they were, a reopened issue closed again, a created stage's issue closed as not planned.
    Comments, dispatches, "blocked by" links, a competition's parent issue and its
    sub-issues stay (they say what happened)."""
    undo: list[Action] = []
    for step in reversed(done):
        reason = f"undo: {step.reason}"
        match step:
            case AddLabel(issue=number, label=label):
                undo.append(RemoveLabel(number, label, Rule.R9, reason))
            case RemoveLabel(issue=number, label=label):
                undo.append(AddLabel(number, label, Rule.R9, reason))
            case ReopenIssue(issue=number):
                undo.append(CloseIssue(number, CloseReason.COMPLETED, Rule.R9, reason))
            case CreateIssue(key=key, labels=labels) if key in created \
                    and ReactorLabel.COMPETITION.value not in labels:  # a parent stays
                undo.append(CloseIssue(created[key], CloseReason.NOT_PLANNED, Rule.R9, reason))
    return tuple(undo)
