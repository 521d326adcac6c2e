"""Performs a Decision's actions on GitHub, one delta at a time, under the competition's lease.

GitHub has no conditional writes (no ``If-Match`` on issues), so the applier comes as close
as GitHub allows (SPEC §6): the lease's fencing check runs before every write; before the
first write to an issue, the issue is read again and compared with the snapshot the decision
was taken on — its state and the labels a rule reads: an agent touching an unrelated label
cannot hold a decision off (:class:`Conflict` when they changed, and the caller decides
again); writes add or remove one label and never replace the set; removing a label that is
already gone (404) counts as done. Each label write is recorded as expected first, so its
webhook echo is known as the reactor's own (R10). A comment is posted only by whoever claims
its marker first, so retries and replays never post it twice; an issue is created at most
once per key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from urllib.parse import quote

import redis.asyncio
from gidgethub.abc import GitHubAPI
from redis.asyncio import Redis as AsyncRedis

from reactor.core.actions import (
    Action,
    AddLabel,
    AddSubIssue,
    CloseIssue,
    Comment,
    CreateIssue,
    Decision,
    Dispatch,
    Escalate,
    LinkBlockedBy,
    RemoveLabel,
    ReopenIssue,
)
from reactor.core.errors import Conflict, GitHubError, is_transient
from reactor.core.labels import LabelKind, ReactorLabel, parse_label
from reactor.core.markers import creation_ref
from reactor.core.view import CompetitionView, Repo
from reactor.shell import crashpoints, handoffs, reads
from reactor.shell.crashpoints import Point
from reactor.shell.reads import one_issue
from reactor.shell.saga import Journal
from reactor.store import memory
from reactor.store.locks import Lease
from reactor.store.memory import MarkerClaim

log = logging.getLogger(__name__)


@dataclass
class Applier:
    """Applies one decision taken on ``view``; collects the issues it created."""

    gh: GitHubAPI
    redis: redis.asyncio.Redis
    repo: Repo
    lease: Lease
    view: CompetitionView
    maintainers: frozenset[str] = frozenset()
    created: dict[str, int] = field(default_factory=dict)  # creation key -> issue number
    failed: set[int] = field(default_factory=set)  # issues a failed hand-off meant to start
    unsafe: frozenset[str] = frozenset()  # safety mechanisms switched off (Settings)
    _checked: set[int] = field(default_factory=set)
    # the hand-off's "blocked by" link (the step before its comment), and whether GitHub has
    # it: None when not known here (refused, or made by a worker before this one resumed)
    _last_link: LinkBlockedBy | None = None
    _linked: bool | None = None
    # the labels (casefolded) on each issue read fresh, as the App's writes since left them
    _labels: dict[int, frozenset[str]] = field(default_factory=dict)

    async def apply(self, decision: Decision) -> None:
        """Every action in order; the hand-offs among them as sagas (reactor.shell.handoffs)."""
        in_sagas = {id(step) for saga in decision.sagas for step in saga.steps}
        for action in decision.actions:
            if id(action) not in in_sagas:
                await self.step(action)
        for saga in decision.sagas:
            await handoffs.carry_out(self, saga)

    async def resume(self, journal: Journal) -> None:
        """Finish a hand-off a worker began and did not finish."""
        done = journal.saga.steps[:journal.done]
        self._last_link = next((s for s in reversed(done) if isinstance(s, LinkBlockedBy)), None)
        self._linked = None
        await handoffs.resume(self, journal)

    async def step(self, action: Action) -> None:
        """One write: its precondition read, the lease check, then the write."""
        await self._precondition(action)
        await self.lease.check()
        await self.perform(action)

    async def _precondition(self, action: Action) -> None:
        """Read the issue again before the first write that depends on its labels or state."""
        if isinstance(action, Comment | CreateIssue | Dispatch | LinkBlockedBy | AddSubIssue):
            return
        seen = self.view.issue(action.issue)
        if seen is None or action.issue in self._checked or "fresh" in self.unsafe:
            return
        fresh = await one_issue(self.gh, self.repo, action.issue)
        if fresh is None or fresh.ruled_labels != seen.ruled_labels or fresh.state != seen.state:
            raise Conflict(action.issue)
        self._checked.add(action.issue)
        self._labels[action.issue] = frozenset(n.casefold() for n in fresh.ruled_labels)

    async def perform(self, action: Action) -> None:
        match action:
            case AddLabel(issue=number, label=label):
                await self._add_label(number, label)
            case Escalate(issue=number):
                await self._add_label(number, ReactorLabel.NEEDS_HUMAN.value)
            case RemoveLabel(issue=number, label=label):
                await self._remove_label(number, label)
            case Comment():
                await self._comment(action)
            case CreateIssue():
                await self._create(action)
            case CloseIssue():
                await self._close(action)
            case ReopenIssue(issue=number):
                await memory.expect(self.redis, self.repo.id, number, "reopened")
                await self.gh.patch(f"/repos/{self.repo.full_name}/issues/{number}",
                                    data={"state": "open"})
            case Dispatch():
                await self.gh.post(f"/repos/{self.repo.full_name}/dispatches", data={
                    "event_type": action.event_type, "client_payload": action.payload(),
                })
            case LinkBlockedBy():
                await self._link(action)
            case AddSubIssue():
                await self._nest(action)

    async def _link(self, action: LinkBlockedBy) -> None:
        """Link the issue "blocked by" the completed one. The link only shows the chain, so
        GitHub refusing it (it exists already, a limit, dependencies switched off) is logged
        and the hand-off goes on; what may succeed later is raised, like any write."""
        self._last_link, self._linked = action, None
        number = action.issue or self.created.get(action.key)
        if not number:
            self._linked = False
            return
        await memory.expect(self.redis, self.repo.id, number, "blocked_by_added")
        try:
            await self.gh.post(
                f"/repos/{self.repo.full_name}/issues/{number}/dependencies/blocked_by",
                data={"issue_id": action.blocking_id})
        except GitHubError as exc:
            if is_transient(exc):
                raise
            log.info("#%d not linked blocked by #%d: %s", number, action.blocking, exc)
            return  # it may exist already (an earlier attempt's write answered 5xx)
        await memory.record_dependency(self.redis, self.repo.id, number, action.blocking,
                                       added=True)
        self._linked = True

    async def _shown_by_link(self) -> bool:
        """Whether GitHub has the hand-off's link, so its comment would only repeat it: known
        from the write, else read (once) — a retried write refused because the first one,
        answered 5xx, was made; a link made by a worker that died before the comment."""
        link = self._last_link
        if self._linked is None and link is not None:
            number = link.issue or self.created.get(link.key)
            self._linked = bool(number) and link.blocking in await reads.blocked_by(
                self.gh, self.repo, number or 0)
        return bool(self._linked)

    async def _nest(self, action: AddSubIssue) -> None:
        """Make the stage a sub-issue of its competition's parent issue. Like the link, it only
        shows the chain: GitHub refusing it (a limit of sub-issues, a parent elsewhere) is
        logged and the decision goes on; what may succeed later is raised."""
        parent = action.parent or self.created.get(action.parent_key)
        sub = action.sub or self.created.get(action.sub_key)
        if not parent or not sub:
            return
        sub_id = action.sub_id or await self._id_of(sub)
        if not sub_id:
            return
        await memory.expect(self.redis, self.repo.id, sub, "sub_issue_added")
        try:
            await self.gh.post(f"/repos/{self.repo.full_name}/issues/{parent}/sub_issues",
                               data={"sub_issue_id": sub_id, "replace_parent": action.replace})
        except GitHubError as exc:
            if is_transient(exc):
                raise
            log.info("#%d not made a sub-issue of #%d: %s", sub, parent, exc)

    async def _id_of(self, number: int) -> int | None:
        """The GitHub id of an issue this decision created (the API names sub-issues by id)."""
        seen = self.view.issue(number) or await one_issue(self.gh, self.repo, number)
        return seen.id if seen is not None else None

    async def _add_label(self, number: int, label: str) -> None:
        await memory.expect(self.redis, self.repo.id, number, f"labeled:{label.casefold()}")
        await self._write_label(number, label, "labeled")

    async def _remove_label(self, number: int, label: str) -> None:
        await memory.expect(self.redis, self.repo.id, number, f"unlabeled:{label.casefold()}")
        await self._write_label(number, label, "unlabeled")

    async def _write_label(self, number: int, label: str, action: str, *,
                           again: bool = True) -> None:
        path = f"/repos/{self.repo.full_name}/issues/{number}/labels"
        since = datetime.now(UTC)
        try:
            if action == "labeled":
                await self.gh.post(path, data={"labels": [label]})
            else:
                await self.gh.delete(f"{path}/{quote(label, safe='')}")
        except GitHubError as exc:
            if not (action == "unlabeled" and exc.status == 404):  # gone: the delta is done
                await self._unsure(exc, number, label, action, since, again=again)
                return
        self._left(number, label, action)

    def _left(self, number: int, label: str, action: str) -> None:
        """Track the labels (those a rule reads) the App's writes left on an issue it read
        fresh."""
        if number in self._labels and parse_label(label).kind is not LabelKind.OTHER:
            folded = label.casefold()
            self._labels[number] = (self._labels[number] | {folded} if action == "labeled"
                                    else self._labels[number] - {folded})

    async def _unsure(self, exc: GitHubError, number: int, label: str, action: str,
                      since: datetime, *, again: bool) -> None:
        """A label write answered 5xx: done if the issue's timeline shows it (made since the
        write began, even if an agent moved on from it at once). Otherwise it
        is written once more if the issue still shows exactly what the App's own writes
        left (a revert half made must not stand as the agent's move); if anything else
        changed, the issue is decided on again from a fresh read (never written blindly: an
        agent may have moved on, and a repeat would undo its move)."""
        if not is_transient(exc):
            raise exc
        if await reads.label_written(self.gh, self.repo, number, label, action,
                                     author=self.view.app_login, since=since):
            self._left(number, label, action)
            return
        if again and number in self._labels:
            fresh = await one_issue(self.gh, self.repo, number)
            if fresh is not None and \
                    {n.casefold() for n in fresh.ruled_labels} == self._labels[number]:
                await self._write_label(number, label, action, again=False)
                return
        raise Conflict(number) from exc

    async def _comment(self, action: Comment) -> None:
        if action.unless_linked and await self._shown_by_link():
            return
        body = action.body
        for key, number in self.created.items():
            body = body.replace(creation_ref(key), f"#{number}")
        await self.post(self.gh, self.redis, self.repo, replace(action, body=body),
                        author=self.view.app_login)

    @staticmethod
    async def post(gh: GitHubAPI, client: AsyncRedis, repo: Repo,
                   comment: Comment, *, author: str) -> None:
        """Post ``comment`` unless it was posted before (retries, replays). GitHub sometimes
        answers 5xx after it wrote: then the comment (by ``author``, the App's bot) is looked
        for before the claim is given up, so a retry never posts it twice. A claim never
        confirmed (its worker killed between the claim and the ``POST``) is checked the same
        way, and the comment posted when it is not there."""
        claim = await memory.claim_marker(client, comment.marker)
        if claim is MarkerClaim.CLAIMED:
            crashpoints.reached(Point.AFTER_CLAIM)
        if claim is MarkerClaim.POSTED:
            return
        if claim is MarkerClaim.UNCONFIRMED and await reads.has_comment(
                gh, repo, comment.issue, comment.marker, author=author):
            await memory.confirm_marker(client, comment.marker)
            return
        try:
            await gh.post(f"/repos/{repo.full_name}/issues/{comment.issue}/comments",
                          data={"body": comment.body})
        except GitHubError as exc:
            if is_transient(exc) and await _written_anyway(gh, repo, comment, author):
                await memory.confirm_marker(client, comment.marker)
                return
            await memory.release_marker(client, comment.marker)
            raise
        except BaseException:
            await memory.release_marker(client, comment.marker)
            raise
        await memory.confirm_marker(client, comment.marker)

    async def _create(self, action: CreateIssue) -> None:
        claim = await memory.begin_creation(self.redis, self.repo.id, action.key)
        if claim.number is not None and await self._still_there(claim.number, action.key):
            self.created[action.key] = claim.number
            return
        adopted = next((i.number for i in self.view.issues if i.creation_key == action.key
                        and self.view.created_by_reactor(i.number)), None)
        if adopted is None and not claim.claimed:  # an earlier attempt may have written it
            adopted = await reads.find_created(self.gh, self.repo, action.labels[:1], action.key,
                                                author=self.view.app_login)
        if adopted is None:
            adopted = await self._post_issue(action)
        await memory.finish_creation(self.redis, self.repo.id, action.key, adopted)
        self.created[action.key] = adopted

    async def _post_issue(self, action: CreateIssue) -> int:
        """Create the issue. On a 5xx the claim stays pending (GitHub may have created it:
        the retry looks for it first); on a refusal it is given up."""
        # Its echoes (opened, one labeled per label) are the reactor's own (R10).
        await memory.expect(self.redis, self.repo.id, f"create:{action.key}", "opened",
                            *(f"labeled:{name.casefold()}" for name in action.labels))
        try:
            item = await self.gh.post(f"/repos/{self.repo.full_name}/issues", data={
                "title": action.title, "body": action.body, "labels": list(action.labels),
            })
        except GitHubError as exc:
            if not is_transient(exc):
                await memory.abandon_creation(self.redis, self.repo.id, action.key)
            raise
        return int(item["number"])

    async def _still_there(self, number: int, key: str) -> bool:
        """The issue once created for ``key`` still exists here (not deleted or moved away)."""
        if self.view.issue(number) is not None:
            return True
        if await one_issue(self.gh, self.repo, number) is not None:
            return True
        await memory.abandon_creation(self.redis, self.repo.id, key)
        await memory.begin_creation(self.redis, self.repo.id, key)
        return False

    async def _close(self, action: CloseIssue) -> None:
        await memory.expect(self.redis, self.repo.id, action.issue, "closed")
        data: dict[str, object] = {"state": "closed", "state_reason": action.state_reason.value}
        if action.duplicate_issue_id is not None:
            data["duplicate_issue_id"] = action.duplicate_issue_id
        await self.gh.patch(f"/repos/{self.repo.full_name}/issues/{action.issue}", data=data)



async def _written_anyway(gh: GitHubAPI, repo: Repo, comment: Comment, author: str) -> bool:
    try:
        return await reads.has_comment(gh, repo, comment.issue, comment.marker, author=author)
    except GitHubError:
        return False


__all__ = ["Applier", "Conflict"]
