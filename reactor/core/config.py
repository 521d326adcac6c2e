"""The repository configuration, ``.github/reactor.yml``, parsed into a frozen RepoConfig.

Every key is optional; an absent key takes the default of SPEC §3. Parsing is strict:
an unknown key, a wrong type or a bad value raises :class:`RepoConfigError`, whose message is
one line naming the key (``timeouts.executor: '4 hours' is not a duration like 30m or 2h``),
fit for the comment the shell leaves on the newest agent issue. Fetching, caching and "keep the
last good config" are the shell's.

The file is written by whoever can push to the repository, and one worker pool serves every
installation, so reading it is bounded before anything is built
(:mod:`reactor.core.yaml_bounded`). Any failure to read or check the text is a
:class:`RepoConfigError`, and its message is one printable line of at most
:data:`MESSAGE_CHARS` characters that quotes values by a short excerpt, never a ``repr``.

Logins and competition names are folded to lower case (GitHub compares both without regard
to case); stage names must already be label-safe.

Two keys beyond SPEC §3 tune the revert-war cap: ``revert_limit`` (default 3) reverts of one
issue within ``revert_window`` (default 1h) before the reactor stops and asks for a human.
Two tune R12: two actors may undo each other's change on one issue ``pingpong_limit``
(default 4) times within ``pingpong_window`` (default 10m); one more is a loop. ``limits``
sets R11's budget per actor and installation (:class:`Limits`). ``chain`` says how a
hand-off shows the chain of stages in GitHub itself (default ``[dependencies]``; add
``sub_issues`` for a parent issue per competition with each stage as its sub-issue; ``[]``:
not at all).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

from reactor.core.errors import ConfigError
from reactor.core.yaml_bounded import EXCERPT_CHARS, Unreadable, excerpt, one_line, read_yaml

DEFAULT_STAGES = ("planner", "analyzer", "executor", "monitor", "retrospective")
DEFAULT_TIMEOUTS = MappingProxyType({
    "planner": timedelta(minutes=30), "analyzer": timedelta(hours=2),
    "executor": timedelta(hours=4), "monitor": timedelta(hours=8),
    "retrospective": timedelta(hours=1),
})
DEFAULT_STAGE_TIMEOUT = timedelta(hours=1)  # for a configured stage the defaults do not name
CONFIG_PATH = ".github/reactor.yml"

# Limits on what one repository's file may cost; a config with every key is under 2 KiB,
# holds a few dozen values and nests four deep (file → agents → stage → login).
MAX_DURATION = timedelta(days=365)  # far below timedelta's range: `now + d` never overflows
MESSAGE_CHARS = 280  # a whole message, key included

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_STAGE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,43}")  # agent:<stage> stays within 50 characters
_LOGIN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38})(?:\[bot\])?")
_COMP_MAX = 45  # comp:<name> stays within 50 characters


@dataclass(frozen=True)
class Limits:
    """R11: what one actor may do per installation, per window (a moving window: the count
    of the current one plus the previous one's share of it)."""

    moves_per_minute: int = 30  # label changes on agent issues
    issues_per_hour: int = 20  # agent issues opened
    comments_per_hour: int = 60  # comments on agent issues

    def budgets(self) -> tuple[Budget, ...]:
        return (Budget("moves", self.moves_per_minute, timedelta(minutes=1)),
                Budget("issues", self.issues_per_hour, timedelta(hours=1)),
                Budget("comments", self.comments_per_hour, timedelta(hours=1)))

    def of(self, kind: str) -> Budget:
        return next(b for b in self.budgets() if b.kind == kind)

    def windows(self) -> dict[str, timedelta]:
        return {b.kind: b.window for b in self.budgets()}


@dataclass(frozen=True)
class Budget:
    kind: str  # moves, issues, comments
    limit: int
    window: timedelta

    @property
    def text(self) -> str:
        per = "minute" if self.window == timedelta(minutes=1) else "hour"
        return f"{self.limit} {self.kind} per {per}"


class Chain(StrEnum):
    """How a hand-off shows the chain of stages in GitHub itself (R9)."""

    DEPENDENCIES = "dependencies"  # the next stage's issue is "blocked by" the completed one
    SUB_ISSUES = "sub_issues"  # each stage a sub-issue of the competition's parent issue


class DispatchMode(StrEnum):
    """How the next agent is woken on hand-off (R9)."""

    LABEL = "label"
    REPOSITORY_DISPATCH = "repository_dispatch"


class RepoConfigError(ConfigError):
    """``.github/reactor.yml`` is not valid; ``key`` is the dotted path of the culprit.

    The message is one printable line of at most :data:`MESSAGE_CHARS` characters, whatever
    the file holds: it goes into a comment by the App, the audit log and the worker log.
    """

    def __init__(self, key: str, problem: str) -> None:
        key = one_line(key, EXCERPT_CHARS)
        super().__init__(one_line(f"{key}: {problem}" if key else problem, MESSAGE_CHARS))
        self.key = key


def _frozen(value: Mapping[str, Any]) -> MappingProxyType[str, Any]:
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class RepoConfig:
    """One repository's rules configuration (defaults = SPEC §3)."""

    stages: tuple[str, ...] = DEFAULT_STAGES
    timeouts: Mapping[str, timedelta] = field(default_factory=lambda: DEFAULT_TIMEOUTS)
    start_timeout: timedelta = timedelta(minutes=10)
    settle: timedelta = timedelta(seconds=1)
    agents: Mapping[str, frozenset[str]] = field(default_factory=lambda: _frozen({}))
    scopes: Mapping[str, frozenset[str]] = field(default_factory=lambda: _frozen({}))
    maintainers: frozenset[str] = frozenset()
    dispatch: frozenset[DispatchMode] = frozenset({DispatchMode.LABEL})
    revert_limit: int = 3
    revert_window: timedelta = timedelta(hours=1)
    pingpong_limit: int = 4
    pingpong_window: timedelta = timedelta(minutes=10)
    limits: Limits = field(default_factory=Limits)
    chain: frozenset[Chain] = frozenset({Chain.DEPENDENCIES})

    def stage_index(self, stage: str | None) -> int | None:
        """Position of ``stage`` in the order, or None for a stage this repo does not run."""
        return self.stages.index(stage) if stage in self.stages else None

    def timeout_for(self, stage: str) -> timedelta:
        return self.timeouts.get(stage, DEFAULT_STAGE_TIMEOUT)

    def is_maintainer(self, login: str) -> bool:
        return login.casefold() in self.maintainers

    def may_drive(self, login: str, stage: str) -> bool:
        """R4: with no ``agents`` entry for the stage, anyone with write access may."""
        allowed = self.agents.get(stage)
        return allowed is None or login.casefold() in allowed

    def in_scope(self, login: str, comp: str | None) -> bool:
        """R3: an actor without a ``scopes`` entry may touch every competition."""
        scope = self.scopes.get(login.casefold())
        return scope is None or comp is None or comp in scope

    def stages_of(self, login: str) -> tuple[str, ...]:
        """The stages ``login`` is configured to drive, in stage order (R6)."""
        return tuple(s for s in self.stages if login.casefold() in self.agents.get(s, ()))


DEFAULT_CONFIG = RepoConfig()


def parse_config(text: str | None) -> RepoConfig:
    """Parse the YAML text of ``.github/reactor.yml``; empty or None gives the defaults.

    For any text at all this returns a RepoConfig or raises RepoConfigError, nothing else: a
    check that fails in an unforeseen way is still a problem with the file, and the shell then
    keeps the last good config instead of failing every evaluation in the repository.
    """
    data = _read(text or "")
    if data is None:
        return DEFAULT_CONFIG
    if not isinstance(data, dict):
        raise RepoConfigError("", "the file must be a mapping of keys (stages:, timeouts:, …)")
    try:
        return _build(data)
    except RepoConfigError:
        raise
    except Exception as error:  # see the docstring
        raise RepoConfigError("", f"could not be checked ({type(error).__name__})") from None


def _build(data: dict[Any, Any]) -> RepoConfig:
    data = {key: value for key, value in data.items() if value is not None}  # `key:` = absent
    unknown = sorted(str(key) for key in data if key not in _PARSERS)
    if unknown:
        raise RepoConfigError(unknown[0], f"unknown key (known: {', '.join(_PARSERS)})")
    values = {key: _PARSERS[key](data[key], key) for key in data}
    stages = values.get("stages", DEFAULT_STAGES)
    for key in ("timeouts", "agents"):
        _check_stage_keys(values.get(key, {}), stages, key)
    timeouts = {**{s: t for s, t in DEFAULT_TIMEOUTS.items() if s in stages},
                **values.pop("timeouts", {})}
    return RepoConfig(timeouts=_frozen(timeouts), **values)


def _check_stage_keys(mapping: Mapping[str, Any], stages: tuple[str, ...], key: str) -> None:
    for stage in mapping:
        if stage not in stages:
            raise RepoConfigError(_at(key, stage), f"not a stage in stages ({_listing(stages)})")


# -- value parsers: each takes (value, key) and raises RepoConfigError naming the key ----------

T = TypeVar("T")


def parse_duration(text: str) -> timedelta:
    """``30m``, ``2h``, ``90s``, ``1h30m``, ``1d``: units in d, h, m, s order; ValueError else."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or not any(match.groups()):
        raise ValueError(text)
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    try:
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise ValueError(text) from None


def _duration(value: Any, key: str, *, zero_ok: bool = False) -> timedelta:
    problem = f"{excerpt(value)} is not a duration like 30m or 2h"
    if not isinstance(value, str):
        raise RepoConfigError(key, problem)
    try:
        parsed = parse_duration(value)
    except ValueError:  # also a number past int's digit limit or timedelta's range
        raise RepoConfigError(key, problem) from None
    if not parsed and not zero_ok:
        raise RepoConfigError(key, "must be longer than zero")
    if parsed > MAX_DURATION:
        raise RepoConfigError(key, f"{excerpt(value)} is longer than {MAX_DURATION.days}d")
    return parsed


def _list(value: Any, key: str, item: Callable[[Any, str], T]) -> tuple[T, ...]:
    if not isinstance(value, list):
        raise RepoConfigError(key, f"must be a list, e.g. [a, b], not {excerpt(value)}")
    return tuple(item(entry, f"{key}[{i}]") for i, entry in enumerate(value))


def _mapping(value: Any, key: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        problem = f"must be a mapping, e.g. {{name: value}}, not {excerpt(value)}"
        raise RepoConfigError(key, problem)
    return value


def _name(value: Any, key: str, pattern: re.Pattern[str], what: str) -> str:
    folded = value.strip().casefold() if isinstance(value, str) else None
    if folded is None or not pattern.fullmatch(folded):
        raise RepoConfigError(key, f"{excerpt(value)} is not {what}")
    return folded


def _stage(value: Any, key: str) -> str:
    return _name(value, key, _STAGE, "a stage name (letters, digits, -, _, .; ≤ 44 characters)")


def _login(value: Any, key: str) -> str:
    return _name(value, key, _LOGIN, "a GitHub login (like octocat or planner-bot[bot])")


def _comp(value: Any, key: str) -> str:
    folded = value.strip().casefold() if isinstance(value, str) else ""
    if not folded or len(folded) > _COMP_MAX or ":" in folded:
        problem = f"{excerpt(value)} is not a competition name (≤ {_COMP_MAX} characters, no ':')"
        raise RepoConfigError(key, problem)
    return folded


def _stages(value: Any, key: str) -> tuple[str, ...]:
    stages = _list(value, key, _stage)
    if not stages:
        raise RepoConfigError(key, "must name at least one stage")
    seen: set[str] = set()  # a set: thousands of stages must not cost a quadratic scan
    for i, stage in enumerate(stages):
        if stage in seen:
            raise RepoConfigError(f"{key}[{i}]", f"{excerpt(stage)} is listed twice")
        seen.add(stage)
    return stages


def _timeouts(value: Any, key: str) -> dict[str, timedelta]:
    items = _mapping(value, key).items()
    return {_stage(s, _at(key, s)): _duration(d, _at(key, s)) for s, d in items}


def _logins_by(value: Any, key: str, name: Callable[[Any, str], str],
               item: Callable[[Any, str], str]) -> MappingProxyType[str, frozenset[str]]:
    items = _mapping(value, key).items()
    return _frozen({name(k, _at(key, k)): frozenset(_list(v, _at(key, k), item))
                    for k, v in items})


def _dispatch(value: Any, key: str) -> frozenset[DispatchMode]:
    def mode(entry: Any, where: str) -> DispatchMode:
        if entry not in tuple(DispatchMode):
            choices = ", ".join(DispatchMode)
            raise RepoConfigError(where, f"{excerpt(entry)} is not one of {choices}")
        return DispatchMode(entry)

    modes = frozenset(_list(value, key, mode))
    if not modes:
        raise RepoConfigError(key, "must name at least one way to hand off")
    return modes


def _chain(entry: Any, where: str) -> Chain:
    if entry not in tuple(Chain):
        raise RepoConfigError(where, f"{excerpt(entry)} is not one of {', '.join(Chain)}")
    return Chain(entry)


def _limits(value: Any, key: str) -> Limits:
    items = _mapping(value, key)
    known = [f.name for f in fields(Limits)]
    for name in items:
        if name not in known:
            raise RepoConfigError(_at(key, name), f"unknown limit (known: {', '.join(known)})")
    return Limits(**{name: _count(v, _at(key, name)) for name, v in items.items()})


def _count(value: Any, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise RepoConfigError(key, f"{excerpt(value)} is not a whole number of at least 1")
    return value


_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "stages": _stages,
    "timeouts": _timeouts,
    "start_timeout": _duration,
    "settle": lambda value, key: _duration(value, key, zero_ok=True),
    "agents": lambda value, key: _logins_by(value, key, _stage, _login),
    "scopes": lambda value, key: _logins_by(value, key, _login, _comp),
    "maintainers": lambda value, key: frozenset(_list(value, key, _login)),
    "dispatch": _dispatch,
    "revert_limit": _count,
    "revert_window": _duration,
    "pingpong_limit": _count,
    "pingpong_window": _duration,
    "limits": _limits,
    "chain": lambda value, key: frozenset(_list(value, key, _chain)),
}


def _at(key: str, name: object) -> str:
    """The dotted path of ``name`` under ``key``, the name cut short and made printable."""
    return f"{key}.{one_line(str(name), 40)}"


def _listing(names: Sequence[str], shown: int = 6) -> str:
    more = ", …" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _read(text: str) -> Any:
    try:
        return read_yaml(text)
    except Unreadable as problem:
        raise RepoConfigError("", str(problem)) from None
