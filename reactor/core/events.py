"""Typed webhook events, parsed once at the edge with only the fields the reactor reads.

Unknown fields are ignored; a missing or mistyped field the reactor needs raises
:class:`~reactor.core.errors.PayloadError`, which the worker audits as a rejection. Payload
shapes follow https://docs.github.com/en/webhooks/webhook-events-and-payloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reactor.core.errors import PayloadError
from reactor.core.labels import MAX_LABEL_LENGTH, LabelKind, LabelSet, parse_label
from reactor.core.markers import creation_key
from reactor.core.view import Actor, Change, ChangeKind, IssueSnapshot, IssueState, Repo

# Events whose payload must name an issue, and those that must name a label.
_ISSUE_EVENTS = frozenset({"issues", "issue_comment"})


@dataclass(frozen=True, slots=True)
class Event:
    """One webhook delivery, reduced to what routing, auditing and the rules need."""

    name: str
    action: str | None
    delivery_id: str
    installation_id: int | None
    repo: Repo | None
    sender: Actor | None
    issue: int | None = None
    label: str | None = None
    # The payload's copy of the issue: enough to route the event to its competition's lock.
    # The rules never trust it for state; they read the issue afresh (SPEC §6).
    issue_labels: tuple[str, ...] = ()
    issue_author: str | None = None
    label_renamed_from: str | None = None  # ``label.edited``: ``changes.name.from``
    # When the web process received the delivery (seconds since the epoch); 0 if unknown.
    received_at: float = 0.0
    # The reactor's creation key, when the payload's issue body carries its marker.
    issue_creation_key: str | None = None
    # ``issue_dependencies``: the blocking issue; ``sub_issues``: the parent issue — when it is
    # in the same repository.
    other: int | None = None
    # ``installation`` created or deleted, ``installation_repositories`` added or removed:
    # the repositories the App was given or lost.
    repositories: tuple[Repo, ...] = ()
    # ``push``: the ref pushed to, and the repository's default branch.
    ref: str | None = None
    default_branch: str | None = None

    @property
    def comps(self) -> frozenset[str]:
        """The competitions the payload's issue names (``comp:`` labels, folded)."""
        return LabelSet.parse(self.issue_labels).values(LabelKind.COMP)


# Where an installation event lists the repositories its action concerns.
_REPOSITORY_LISTS = {
    ("installation", "created"): "repositories",
    ("installation", "deleted"): "repositories",
    ("installation_repositories", "added"): "repositories_added",
    ("installation_repositories", "removed"): "repositories_removed",
}


def parse_event(name: str, delivery_id: str, payload: Any, *, received_at: float = 0.0) -> Event:
    """Build an :class:`Event` from a decoded payload, or raise PayloadError."""
    reader = _Reader(payload, delivery_id)
    action = reader.optional_str(payload, "action")
    issue = reader.mapping("issue", required=name in _ISSUE_EVENTS)
    if name == "issue_dependencies":  # the blocked issue is the one that changed
        issue = reader.mapping("blocked_issue", required=True)
    if name == "sub_issues":  # the sub-issue is the one that changed
        issue = reader.mapping("sub_issue", required=True)
    label = reader.mapping("label", required=name == "label")
    return Event(
        name=name,
        action=action,
        delivery_id=delivery_id,
        installation_id=reader.installation_id(),
        repo=reader.repo(),
        sender=reader.actor(reader.mapping("sender", required=False)),
        issue=reader.integer(issue, "number", "issue") if issue is not None else None,
        label=reader.label_name(label) if label is not None else None,
        issue_labels=reader.label_names(issue) if issue is not None else (),
        issue_author=reader.author(issue) if issue is not None else None,
        label_renamed_from=reader.renamed_from() if name == "label" else None,
        received_at=received_at,
        other=reader.other(name),
        issue_creation_key=creation_key(reader.optional_str(issue, "body") or "")
        if issue is not None else None,
        repositories=reader.repositories(_REPOSITORY_LISTS.get((name, action or ""))),
        ref=reader.optional_str(payload, "ref") if name == "push" else None,
        default_branch=reader.default_branch() if name == "push" else None,
    )


_IDENTITY = (LabelKind.AGENT, LabelKind.COMP)
# The changes each event reports; the other actions of a link's events are its twin half.
_LINKS = {"issue_dependencies": (ChangeKind.BLOCKED_BY_ADDED, ChangeKind.BLOCKED_BY_REMOVED),
          "sub_issues": (ChangeKind.SUB_ISSUE_ADDED, ChangeKind.SUB_ISSUE_REMOVED)}
