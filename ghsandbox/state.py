"""The sandbox's world: every account, installation, repository, issue, comment and token.

All reads and writes happen on the server's one event loop, and no handler awaits between
reading and writing the world, so each request's change is atomic without a lock. Ids are
drawn from one counter per kind, as on GitHub where issue, label and comment ids are global.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ghsandbox.model import (
    Account,
    AccountType,
    Comment,
    Installation,
    Issue,
    Label,
    Repo,
    Token,
    stable_id,
)

TOKEN_BODY_CHARS = 512  # GitHub's newer installation tokens are ~520 characters long


def iso(epoch: float) -> str:
    """Epoch seconds as GitHub prints times: ``2024-05-01T12:00:00Z``."""
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class World:
    """The whole mutable state; :mod:`ghsandbox.persist` saves and loads it as JSON."""

    accounts: dict[str, Account] = field(default_factory=dict)
    installations: dict[int, Installation] = field(default_factory=dict)
    repos: dict[str, Repo] = field(default_factory=dict)
    comments: dict[int, Comment] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    hook_urls: list[str] = field(default_factory=list)
    # derived indexes, rebuilt by reindex() after loading
    issue_index: dict[int, tuple[Repo, Issue]] = field(default_factory=dict)
    blocking: dict[int, set[int]] = field(default_factory=dict)
    parents: dict[int, int] = field(default_factory=dict)  # sub-issue id -> parent id
    clock: Callable[[], float] = time.time
    version: int = 0

    def now(self) -> str:
        return iso(self.clock())

    def next_id(self, kind: str) -> int:
        """The next id of ``kind``; each kind starts in its own range so ids never look alike."""
        base = {
            "repo": 500_000,
            "issue": 2_000_000,
            "label": 7_000_000,
            "comment": 3_000_000,
            "installation": 40_000,
            "delivery": 90_000_000,
            "event": 60_000_000,
        }.get(kind, 1)
        value = self.counters.get(kind, base) + 1
        self.counters[kind] = value
        return value

    def record_event(self, issue: Issue, event: str, actor: str, *, label: str | None = None,
                     state_reason: str | None = None) -> None:
        """Add one entry to the issue's timeline (``GET .../issues/{n}/events``)."""
        issue.events.append({"id": self.next_id("event"), "event": event, "actor": actor,
                             "label": label, "state_reason": state_reason,
                             "created_at": self.now()})

    def touch(self) -> None:
        """Mark the world changed (persistence saves it soon after)."""
        self.version += 1

    # accounts

    def account(self, login: str, kind: AccountType = AccountType.USER) -> Account:
        """The account called ``login``, created on first use with a stable id."""
        found = self.accounts.get(login.lower())
        if found is None:
            kind = AccountType.BOT if login.endswith("[bot]") else kind
            found = Account(login, stable_id(kind.value, login), kind)
            self.accounts[login.lower()] = found
            self.touch()
        return found

    # repositories and issues

    def repo(self, owner: str, name: str) -> Repo | None:
        return self.repos.get(f"{owner}/{name}".lower())

    def repo_by_id(self, repo_id: int) -> Repo | None:
        return next((r for r in self.repos.values() if r.id == repo_id), None)

    def issue_by_id(self, issue_id: int) -> tuple[Repo, Issue] | None:
        """The issue with the global id ``issue_id`` and its repository (dependencies use ids)."""
        return self.issue_index.get(issue_id)

    def reindex(self) -> None:
        """Rebuild the derived indexes from the records (after loading saved state)."""
        self.issue_index = {i.id: (r, i) for r, i in self.all_issues()}
        for repo in self.repos.values():
            repo.open_count = sum(1 for i in repo.issues.values() if i.state == "open")
        self.blocking, self.parents = {}, {}
        for _, issue in self.all_issues():
            for blocker in issue.blocked_by:
                self.blocking.setdefault(blocker, set()).add(issue.id)
            self.parents.update(dict.fromkeys(issue.sub_issues, issue.id))

    def set_state(self, repo: Repo, issue: Issue, state: str) -> None:
        """Open or close ``issue``, keeping the repository's open-issue count."""
        if state != issue.state:
            repo.open_count += 1 if state == "open" else -1
            issue.state = state
            self.touch()

    def add_blocker(self, issue: Issue, blocker: Issue) -> None:
        issue.blocked_by.append(blocker.id)
        self.blocking.setdefault(blocker.id, set()).add(issue.id)
        self.touch()

    def remove_blocker(self, issue: Issue, blocker: Issue) -> None:
        issue.blocked_by.remove(blocker.id)
        self.blocking.get(blocker.id, set()).discard(issue.id)
        self.touch()

    def parent_of(self, issue: Issue) -> tuple[Repo, Issue] | None:
        """The parent of ``issue`` and its repository, when ``issue`` is a sub-issue."""
        parent_id = self.parents.get(issue.id)
        return None if parent_id is None else self.issue_by_id(parent_id)

    def add_sub_issue(self, parent: Issue, sub: Issue) -> None:
        """Make ``sub`` the last sub-issue of ``parent`` (it must have no parent yet)."""
        parent.sub_issues.append(sub.id)
        self.parents[sub.id] = parent.id
        self.touch()

    def remove_sub_issue(self, parent: Issue, sub: Issue) -> None:
        parent.sub_issues.remove(sub.id)
        self.parents.pop(sub.id, None)
        self.touch()

    def all_issues(self) -> Iterator[tuple[Repo, Issue]]:
        for repo in self.repos.values():
            for issue in repo.issues.values():
                yield repo, issue

    def installation_for(self, owner: str) -> Installation | None:
        return next(
            (i for i in self.installations.values() if i.account.lower() == owner.lower()), None
        )

    def add_repo(self, owner: str, name: str, owner_type: AccountType) -> tuple[Repo, bool]:
        """Create ``owner/name`` with the App installed; True when the installation is new."""
        self.account(owner, owner_type)
        installation = self.installation_for(owner)
        created = installation is None
        if installation is None:
            installation = Installation(self.next_id("installation"), owner, self.now())
            self.installations[installation.id] = installation
        now = self.now()
        repo = Repo(self.next_id("repo"), owner, name, installation.id, now, now)
        installation.repo_ids.append(repo.id)
        self.repos[repo.full_name.lower()] = repo
        self.touch()
        return repo, created

    def new_issue(self, repo: Repo, *, title: str, body: str | None, author: str) -> Issue:
        now = self.now()
        number = len(repo.issues) + 1  # issues are never deleted
        issue = Issue(self.next_id("issue"), number, repo.id, title, body, author, now, now)
        repo.issues[number] = issue
        self.issue_index[issue.id] = (repo, issue)
        repo.open_count += 1
        self.touch()
        return issue

    # labels

    def ensure_label(self, repo: Repo, name: str) -> tuple[Label, bool]:
        """The repository label ``name`` (any case); created when absent, as GitHub does."""
        found = repo.labels.get(name.lower())
        if found is not None:
            return found, False
        label = Label(self.next_id("label"), name)
        repo.labels[name.lower()] = label
        self.touch()
        return label, True

    def label_by_id(self, repo: Repo, label_id: int) -> Label | None:
        return next((lab for lab in repo.labels.values() if lab.id == label_id), None)

    # tokens

    def mint_token(
        self, installation_id: int, lifetime_s: float, repo_ids: list[int] | None = None
    ) -> tuple[str, Token]:
        """A new installation token, long like GitHub's stateless ones (``ghs_`` + 512 chars)."""
        value = "ghs_" + secrets.token_urlsafe(TOKEN_BODY_CHARS)[:TOKEN_BODY_CHARS]
        token = Token(installation_id, self.clock() + lifetime_s, repo_ids)
        self.tokens[value] = token
        self.forget_expired_tokens()
        self.touch()
        return value, token

    def forget_expired_tokens(self) -> None:
        """Drop tokens expired for over a day, so a long benchmark does not grow the table."""
        cutoff = self.clock() - 86_400
        for value in [v for v, t in self.tokens.items() if t.expires_at < cutoff]:
            del self.tokens[value]
