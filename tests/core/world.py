"""The one fixture module of the core tests: plain-data builders and a tiny GitHub.

``apply`` performs a decision on a view the way the shell's applier would (label deltas,
closes, creations, memory), and returns the echoes GitHub would send back as the App (the
shell recognises them as the reactor's own and never passes them to the rules, R10).
``settles`` checks the no-ping-pong property: after applying a decision, evaluating the
original changes again asks for nothing more.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from reactor.core.actions import (
    AddLabel,
    CloseIssue,
    CreateIssue,
    Decision,
    Escalate,
    RemoveLabel,
)
from reactor.core.config import DEFAULT_CONFIG, RepoConfig
from reactor.core.labels import ReactorLabel, Status
from reactor.core.rules import evaluate
from reactor.core.view import Actor, Change, ChangeKind, CompetitionView, IssueSnapshot, IssueState

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
APP = "issue-safety-reactor[bot]"
REPO = "acme/lab"
COMP = "titanic"
K = ChangeKind


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def actor(login: str) -> Actor:
    kind = "Bot" if login.endswith("[bot]") else "User"
    return Actor(login=login, id=zlib.crc32(login.encode()), type=kind)


def issue(number: int, *labels: str, title: str = "", state: str = "open",
          reason: str | None = None, author: str = "octocat", body: str = "") -> IssueSnapshot:
    return IssueSnapshot(
        number=number, id=1000 + number, title=title or f"task {number}", body=body,
        state=IssueState(state), state_reason=reason, labels=frozenset(labels),
        author=author, created_at=T0)


def agent(number: int, stage: str, status: str | None = None, *extra: str,
          comp: str = COMP, **kw: object) -> IssueSnapshot:
    """An agent issue of ``comp``; ``status`` None = no status label (idle)."""
    labels = [f"agent:{stage}", f"comp:{comp}", *extra]
    if status is not None:
        labels.append(f"status:{status}")
    return issue(number, *labels, **kw)  # type: ignore[arg-type]


def change(kind: ChangeKind, number: int, label: str | None = None, *, by: str = "octocat",
           t: float = 0, delivery: str | None = None) -> Change:
    guid = delivery or f"d-{kind}-{number}-{label or ''}-{t}"
    return Change(kind, number, actor(by), guid, at(t), label)


def view(*issues: IssueSnapshot, accepted: Mapping[int, str] | None = None,
         reverts: Mapping[int, int] | None = None, comp: str | None = COMP,
         created: Iterable[int] = (), competitions: Mapping[int, str] | None = None,
         stages: Mapping[int, str] | None = None) -> CompetitionView:
    memory = {n: Status(s) for n, s in (accepted or {}).items()}
    return CompetitionView(
        repo=REPO, comp=comp, issues=tuple(issues), accepted=MappingProxyType(memory),
        reverts=MappingProxyType(dict(reverts or {})), created=frozenset(created),
        competitions=MappingProxyType(dict(competitions or {})),
        stages=MappingProxyType(dict(stages or {})), app_login=APP)


def run(changes: Sequence[Change], state: CompetitionView, config: RepoConfig = DEFAULT_CONFIG,
        *, now: float = 60) -> Decision:
    return evaluate(changes, state, config, now=at(now))


def of_type(decision: Decision, kind: type) -> list:  # type: ignore[type-arg]
    return [a for a in decision.actions if isinstance(a, kind)]


def apply(decision: Decision, state: CompetitionView, *,
          t: float = 30) -> tuple[CompetitionView, list[Change]]:
    """Perform ``decision`` on ``state``; return the new state and the App's echoes."""
    issues = {i.number: i for i in state.issues}
    accepted = {**state.accepted, **decision.accepted}
    echoes: list[Change] = []

    def relabel(number: int, labels: frozenset[str], kind: ChangeKind, name: str) -> None:
        issues[number] = dataclasses.replace(issues[number], labels=labels)
        echoes.append(change(kind, number, name, by=APP, t=t))

    for action in decision.actions:
        if isinstance(action, AddLabel):
            relabel(action.issue, issues[action.issue].labels | {action.label}, K.LABELED,
                    action.label)
        elif isinstance(action, RemoveLabel):
            relabel(action.issue, issues[action.issue].labels - {action.label}, K.UNLABELED,
                    action.label)
        elif isinstance(action, Escalate):
            name = ReactorLabel.NEEDS_HUMAN.value
            relabel(action.issue, issues[action.issue].labels | {name}, K.LABELED, name)
        elif isinstance(action, CloseIssue):
            issues[action.issue] = dataclasses.replace(
                issues[action.issue], state=IssueState.CLOSED, state_reason=action.state_reason)
            echoes.append(change(K.CLOSED, action.issue, by=APP, t=t))
        elif isinstance(action, CreateIssue):
            number = max(issues) + 1
            issues[number] = issue(number, *action.labels, title=action.title, body=action.body,
                                   author=APP)
            accepted[number] = action.status
            echoes.append(change(K.OPENED, number, by=APP, t=t))
    reverts = dict(state.reverts)
    for number in decision.reverted:
        reverts[number] = reverts.get(number, 0) + 1
    for number in decision.handed_back:
        reverts.pop(number, None)
    new = dataclasses.replace(
        state, issues=tuple(issues[n] for n in sorted(issues)),
        accepted=MappingProxyType(accepted), reverts=MappingProxyType(reverts),
        competitions=MappingProxyType({n: i.comp for n, i in decision.identities.items()}),
        stages=MappingProxyType({n: i.stage for n, i in decision.identities.items()}))
    return new, echoes


def settles(changes: Sequence[Change], state: CompetitionView,
            config: RepoConfig = DEFAULT_CONFIG, *, now: float = 60) -> Decision:
    """Evaluate, apply, evaluate again (a replay): the second pass must be empty."""
    first = run(changes, state, config, now=now)
    after, _ = apply(first, state)
    second = run(changes, after, config, now=now + 1)
    assert second.actions == (), f"ping-pong: {second.actions}"
    assert first.settle_until is None and second.settle_until is None
    return first