_KINDS = {"issues": tuple(set(ChangeKind).difference(*_LINKS.values())), **_LINKS}


def change_from_event(event: Event, *, now: datetime) -> Change | None:
    """The :class:`Change` an ``issues`` event (or the judged half of a link's:
    ``issue_dependencies``, ``sub_issues``) reports, or None for any other event.

    Its time is when the web process received it (``now`` for a delivery without one), and
    it keeps the ``status:`` labels the payload showed, which order a burst's changes."""
    if event.name not in _KINDS or event.issue is None or event.sender is None:
        return None
    try:
        kind = ChangeKind(event.action or "")
    except ValueError:
        return None
    if kind not in _KINDS[event.name] or (event.name != "issues" and event.other is None):
        return None
    label = event.label if kind in (ChangeKind.LABELED, ChangeKind.UNLABELED) else None
    at = datetime.fromtimestamp(event.received_at, UTC) if event.received_at else now
    shown = frozenset(n for n in event.issue_labels if parse_label(n).kind is LabelKind.STATUS)
    opened_with = frozenset(n for n in event.issue_labels if parse_label(n).kind in _IDENTITY) \
        if kind is ChangeKind.OPENED else None
    return Change(kind, event.issue, event.sender, event.delivery_id, at, label, shown,
                  event.other, opened_with)


def parse_issue(obj: Any, *, delivery_id: str = "") -> IssueSnapshot:
    """An :class:`IssueSnapshot` from a REST issue (or a payload's ``issue``).

    https://docs.github.com/en/rest/issues/issues#get-an-issue — raises PayloadError naming
    the field when the object lacks one the rules read.
    """
    reader = _Reader(obj, delivery_id)
    state = reader.text(obj, "state", "issue")
    if state not in tuple(IssueState):
        raise reader.fail("issue.state", "open or closed")
    return IssueSnapshot(
        number=reader.integer(obj, "number", "issue"),
        id=reader.integer(obj, "id", "issue"),
        title=reader.optional_str(obj, "title") or "",
        body=reader.optional_str(obj, "body") or "",
        state=IssueState(state),
        state_reason=reader.optional_str(obj, "state_reason"),
        labels=frozenset(reader.label_names(obj)),
        author=reader.author(obj) or "",
        created_at=reader.timestamp(obj, "created_at", "issue"),
        updated_at=reader.optional_timestamp(obj, "updated_at"),
        parent=_parent_number(obj),
    )


_FAR_SIDES = ("blocking_issue_repo", "blocked_issue_repo", "sub_issue_repo", "parent_issue_repo")


def _repo_id(repository: object) -> object:
    """A repository object's id (compared, not trusted: a mismatch only drops the link)."""
    return repository.get("id") if isinstance(repository, dict) else repository


def _parent_number(obj: dict[str, Any]) -> int | None:
    """The number of the issue's parent, from ``parent_issue_url``: None without one, 0 when
    the parent is in another repository (or the URL is not one GitHub writes)."""
    url, home = obj.get("parent_issue_url"), obj.get("repository_url")
    if not isinstance(url, str):
        return None
    repo, _, number = url.rpartition("/issues/")
    if repo != home or not number.isdigit():
        return 0
    return int(number)


