"""The repository configuration, ``.github/reactor.yml``, parsed into a frozen RepoConfig.

Every key is optional; an absent key takes the default of SPEC §3. Parsing is strict:
an unknown key, a wrong type or a bad value raises :class:`RepoConfigError`, whose message is
one line naming the key (``timeouts.executor: '4 hours' is not a duration like 30m or 2h``),
fit for the comment the shell leaves on the newest agent issue. The text is read with
``yaml.safe_load`` and nothing else; fetching, caching and "keep the last good config" are
the shell's.

Logins and competition names are folded to lower case (GitHub compares both without regard
to case); stage names must already be label-safe.

Two keys beyond SPEC §3 tune the revert-war cap: ``revert_limit`` (default 3) reverts of one
issue within ``revert_window`` (default 1h) before the reactor stops and asks for a human.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

import yaml

from reactor.errors import ConfigError

DEFAULT_STAGES = ("planner", "analyzer", "executor", "monitor", "retrospective")
DEFAULT_TIMEOUTS = MappingProxyType({
    "planner": timedelta(minutes=30), "analyzer": timedelta(hours=2),
    "executor": timedelta(hours=4), "monitor": timedelta(hours=8),
    "retrospective": timedelta(hours=1),
})
DEFAULT_STAGE_TIMEOUT = timedelta(hours=1)  # for a configured stage the defaults do not name
CONFIG_PATH = ".github/reactor.yml"

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_STAGE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,43}")  # agent:<stage> stays within 50 characters
_LOGIN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38})(?:\[bot\])?")
_COMP_MAX = 45  # comp:<name> stays within 50 characters


class DispatchMode(StrEnum):
    """How the next agent is woken on hand-off (R9)."""

    LABEL = "label"
    REPOSITORY_DISPATCH = "repository_dispatch"


class RepoConfigError(ConfigError):
    """``.github/reactor.yml`` is not valid; ``key`` is the dotted path of the culprit."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
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
    """Parse the YAML text of ``.github/reactor.yml``; empty or None gives the defaults."""
    try:
        data = yaml.safe_load(text or "")
    except yaml.YAMLError as error:
        raise RepoConfigError("", _yaml_problem(error, text or "")) from None
    if data is None:
        return DEFAULT_CONFIG
    if not isinstance(data, dict):
        raise RepoConfigError("", "the file must be a mapping of keys (stages:, timeouts:, …)")
    return _build(data)


def _yaml_problem(error: yaml.YAMLError, text: str) -> str:
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark is not None else ""
    problem = getattr(error, "problem", None) or "unreadable"
    hint = ("; quote logins that end in [bot], e.g. ['planner-bot[bot]']"
            if "[bot]" in text else "")
    return f"not valid YAML{where} ({problem}){hint}"


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
            raise RepoConfigError(f"{key}.{stage}", f"not a stage in stages ({', '.join(stages)})")


# -- value parsers: each takes (value, key) and raises RepoConfigError naming the key ----------

T = TypeVar("T")


def parse_duration(text: str) -> timedelta:
    """``30m``, ``2h``, ``90s``, ``1h30m``, ``1d``: units in d, h, m, s order; ValueError else."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or not any(match.groups()):
        raise ValueError(text)
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _duration(value: Any, key: str, *, zero_ok: bool = False) -> timedelta:
    problem = f"{value!r} is not a duration like 30m or 2h"
    if not isinstance(value, str):
        raise RepoConfigError(key, problem)
    try:
        parsed = parse_duration(value)
    except ValueError:
        raise RepoConfigError(key, problem) from None
    if not parsed and not zero_ok:
        raise RepoConfigError(key, "must be longer than zero")
    return parsed


def _list(value: Any, key: str, item: Callable[[Any, str], T]) -> tuple[T, ...]:
    if not isinstance(value, list):
        raise RepoConfigError(key, f"must be a list, e.g. [a, b], not {value!r}")
    return tuple(item(entry, f"{key}[{i}]") for i, entry in enumerate(value))


def _mapping(value: Any, key: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise RepoConfigError(key, f"must be a mapping, e.g. {{name: value}}, not {value!r}")
    return value


def _name(value: Any, key: str, pattern: re.Pattern[str], what: str) -> str:
    folded = value.strip().casefold() if isinstance(value, str) else None
    if folded is None or not pattern.fullmatch(folded):
        raise RepoConfigError(key, f"{value!r} is not {what}")
    return folded


def _stage(value: Any, key: str) -> str:
    return _name(value, key, _STAGE, "a stage name (letters, digits, -, _, .; ≤ 44 characters)")


def _login(value: Any, key: str) -> str:
    return _name(value, key, _LOGIN, "a GitHub login (like octocat or planner-bot[bot])")


def _comp(value: Any, key: str) -> str:
    folded = value.strip().casefold() if isinstance(value, str) else ""
    if not folded or len(folded) > _COMP_MAX or ":" in folded:
        problem = f"{value!r} is not a competition name (≤ {_COMP_MAX} characters, no ':')"
        raise RepoConfigError(key, problem)
    return folded


def _stages(value: Any, key: str) -> tuple[str, ...]:
    stages = _list(value, key, _stage)
    if not stages:
        raise RepoConfigError(key, "must name at least one stage")
    for i, stage in enumerate(stages):
        if stage in stages[:i]:
            raise RepoConfigError(f"{key}[{i}]", f"{stage!r} is listed twice")
    return stages


def _timeouts(value: Any, key: str) -> dict[str, timedelta]:
    items = _mapping(value, key).items()
    return {_stage(s, f"{key}.{s}"): _duration(d, f"{key}.{s}") for s, d in items}


def _logins_by(value: Any, key: str, name: Callable[[Any, str], str],
               item: Callable[[Any, str], str]) -> MappingProxyType[str, frozenset[str]]:
    items = _mapping(value, key).items()
    return _frozen({name(k, f"{key}.{k}"): frozenset(_list(v, f"{key}.{k}", item))
                    for k, v in items})


def _dispatch(value: Any, key: str) -> frozenset[DispatchMode]:
    def mode(entry: Any, where: str) -> DispatchMode:
        if entry not in tuple(DispatchMode):
            choices = ", ".join(DispatchMode)
            raise RepoConfigError(where, f"{entry!r} is not one of {choices}")
        return DispatchMode(entry)

    modes = frozenset(_list(value, key, mode))
    if not modes:
        raise RepoConfigError(key, "must name at least one way to hand off")
    return modes


def _count(value: Any, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise RepoConfigError(key, f"{value!r} is not a whole number of at least 1")
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
}
