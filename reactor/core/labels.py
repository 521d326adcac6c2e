"""Label names parsed once into typed values, and the label set the reactor installs.

GitHub treats label names case-insensitively (a repository cannot hold both ``Bug`` and
``bug``), so parsing folds case and trims whitespace around the prefix and the value:
``Status: Running`` reads as ``status:running``. The raw name is kept on every
:class:`ParsedLabel`, because removing a label must name it exactly as it is on the issue.
Names longer than GitHub's 50-character limit, or with an empty value (``comp:``), parse as
:attr:`LabelKind.INVALID`: the rules ignore them and the audit can flag them.

https://docs.github.com/en/issues/using-labels-and-milestones-to-track-work/managing-labels
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

MAX_LABEL_LENGTH = 50  # GitHub's own limit on label names


class Status(StrEnum):
    """An agent issue's lifecycle state; no ``status:`` label means :attr:`IDLE`."""

    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"
    COMPLETED = "completed"
    ERROR = "error"
    TIMEOUT = "timeout"

    @property
    def label(self) -> str:
        return f"{LabelKind.STATUS.prefix}{self.value}"


class LabelKind(StrEnum):
    """What a label means to the reactor, by prefix."""

    AGENT = "agent"
    COMP = "comp"
    STATUS = "status"
    PRIORITY = "priority"
    REACTOR = "reactor"
    OTHER = "other"  # any label the reactor does not read (``bug``, ``help wanted``)
    INVALID = "invalid"  # absurdly long, or a known prefix with an empty value

    @property
    def prefix(self) -> str:
        return f"{self.value}:"


class ReactorLabel(StrEnum):
    """Labels only the reactor sets."""

    BLOCKED = "reactor:blocked"
    NEEDS_HUMAN = "reactor:needs-human"
    DUPLICATE = "reactor:duplicate"
    PAUSED = "reactor:paused"
    COMPETITION = "reactor:competition"  # a competition's parent issue (``chain: [sub_issues]``)


_PREFIXED = (LabelKind.AGENT, LabelKind.COMP, LabelKind.STATUS, LabelKind.PRIORITY,
             LabelKind.REACTOR)


@dataclass(frozen=True, slots=True)
class ParsedLabel:
    """One label: its exact name on GitHub, its kind and its folded value.

    ``value`` is the part after the prefix (``running`` for ``status:running``), or the
    folded whole name for :attr:`LabelKind.OTHER`. ``status`` is set for a ``status:``
    label whose value is a known :class:`Status`; ``status:bogus`` has ``status`` None.
    """

    name: str
    kind: LabelKind
    value: str

    @property
    def status(self) -> Status | None:
        if self.kind is not LabelKind.STATUS:
            return None
        try:
            return Status(self.value)
        except ValueError:
            return None


@lru_cache(maxsize=4096)
def parse_label(name: str) -> ParsedLabel:
    """Classify one label name; never raises. Cached: a burst asks about the same few names
    thousands of times (reactor/core/rules/chain.py)."""
    if len(name) > MAX_LABEL_LENGTH:
        return ParsedLabel(name, LabelKind.INVALID, "")
    prefix, colon, rest = name.partition(":")
    kind = _kind_of(prefix.strip().casefold()) if colon else None
    if kind is None:
        return ParsedLabel(name, LabelKind.OTHER, name.strip().casefold())
    value = rest.strip().casefold()
    return ParsedLabel(name, kind if value else LabelKind.INVALID, value)


def _kind_of(prefix: str) -> LabelKind | None:
    for kind in _PREFIXED:
        if kind.value == prefix:
            return kind
    return None


def agent_label(stage: str) -> str:
    return f"{LabelKind.AGENT.prefix}{stage}"


def comp_label(comp: str) -> str:
    return f"{LabelKind.COMP.prefix}{comp}"


@dataclass(frozen=True, slots=True)
class LabelSet:
    """An issue's labels, parsed once; the views the rules read."""

    items: tuple[ParsedLabel, ...]

    @classmethod
    def parse(cls, names: Iterable[str]) -> LabelSet:
        return cls(tuple(parse_label(name) for name in sorted(names)))

    def of(self, kind: LabelKind) -> tuple[ParsedLabel, ...]:
        return tuple(item for item in self.items if item.kind is kind)

    def values(self, kind: LabelKind) -> frozenset[str]:
        return frozenset(item.value for item in self.of(kind))

    def names(self, kind: LabelKind, value: str) -> tuple[str, ...]:
        """The exact names of the labels of ``kind`` whose folded value is ``value``."""
        return tuple(item.name for item in self.of(kind) if item.value == value)

    def has(self, kind: LabelKind, value: str) -> bool:
        return bool(self.names(kind, value))

    @property
    def statuses(self) -> frozenset[Status]:
        """The known statuses present (two or more = an ambiguous read)."""
        return frozenset(s for item in self.of(LabelKind.STATUS) if (s := item.status))

    @property
    def unknown_statuses(self) -> tuple[str, ...]:
        """``status:`` labels naming no known state (``status:done``): always a violation."""
        return tuple(item.name for item in self.of(LabelKind.STATUS) if item.status is None)

    @property
    def invalid(self) -> tuple[str, ...]:
        """Names the reactor refuses to read (too long, or an empty value)."""
        return tuple(item.name for item in self.of(LabelKind.INVALID))


@dataclass(frozen=True, slots=True)
class LabelSpec:
    """A repository label as the reactor installs it (colour is six hex digits, no ``#``)."""

    name: str
    color: str
    description: str


_STATUS_COLOURS = {
    Status.IDLE: ("ededed", "Agent issue waiting to be started"),
    Status.STARTING: ("fbca04", "Handed to the agent; it has not reported yet"),
    Status.RUNNING: ("1d76db", "The agent is working on it"),
    Status.COMPLETED: ("0e8a16", "The agent finished this stage"),
    Status.ERROR: ("d93f0b", "The agent failed; restart or reset it"),
    Status.TIMEOUT: ("b60205", "The stage ran past its timeout"),
}
_REACTOR_COLOURS = {
    ReactorLabel.BLOCKED: ("5319e7", "Issue Safety Reactor: part of a dependency cycle"),
    ReactorLabel.NEEDS_HUMAN: ("e11d21", "Issue Safety Reactor: stopped; a maintainer must look"),
    ReactorLabel.DUPLICATE: ("cfd3d7", "Issue Safety Reactor: closed as a duplicate"),
    ReactorLabel.PAUSED: ("fbca04", "Issue Safety Reactor: competition paused (runaway agent)"),
    ReactorLabel.COMPETITION: ("0e8a16", "Issue Safety Reactor: a competition's parent issue"),
}
AGENT_COLOUR = "c5def5"
COMP_COLOUR = "bfdadc"


def canonical_labels(stages: Iterable[str]) -> tuple[LabelSpec, ...]:
    """Every label the reactor reads or writes for these stages (``comp:`` ones excepted)."""
    status = [LabelSpec(s.label, *_STATUS_COLOURS[s]) for s in Status]
    agent = [LabelSpec(agent_label(stage), AGENT_COLOUR, f"Owned by the {stage} agent")
             for stage in stages]
    reactor = [LabelSpec(label.value, *_REACTOR_COLOURS[label]) for label in ReactorLabel]
    return (*status, *agent, *reactor)


def comp_label_spec(comp: str) -> LabelSpec:
    """The label of one competition, created when the reactor first writes it."""
    return LabelSpec(comp_label(comp), COMP_COLOUR, f"Competition {comp}")
