"""Webhook payloads, shaped as in GitHub's webhook schemas (``@octokit/openapi-webhooks``).

Every repository event carries the same envelope: ``repository``, ``installation``
(``{"id", "node_id"}``), ``organization`` for an organization's repository, and ``sender``,
the account that made the change (https://docs.github.com/webhooks/webhook-events-and-payloads).
:class:`Emitter` binds a view and the hub so route code says only what changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ghsandbox.model import Comment, Installation, Issue, Label, Repo
from ghsandbox.render import Json, node_id
from ghsandbox.view import View
from ghsandbox.webhooks import Hub


@dataclass(frozen=True)
class Emitter:
    """Sends the webhooks for changes made by ``sender`` through ``view``.

    With ``held`` (one API request's emitter), webhooks wait for :meth:`flush` at the end of
    the request, and an ``issues`` one then shows the issue as the request left it, as
    GitHub's do: the webhooks of one request that adds several labels all show every label.
    """

    view: View
    hub: Hub
    sender: str
    held: list[tuple[str, Callable[[], Json]]] | None = None

    def _emit(self, event: str, payload: Callable[[], Json]) -> None:
        """Send now, or hold until :meth:`flush` (then ``payload`` is built at flush)."""
        if self.held is not None:
            self.held.append((event, payload))
        else:
            self.hub.emit(event, payload())

    def flush(self) -> None:
        """Send the held webhooks in order; an ``issues`` one shows the issue as it is now."""
        while self.held:
            event, payload = self.held.pop(0)
            self.hub.emit(event, payload())

    def envelope(self, repo: Repo, **fields: Any) -> Json:
        """The common part of a repository event, plus ``fields``."""
        payload: Json = dict(fields)
        payload["repository"] = self.view.repository(repo)
        organization = self.view.organization(repo)
        if organization is not None:
            payload["organization"] = organization
        payload["sender"] = self.view.user(self.sender)
        payload["installation"] = {
            "id": repo.installation_id,
            "node_id": node_id("MDIz", repo.installation_id),
        }
        return payload

    def issue(self, repo: Repo, issue: Issue, action: str, **fields: Any) -> None:
        """``issues`` with ``action`` (opened, edited, closed, reopened, labeled, unlabeled)."""
        self._emit("issues", lambda: self.envelope(
            repo, action=action, issue=self.view.issue(repo, issue), **fields))

    def issue_label(self, repo: Repo, issue: Issue, label: Label, action: str) -> None:
        self.issue(repo, issue, action, label=self.view.label(repo, label))

    def comment(
        self, repo: Repo, issue: Issue, comment: Comment, action: str, **fields: Any
    ) -> None:
        """``issue_comment`` created, edited or deleted."""
        payload = self.envelope(
            repo,
            action=action,
            issue=self.view.issue(repo, issue),
            comment=self.view.comment(repo, comment),
            **fields,
        )
        self._emit("issue_comment", lambda: payload)

    def label(self, repo: Repo, label: Label, action: str, **fields: Any) -> None:
        """``label`` created, edited or deleted."""
        payload = self.envelope(repo, action=action, label=self.view.label(repo, label), **fields)
        self._emit("label", lambda: payload)

    def dependency(
        self, blocked: tuple[Repo, Issue], blocking: tuple[Repo, Issue], added: bool
    ) -> None:
        """``issue_dependencies``: ``blocked_by_*`` to the blocked issue's repository and
        ``blocking_*`` to the blocking issue's repository, as GitHub sends both."""
        suffix = "added" if added else "removed"
        (blocked_repo, blocked_issue), (blocking_repo, blocking_issue) = blocked, blocking
        common = {
            "blocked_issue_id": blocked_issue.id,
            "blocked_issue": self.view.issue(*blocked),
            "blocking_issue_id": blocking_issue.id,
            "blocking_issue": self.view.issue(*blocking),
        }
        blocked_by = self.envelope(
            blocked_repo, action=f"blocked_by_{suffix}", **common,
            blocking_issue_repo=self.view.repository(blocking_repo))
        blocking_payload = self.envelope(
            blocking_repo, action=f"blocking_{suffix}", **common,
            blocked_issue_repo=self.view.repository(blocked_repo))
        self._emit("issue_dependencies", lambda: blocked_by)
        self._emit("issue_dependencies", lambda: blocking_payload)

    def sub_issue(
        self, parent: tuple[Repo, Issue], sub: tuple[Repo, Issue], added: bool
    ) -> None:
        """``sub_issues``: ``sub_issue_*`` to the parent's repository and ``parent_issue_*``
        to the sub-issue's, each naming the other side's repository, as GitHub sends both."""
        suffix = "added" if added else "removed"
        (parent_repo, parent_issue), (sub_repo, sub_issue) = parent, sub
        parent_fields = {"parent_issue_id": parent_issue.id,
                         "parent_issue": self.view.issue(*parent)}
        sub_fields = {"sub_issue_id": sub_issue.id, "sub_issue": self.view.issue(*sub)}
        on_parent = self.envelope(
            parent_repo, action=f"sub_issue_{suffix}", **sub_fields,
            sub_issue_repo=self.view.repository(sub_repo), **parent_fields)
        on_sub = self.envelope(
            sub_repo, action=f"parent_issue_{suffix}", **parent_fields,
            parent_issue_repo=self.view.repository(parent_repo), **sub_fields)
        self._emit("sub_issues", lambda: on_parent)
        self._emit("sub_issues", lambda: on_sub)

    def dispatch(self, repo: Repo, event_type: str, client_payload: Json | None) -> None:
        """``repository_dispatch``: the action is the caller's ``event_type``."""
        payload = self.envelope(repo, action=event_type, branch=repo.default_branch,
                                client_payload=client_payload)
        self._emit("repository_dispatch", lambda: payload)

    def installation(self, inst: Installation, repo: Repo, *, created: bool) -> None:
        """``installation`` created, or ``installation_repositories`` added for a later repo."""
        short = {
            "id": repo.id,
            "node_id": node_id("R", repo.id),
            "name": repo.name,
            "full_name": repo.full_name,
            "private": True,
        }
        payload: Json = {
            "installation": self.view.installation(inst),
            "sender": self.view.user(self.sender),
        }
        organization = self.view.organization(repo)
        if organization is not None:
            payload["organization"] = organization
        if created:
            self.hub.emit(
                "installation",
                {"action": "created", "repositories": [short], "requester": None, **payload},
            )
        else:
            self.hub.emit(
                "installation_repositories",
                {
                    "action": "added",
                    "repository_selection": "selected",
                    "repositories_added": [short],
                    "repositories_removed": [],
                    "requester": None,
                    **payload,
                },
            )
