"""A :class:`View` renders records as GitHub JSON for one base URL.

Requests and webhooks both need the same objects with links pointing at the sandbox, and
rendering an issue needs its labels, its author's account and whether the App wrote it; a
``View`` carries those lookups so route code calls ``view.issue(repo, issue)`` and nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass

from ghsandbox import render, render_repo, render_user
from ghsandbox.model import (
    Account,
    AccountType,
    Comment,
    File,
    Installation,
    Issue,
    Label,
    Repo,
)
from ghsandbox.render import Json
from ghsandbox.state import World

APP_OWNER = "sandbox-apps"


@dataclass(frozen=True)
class View:
    """Renders the world's records as GitHub JSON, with URLs under ``base``."""

    base: str
    world: World
    app_id: int
    app_slug: str

    @property
    def bot_login(self) -> str:
        return f"{self.app_slug}[bot]"

    def user(self, login: str) -> Json:
        return render.user(self.base, self.world.account(login))

    def profile(self, account: Account, *, private: bool = False) -> Json:
        """``account``'s ``public-user``, or (``private``) the ``private-user`` its owner reads."""
        if not private:
            return render_user.public_user(self.base, account)
        login = account.login.lower()
        owned = sum(1 for r in self.world.repos.values() if r.owner.lower() == login)
        return render_user.private_user(self.base, account, owned_repos=owned)

    def app(self) -> Json:
        owner = self.world.account(APP_OWNER, AccountType.ORGANIZATION)
        out = render.integration(self.base, app_id=self.app_id, slug=self.app_slug, owner=owner)
        out["installations_count"] = len(self.world.installations)
        return out

    def app_in_webhooks(self) -> Json:
        """The App as an issue's or comment's ``performed_via_github_app`` shows it."""
        return {**self.app(), "events": list(render.WEBHOOK_APP_EVENTS)}

    def installation(self, inst: Installation) -> Json:
        account = self.world.account(inst.account)
        return render.installation(
            self.base, inst, app_id=self.app_id, slug=self.app_slug, account=account
        )

    def repository(self, repo: Repo) -> Json:
        return render_repo.repository(self.base, repo, self.world.account(repo.owner))

    def organization(self, repo: Repo) -> Json | None:
        """The ``organization`` of a webhook payload, or None for a user's repository."""
        owner = self.world.account(repo.owner)
        if owner.type is not AccountType.ORGANIZATION:
            return None
        return render.organization(self.base, owner)

    def label(self, repo: Repo, label: Label) -> Json:
        return render.label(self.base, repo, label)

    def issue_labels(self, repo: Repo, issue: Issue) -> list[Json]:
        by_id = {lab.id: lab for lab in repo.labels.values()}
        return [render.label(self.base, repo, by_id[i]) for i in issue.labels if i in by_id]

    def issue_events(self, repo: Repo, issue: Issue) -> list[Json]:
        """The issue's timeline, oldest first; the App's own changes name the App."""
        app = self.app_in_webhooks()
        out = []
        for event in issue.events:
            label = repo.labels.get((event["label"] or "").lower())
            out.append(render.issue_event(
                self.base, repo, event, actor=self.user(event["actor"]),
                app=app if event["actor"] == self.bot_login else None,
                color=label.color if label is not None else None))
        return out

    def issue(self, repo: Repo, issue: Issue) -> Json:
        blocking = len(self.world.blocking.get(issue.id, ()))
        parent = self.world.parent_of(issue)
        return render.issue(
            self.base,
            repo,
            issue,
            author=self.user(issue.author),
            labels=self.issue_labels(repo, issue),
            closed_by=self.user(issue.closed_by) if issue.closed_by else None,
            app=self.app_in_webhooks() if issue.via_app else None,
            blocking=blocking,
            completed_sub_issues=self._completed_sub_issues(issue),
            parent_url=render.issue_url(self.base, *parent) if parent is not None else None,
        )

    def _completed_sub_issues(self, issue: Issue) -> int:
        """How many of the issue's sub-issues are closed (GitHub's ``completed``)."""
        found = (self.world.issue_by_id(i) for i in issue.sub_issues)
        return sum(1 for f in found if f is not None and f[1].state == "closed")

    def comment(self, repo: Repo, comment: Comment) -> Json:
        return render.comment(
            self.base,
            repo,
            comment,
            author=self.user(comment.author),
            app=self.app_in_webhooks() if comment.via_app else None,
        )

    def content_file(self, repo: Repo, file: File, *, with_content: bool = True) -> Json:
        return render.content_file(self.base, repo, file, with_content=with_content)
