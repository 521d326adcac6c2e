"""The sandbox's records: plain mutable dataclasses that mirror GitHub's objects.

Records hold only what GitHub stores; the JSON GitHub answers with is built from them by
:mod:`ghsandbox.render`. Timestamps are kept as GitHub prints them
(``2024-05-01T12:00:00Z``), which also sorts correctly as text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AccountType(StrEnum):
    """GitHub's ``type`` of an account."""

    USER = "User"
    BOT = "Bot"
    ORGANIZATION = "Organization"


def stable_id(kind: str, name: str) -> int:
    """A stable positive id for an account, the same for the same name on every run."""
    digest = hashlib.sha256(f"{kind}:{name.lower()}".encode()).digest()
    return 10_000_000 + int.from_bytes(digest[:4], "big") % 90_000_000


@dataclass(slots=True)
class Account:
    """A user, bot or organization."""

    login: str
    id: int
    type: AccountType


@dataclass(slots=True)
class Label:
    """A repository label; issues refer to it by id, so a rename shows on every issue."""

    id: int
    name: str
    color: str = "ededed"
    description: str | None = None


@dataclass(slots=True)
class Issue:
    """An issue; ``labels`` holds label ids in the order they were added."""

    id: int
    number: int
    repo_id: int
    title: str
    body: str | None
    author: str
    created_at: str
    updated_at: str
    labels: list[int] = field(default_factory=list)
    state: str = "open"
    state_reason: str | None = None
    closed_at: str | None = None
    closed_by: str | None = None
    comments: int = 0
    blocked_by: list[int] = field(default_factory=list)
    sub_issues: list[int] = field(default_factory=list)  # sub-issue ids, in priority order
    via_app: bool = False
    # the timeline (``GET .../issues/{n}/events``): {"id", "event", "actor", "label",
    # "state_reason", "created_at"}, oldest first; ids grow across the whole sandbox
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Comment:
    """An issue comment."""

    id: int
    repo_id: int
    issue_number: int
    body: str
    author: str
    created_at: str
    updated_at: str
    via_app: bool = False


@dataclass(slots=True)
class File:
    """A file on the default branch; ``sha`` is its git blob sha, as GitHub reports it."""

    path: str
    content: bytes
    sha: str

    @classmethod
    def of(cls, path: str, content: bytes) -> File:
        header = f"blob {len(content)}\0".encode()
        return cls(path, content, hashlib.sha1(header + content, usedforsecurity=False).hexdigest())


@dataclass(slots=True)
class Repo:
    """A repository with its labels (keyed by lower-case name), issues and files."""

    id: int
    owner: str
    name: str
    installation_id: int
    created_at: str
    pushed_at: str
    default_branch: str = "main"
    head_sha: str = "0" * 40
    labels: dict[str, Label] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)
    files: dict[str, File] = field(default_factory=dict)
    open_count: int = 0  # open issues, kept by World so rendering never counts them

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(slots=True)
class Installation:
    """The App's installation on one account, covering that account's sandbox repositories."""

    id: int
    account: str
    created_at: str
    repo_ids: list[int] = field(default_factory=list)
    suspended_at: str | None = None  # set by POST /_sandbox/suspend


@dataclass(slots=True)
class Token:
    """An installation access token and when it stops working (epoch seconds)."""

    installation_id: int
    expires_at: float
    repo_ids: list[int] | None = None  # None: every repository of the installation
