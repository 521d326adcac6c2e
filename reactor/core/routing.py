"""Which competition's turn a delivery joins: the scope, read from the payload alone.

A *scope* is what one turn covers: a competition of a repository, or one issue outside any
(SPEC §6: work on one competition is serialised). The web process routes each ``issues``,
``issue_comment``, ``issue_dependencies`` and ``sub_issues`` delivery to its scope as it
stores it (:func:`route`), reading only the
payload — the installation, the repository, the issue's number and labels, the changed label —
so that a delivery whose scope already has a turn waiting costs no job of its own.

The payload cannot know what the reactor remembers: an issue's competition never changes
(R3), so a change that moves its ``comp:`` label in one request reads, in the payload, as the
new competition's. The turn that takes such a change checks the issue's remembered
competition and hands the change on to it (:mod:`reactor.shell.turn`). Everything here is
pure, and never raises on a malformed payload: a delivery that cannot be routed is handled
on its own, where parsing it says what is wrong.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from reactor.core.labels import LabelKind, parse_label
from reactor.core.view import Repo

# Events whose deliveries join a turn, and the payload field naming the issue that changed.
TURN_EVENTS = {"issues": "issue", "issue_comment": "issue", "issue_dependencies": "blocked_issue",
               "sub_issues": "sub_issue"}


@dataclass(frozen=True, slots=True)
class Scope:
    """What one turn covers: a competition of a repository, or one issue outside any."""

    repo: Repo
    installation_id: int
    comp: str | None
    issue: int | None = None

    @property
    def key(self) -> str:
        if self.comp:
            return f"{self.repo.id}:comp:{self.comp}"
        return f"{self.repo.id}:issue:{self.issue}"

    @property
    def digest(self) -> str:
        """A short hash of :attr:`key`: safe in job ids whatever the competition's name."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:20]

    def dumps(self) -> str:
        return orjson.dumps({
            "owner": self.repo.owner, "name": self.repo.name, "repo_id": self.repo.id,
            "installation_id": self.installation_id, "comp": self.comp, "issue": self.issue,
        }).decode()

    @classmethod
    def loads(cls, text: str) -> Scope:
        data = orjson.loads(text)
        return cls(Repo(data["owner"], data["name"], data["repo_id"]), data["installation_id"],
                   data["comp"], data["issue"])

    def moved_to(self, comp: str) -> Scope:
        """The same repository's competition ``comp``."""
        return Scope(self.repo, self.installation_id, comp)


def competition_in(labels: frozenset[str], *, changed: str | None, action: str | None
                   ) -> str | None:
    """The competition the issue's labels name, given the label a change added or removed.

    A ``comp:`` label just removed was the issue's own; of the ones it has, one just added
    is not (unless it is the only one). With several, the first by name: the rules settle
    which is right (R3)."""
    comps = {value for name in labels
             if (parsed := parse_label(name)).kind is LabelKind.COMP and (value := parsed.value)}
    label = parse_label(changed) if changed else None
    if label is not None and label.kind is LabelKind.COMP and label.value:
        if action == "unlabeled":
            return label.value
        return min(comps - {label.value}, default=label.value)
    return min(comps, default=None)


def route(event: str, payload: Any) -> Scope | None:
    """The scope of a delivery's change from its payload alone; None for a delivery that joins
    no turn (another event, or a payload lacking what a scope needs)."""
    field = TURN_EVENTS.get(event)
    if field is None or not isinstance(payload, dict):
        return None
    installation, repository, issue = (payload.get(k) for k in ("installation", "repository",
                                                               field))
    if not (isinstance(installation, dict) and isinstance(repository, dict)
            and isinstance(issue, dict)):
        return None
    repo = _repo(repository)
    installation_id, number = installation.get("id"), issue.get("number")
    if repo is None or type(installation_id) is not int or type(number) is not int:
        return None
    labels = _label_names(issue.get("labels"))
    label = payload.get("label")
    changed = label.get("name") if isinstance(label, dict) else None
    action = payload.get("action")
    comp = competition_in(labels, changed=changed if isinstance(changed, str) else None,
                          action=action if isinstance(action, str) else None)
    return Scope(repo, installation_id, comp, None if comp else number)


def _repo(repository: dict[str, Any]) -> Repo | None:
    ident, name, owner = repository.get("id"), repository.get("name"), repository.get("owner")
    login = owner.get("login") if isinstance(owner, dict) else None
    if type(ident) is not int or not isinstance(name, str) or not isinstance(login, str):
        return None
    return Repo(login, name, ident)


def _label_names(labels: Any) -> frozenset[str]:
    if not isinstance(labels, list):
        return frozenset()
    return frozenset(name for item in labels
                     if isinstance(item, dict) and isinstance(name := item.get("name"), str))