class _Reader:
    """Typed access to a payload; every failure names the field it concerns."""

    def __init__(self, payload: Any, delivery_id: str) -> None:
        if not isinstance(payload, dict):
            raise PayloadError("payload is not a JSON object", delivery_id=delivery_id)
        self.payload = payload
        self.delivery_id = delivery_id

    def fail(self, field: str, expected: str) -> PayloadError:
        message = f"payload field {field!r} must be {expected}"
        return PayloadError(message, delivery_id=self.delivery_id)

    def mapping(self, key: str, *, required: bool) -> dict[str, Any] | None:
        value = self.payload.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, dict):
            raise self.fail(key, "an object")
        return value

    def integer(self, obj: dict[str, Any], key: str, where: str) -> int:
        value = obj.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(f"{where}.{key}", "an integer")
        return value

    def text(self, obj: dict[str, Any], key: str, where: str) -> str:
        value = obj.get(key)
        if not isinstance(value, str) or not value:
            raise self.fail(f"{where}.{key}", "a non-empty string")
        return value

    def optional_str(self, obj: dict[str, Any], key: str) -> str | None:
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(key, "a string")
        return value

    def installation_id(self) -> int | None:
        installation = self.mapping("installation", required=False)
        return None if installation is None else self.integer(installation, "id", "installation")

    def repo(self) -> Repo | None:
        repo = self.mapping("repository", required=False)
        if repo is None:
            return None
        owner = repo.get("owner")
        if not isinstance(owner, dict):
            raise self.fail("repository.owner", "an object")
        return Repo(
            owner=self.text(owner, "login", "repository.owner"),
            name=self.text(repo, "name", "repository"),
            id=self.integer(repo, "id", "repository"),
        )

    def actor(self, sender: dict[str, Any] | None) -> Actor | None:
        if sender is None:
            return None
        return Actor(
            login=self.text(sender, "login", "sender"),
            id=self.integer(sender, "id", "sender"),
            type=self.optional_str(sender, "type") or "User",
        )

    def label_names(self, issue: dict[str, Any]) -> tuple[str, ...]:
        """Label names of an issue object; REST may give objects or bare strings."""
        labels = issue.get("labels") or []
        if not isinstance(labels, list):
            raise self.fail("issue.labels", "a list")
        names = [item.get("name") if isinstance(item, dict) else item for item in labels]
        valid = [name for name in names if isinstance(name, str) and name]
        if len(valid) != len(names):
            raise self.fail("issue.labels", "a list of named labels")
        return tuple(valid)

    def author(self, issue: dict[str, Any]) -> str | None:
        user = issue.get("user")
        if user is None:
            return None
        if not isinstance(user, dict):
            raise self.fail("issue.user", "an object")
        return self.text(user, "login", "issue.user")

    def timestamp(self, obj: dict[str, Any], key: str, where: str) -> datetime:
        text = self.text(obj, key, where)
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise self.fail(f"{where}.{key}", "an ISO 8601 time") from None

    @staticmethod
    def optional_timestamp(obj: dict[str, Any], key: str) -> datetime | None:
        """An ISO 8601 time, or None when absent or unreadable (nothing depends on it)."""
        try:
            return datetime.fromisoformat(str(obj[key]))
        except (KeyError, ValueError):
            return None

    def other(self, name: str) -> int | None:
        """The other issue of a link: the blocking one (``issue_dependencies``) or the parent
        (``sub_issues``); None for other events, or when it lives in another repository."""
        side = {"issue_dependencies": "blocking_issue", "sub_issues": "parent_issue"}.get(name)
        if side is None:
            return None
        # each half names the repository of its far side: both must be this one
        home = _repo_id(self.payload.get("repository"))
        if any(_repo_id(self.payload[k]) != home for k in _FAR_SIDES if k in self.payload):
            return None
        other = self.mapping(side, required=True)
        assert other is not None
        return self.integer(other, "number", side)

    def repositories(self, field: str | None) -> tuple[Repo, ...]:
        """The ``{"id": <int>, "full_name": "<owner>/<name>"}`` items listed under ``field``
        (absent: none)."""
        if field is None or (items := self.payload.get(field)) is None:
            return ()
        if not isinstance(items, list):
            raise self._not_repositories(field)
        return tuple(self._listed_repository(item, field) for item in items)

    def _listed_repository(self, item: object, field: str) -> Repo:
        if not isinstance(item, dict):
            raise self._not_repositories(field)
        ident, full_name = item.get("id"), item.get("full_name")
        if not isinstance(ident, int) or isinstance(ident, bool) or not isinstance(full_name, str):
            raise self._not_repositories(field)
        owner, _, name = full_name.partition("/")
        if not owner or not name or "/" in name:
            raise self._not_repositories(field)
        return Repo(owner=owner, name=name, id=ident)

    def _not_repositories(self, field: str) -> PayloadError:
        return PayloadError(
            f"payload field {field!r} must list repositories, each with an integer id and an "
            "owner/name full_name", delivery_id=self.delivery_id)

    def default_branch(self) -> str | None:
        repository = self.payload.get("repository")
        if not isinstance(repository, dict):
            return None
        branch = repository.get("default_branch") or repository.get("master_branch")
        return branch if isinstance(branch, str) else None

    def renamed_from(self) -> str | None:
        changes = self.payload.get("changes")
        name = changes.get("name") if isinstance(changes, dict) else None
        previous = name.get("from") if isinstance(name, dict) else None
        return previous if isinstance(previous, str) else None

    def label_name(self, label: dict[str, Any]) -> str:
        name = self.text(label, "name", "label")
        if len(name) > MAX_LABEL_LENGTH:
            raise self.fail("label.name", f"at most {MAX_LABEL_LENGTH} characters")
        return name
