"""``.github/reactor.yml``: defaults, every key, one readable error per mistake, and limits.

Whatever the file holds — an alias bomb, nesting a thousand deep, a megabyte of valid YAML,
tags PyYAML's constructors choke on — parsing costs little (counted in nodes composed and
values built, never timed: SPEC §7 leaves timings to bench/) and ends in a RepoConfig or a
RepoConfigError whose message is one short printable line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactor.core import config as config_module
from reactor.core import yaml_bounded
from reactor.core.config import (
    DEFAULT_CONFIG,
    DEFAULT_STAGE_TIMEOUT,
    DEFAULT_STAGES,
    MESSAGE_CHARS,
    DispatchMode,
    RepoConfig,
    RepoConfigError,
    parse_config,
    parse_duration,
)
from reactor.core.errors import ConfigError
from reactor.core.yaml_bounded import EXCERPT_CHARS, MAX_BYTES, MAX_DEPTH, MAX_NODES
from tests.prerequisites import missing

SPEC_EXAMPLE = """
stages: [planner, analyzer, executor, monitor, retrospective]
timeouts: {planner: 30m, analyzer: 2h, executor: 4h, monitor: 8h, retrospective: 1h}
start_timeout: 10m
settle: 1s
agents:                 # GitHub logins allowed to drive each stage
  planner: ['planner-bot[bot]']
scopes:                 # competitions an actor may touch (absent: all)
  executor-bot[bot]: [titanic]
maintainers: [octocat]  # may override any rule; mentioned on escalation
dispatch: [label]       # label, repository_dispatch (needs contents: write)
"""


@pytest.mark.parametrize("text", [None, "", "   \n", "# only a comment\n"])
def test_an_empty_file_gives_the_spec_defaults(text: str | None) -> None:
    config = parse_config(text)
    assert config == DEFAULT_CONFIG == RepoConfig()
    assert config.stages == DEFAULT_STAGES
    assert config.timeouts["executor"] == timedelta(hours=4)
    assert config.timeouts["monitor"] == timedelta(hours=8)
    assert config.start_timeout == timedelta(minutes=10)
    assert config.settle == timedelta(seconds=1)
    assert config.dispatch == {DispatchMode.LABEL}
    assert (config.agents, config.scopes, config.maintainers) == ({}, {}, frozenset())
    assert (config.revert_limit, config.revert_window) == (3, timedelta(hours=1))


def test_the_spec_example_parses_with_bot_logins_quoted() -> None:
    config = parse_config(SPEC_EXAMPLE)
    assert config.agents == {"planner": {"planner-bot[bot]"}}
    assert config.scopes == {"executor-bot[bot]": {"titanic"}}
    assert config.maintainers == {"octocat"}
    assert config.may_drive("Planner-Bot[bot]", "planner")
    assert not config.may_drive("someone", "planner")
    assert config.may_drive("someone", "executor")  # no entry for the stage: anyone
    assert config.in_scope("executor-bot[bot]", "titanic")
    assert not config.in_scope("executor-bot[bot]", "iris")
    assert config.in_scope("executor-bot[bot]", None)
    assert config.in_scope("anyone-else", "iris")
    assert config.is_maintainer("OctoCat")


def test_unquoted_bot_logins_in_a_flow_list_get_a_hint() -> None:
    with pytest.raises(RepoConfigError, match=r"line 3 .*quote logins that end in \[bot\]"):
        parse_config("agents:\n  planner:\n    [planner-bot[bot]]\n")


def test_every_key_parses() -> None:
    config = parse_config("""
stages: [Plan, build, ship]
timeouts: {build: 1h30m}
start_timeout: 90s
settle: 0s
agents: {plan: [alice], build: ['builder-bot[bot]', Bob]}
scopes: {bob: [Titanic, iris]}
maintainers: [Carol]
dispatch: [label, repository_dispatch]
revert_limit: 5
revert_window: 1d
""")
    assert config.stages == ("plan", "build", "ship")
    assert config.timeouts == {"build": timedelta(hours=1, minutes=30)}
    assert config.timeout_for("ship") == DEFAULT_STAGE_TIMEOUT
    assert config.start_timeout == timedelta(seconds=90)
    assert config.settle == timedelta(0)
    assert config.agents["build"] == {"builder-bot[bot]", "bob"}
    assert config.scopes == {"bob": {"titanic", "iris"}}
    assert config.maintainers == {"carol"}
    assert config.dispatch == set(DispatchMode)
    assert (config.revert_limit, config.revert_window) == (5, timedelta(days=1))
    assert config.stages_of("BOB") == ("build",)
    assert config.stage_index("ship") == 2 and config.stage_index("planner") is None


def test_partial_timeouts_keep_the_other_defaults() -> None:
    config = parse_config("timeouts: {executor: 6h}")
    assert config.timeouts["executor"] == timedelta(hours=6)
    assert config.timeouts["planner"] == timedelta(minutes=30)


def test_a_key_with_no_value_counts_as_absent() -> None:
    assert parse_config("agents:\nmaintainers:\n") == DEFAULT_CONFIG


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("2h", 7200), ("1s", 1), ("90s", 90), ("1h30m", 5400), ("1d", 86400),
     (" 10m ", 600), ("1h0m5s", 3605)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "4 hours", "30", "m", "1m1h", "1.5h", "-1m", "1H"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("timeouts: {executor: 4 hours}",
         "timeouts.executor: '4 hours' is not a duration like 30m or 2h"),
        ("timeouts: {executor: 30}", "timeouts.executor: 30 is not a duration like 30m or 2h"),
        ("timeouts: {deployer: 1h}", "timeouts.deployer: not a stage in stages"),
        ("timeouts: [1h]", "timeouts: must be a mapping"),
        ("start_timeout: 0s", "start_timeout: must be longer than zero"),
        ("settle: soon", "settle: 'soon' is not a duration"),
        ("stages: []", "stages: must name at least one stage"),
        ("stages: planner", "stages: must be a list"),
        ("stages: [a, b, a]", "stages[2]: 'a' is listed twice"),
        ("stages: [a, '']", "stages[1]: '' is not a stage name"),
        ("stages: [a, 'two words']", "stages[1]: 'two words' is not a stage name"),
        ("stages: [a, 3]", "stages[1]: 3 is not a stage name"),
        ("agents: {planner: alice}", "agents.planner: must be a list"),
        ("agents: {planner: ['not a login']}",
         "agents.planner[0]: 'not a login' is not a GitHub login"),
        ("agents: {nobody: [alice]}", "agents.nobody: not a stage in stages"),
        ("scopes: {alice: [a:b]}", "scopes.alice[0]: 'a:b' is not a competition name"),
        ("scopes: {'bad login!': [x]}", "scopes.bad login!: 'bad login!' is not a GitHub login"),
        ("maintainers: octocat", "maintainers: must be a list"),
        ("dispatch: [label, webhook]",
         "dispatch[1]: 'webhook' is not one of label, repository_dispatch"),
        ("dispatch: []", "dispatch: must name at least one way to hand off"),
        ("revert_limit: 0", "revert_limit: 0 is not a whole number of at least 1"),
        ("revert_limit: yes", "revert_limit: True is not a whole number"),
        ("colour: red", "colour: unknown key"),
        ("- a\n- b", "the file must be a mapping"),
        ("stages: [a\n", "not valid YAML at line 2"),
    ],
)
def test_each_mistake_is_one_line_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(RepoConfigError) as caught:
        parse_config(text)
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ConfigError)


def test_the_error_carries_the_dotted_key() -> None:
    with pytest.raises(RepoConfigError) as caught:
        parse_config("timeouts: {executor: 4 hours}")
    assert caught.value.key == "timeouts.executor"


# -- hostile text: bounded cost, bounded messages, and never another exception ----------------

LOADERS = [
    pytest.param(getattr(yaml_bounded, "_CLoader", None), id="libyaml"),
    pytest.param(yaml_bounded._PyLoader, id="python"),
]


@contextmanager
def reading_with(loader: object) -> Iterator[None]:
    """Parse with libyaml's events or PyYAML's pure-Python ones: both must hold the limits."""
    if loader is None:
        missing("PyYAML is built without libyaml here")
    with mock.patch.object(yaml_bounded, "_LOADER", loader):
        yield


def bomb(levels: int, *, key: str = "start_timeout") -> str:
    """The "billion laughs": each level a list of ten aliases to the level before."""
    lines = [f"{key}:", '- &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        lines.append(f"- &l{level} [" + ",".join([f"*l{level - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def assert_bounded(error: RepoConfigError) -> None:
    message = str(error)
    assert len(message) <= MESSAGE_CHARS, message
    assert message.isprintable(), message  # one line; no control or bidi characters
    assert len(error.key) <= EXCERPT_CHARS


def outcome(text: str) -> RepoConfig | RepoConfigError:
    """parse_config's answer for ``text``; any exception but RepoConfigError fails the test."""
    try:
        return parse_config(text)
    except RepoConfigError as error:
        assert_bounded(error)
        return error


@dataclass
class Work:
    """What reading a file cost, counted rather than timed (the same on any machine)."""

    composed: int = 0  # YAML nodes composed (an alias is one; the budget charges it more)
    constructed: int = 0  # Python values built from the nodes (where aliases expand)


@contextmanager
def counting_work() -> Iterator[Work]:
    """The work of the reads within the block (read the counts after it)."""
    work = Work()
    compose = yaml_bounded._BoundedComposer.compose_node
    construct = yaml.constructor.BaseConstructor.construct_object

    def composing(self: Any, parent: Any, index: Any) -> Any:
        work.composed += 1
        return compose(self, parent, index)

    def constructing(self: Any, node: Any, deep: bool = False) -> Any:
        work.constructed += 1
        return construct(self, node, deep)

    with mock.patch.object(yaml_bounded._BoundedComposer, "compose_node", composing), \
            mock.patch.object(yaml.constructor.BaseConstructor, "construct_object",
                              constructing):
        yield work


BOMB5_NODES = 58  # bomb(5) as written: 3 for the key and lists, 11 for level 0, 11 per level


@pytest.mark.parametrize("loader", LOADERS)
def test_an_alias_bomb_is_refused_while_composing_with_a_short_message(loader: object) -> None:
    """Five levels (10**5 strings, 800 KB as a repr) from a file of a couple of hundred bytes:
    refused having composed no more than the file's own nodes, none of what they expand to."""
    text = bomb(5)
    assert len(text.encode()) < 300
    with reading_with(loader), counting_work() as work:
        with pytest.raises(RepoConfigError) as caught:
            parse_config(text)
    assert str(caught.value).startswith(f"aliases expand to more than {MAX_NODES:,} values")
    assert len(str(caught.value)) < 1000
    assert 0 < work.composed <= BOMB5_NODES and work.constructed == 0


def test_the_work_counts_see_a_file_read_in_full() -> None:
    """The counts :func:`counting_work` gives see a valid file's every node and value."""
    with counting_work() as work:
        parse_config("maintainers: [alice, bob]")
    assert (work.composed, work.constructed) == (5, 5)  # a mapping, its key, a list of two


@pytest.mark.parametrize("loader", LOADERS)
def test_nine_levels_of_aliases_cost_no_more_than_five(loader: object) -> None:
    """The refusal comes at the same node whatever follows: four more levels (10**9 more
    values) add no work at all."""
    with reading_with(loader), counting_work() as five:
        outcome(bomb(5, key="maintainers"))
    with reading_with(loader), counting_work() as nine:
        error = outcome(bomb(9, key="maintainers"))
    assert isinstance(error, RepoConfigError)
    assert "aliases expand to more than" in str(error)
    assert nine == five and five.composed <= BOMB5_NODES and five.constructed == 0


def test_aliases_within_the_budget_are_quoted_by_an_excerpt_never_a_repr() -> None:
    """Three levels (1,110 values) pass the budget; the error quotes ≤ 80 characters of them."""
    with pytest.raises(RepoConfigError) as caught:
        parse_config(bomb(3))
    message = str(caught.value)
    assert message.startswith("start_timeout: [[")
    assert message.endswith("is not a duration like 30m or 2h")
    assert len(message) <= len("start_timeout: ") + EXCERPT_CHARS + 40


def test_an_alias_to_a_value_that_holds_it_is_refused() -> None:
    with pytest.raises(RepoConfigError, match=r"alias \*a repeats a value that holds it"):
        parse_config("maintainers: &a [octocat, *a]")


def test_aliases_that_repeat_small_values_are_fine() -> None:
    config = parse_config("agents:\n  planner: &bots [alice, bob]\n  executor: *bots\n")
    assert config.agents == {"planner": {"alice", "bob"}, "executor": {"alice", "bob"}}


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(
    "text",
    [
        "[" * 1000 + "]" * 1000,
        "stages: " + "{a: " * 1000 + "}" * 1000,
        "- " * 1000 + "x",
        "".join(" " * i + "a:\n" for i in range(300)),  # block mappings, 300 deep (45 KB)
    ],
    ids=["flow-lists", "flow-mappings", "block-lists", "block-mappings"],
)
def test_deep_nesting_is_a_config_problem_not_a_recursion_error(loader: object, text: str) -> None:
    with reading_with(loader), pytest.raises(RepoConfigError) as caught:
        parse_config(text)
    assert re.search(rf"nested more than {MAX_DEPTH} levels deep|maximum nesting depth",
                     str(caught.value))


def test_twenty_levels_of_nesting_are_allowed() -> None:
    assert isinstance(outcome("stages: " + "[" * 19 + "]" * 19), RepoConfigError)  # a type error
    assert "nested" not in str(outcome("stages: " + "[" * 19 + "]" * 19))


def test_more_values_than_the_budget_are_refused() -> None:
    text = "maintainers: [" + ",".join("a" for _ in range(MAX_NODES)) + "]"
    assert len(text.encode()) < MAX_BYTES
    with pytest.raises(RepoConfigError, match=f"the file holds more than {MAX_NODES:,} values"):
        parse_config(text)


def huge_valid_config(size: int) -> str:
    """A valid config of about ``size`` bytes: a long list of maintainers, 13 bytes a line."""
    return "maintainers:\n" + "".join(f"  - m{i:07d}\n" for i in range(size // 13))


def test_a_huge_valid_config_is_refused_by_size_before_it_is_read() -> None:
    text = huge_valid_config(960_000)
    assert 950_000 < len(text) < 970_000
    never = mock.Mock(side_effect=AssertionError("the YAML reader was started"))
    with mock.patch.object(yaml_bounded, "_LOADER", never), \
            pytest.raises(RepoConfigError) as caught:
        parse_config(text)
    never.assert_not_called()
    kib = -(-len(text) // 1024)
    assert str(caught.value) == f"the file is {kib} KiB; the limit is 64 KiB"


def test_the_size_limit_counts_bytes_not_characters() -> None:
    assert parse_config("# " + "x" * (MAX_BYTES - 3)) == DEFAULT_CONFIG
    with pytest.raises(RepoConfigError, match="the file is 65 KiB"):
        parse_config("# " + "é" * (MAX_BYTES // 2))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("revert_limit: !!bool maybe", "not valid YAML (KeyError: 'maybe')"),
        ("revert_limit: !!timestamp soon", "not valid YAML (AttributeError"),
        ("revert_limit: 2001-13-45", "not valid YAML (ValueError: month must be in 1..12)"),
        ("revert_limit: " + "9" * 5000, "not valid YAML (ValueError: Exceeds the limit"),
        ("revert_limit: !!float nan-ish", "not valid YAML (ValueError"),
        ("revert_limit: !!set [a]", "not valid YAML"),
        ("revert_limit: !!python/object:os.system x", "not valid YAML"),
        ("revert_limit: 1\n---\nrevert_limit: 2\n", "not valid YAML"),
        ("revert_limit: \x07", "not valid YAML at character 14"),
    ],
)
def test_whatever_pyyaml_raises_is_a_config_problem(text: str, message: str) -> None:
    error = outcome(text)
    assert isinstance(error, RepoConfigError)
    assert str(error).startswith(message), str(error)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("settle: 400d", "settle: '400d' is longer than 365d"),
        ("timeouts: {planner: 99999999999d}", "timeouts.planner: '99999999999d' is not a duration"),
        ("revert_window: " + "1" * 4400 + "s", "revert_window: '1111"),
    ],
)
def test_durations_stay_far_from_timedeltas_range(text: str, message: str) -> None:
    error = outcome(text)
    assert isinstance(error, RepoConfigError)
    assert str(error).startswith(message)


def test_quoted_values_are_escaped_and_cut_short() -> None:
    error = outcome('maintainers: ["\\e[31mred\\u202e' + "x" * 500 + '"]')
    assert isinstance(error, RepoConfigError)
    message = str(error)
    assert "\x1b" not in message and "\u202e" not in message
    assert "\\x1b[31mred\\u202e" in message
    quoted = message.removeprefix("maintainers[0]: ").removesuffix(
        " is not a GitHub login (like octocat or planner-bot[bot])")
    assert len(quoted) <= EXCERPT_CHARS


def test_long_keys_are_cut_short_in_the_dotted_path() -> None:
    error = outcome("scopes:\n  ? " + "b" * 5000 + "\n  : [x]\n")  # ? : past 1024 characters
    assert isinstance(error, RepoConfigError)
    assert error.key.startswith("scopes.bbbb") and len(error.key) <= len("scopes.") + 40
    assert len(str(error)) <= MESSAGE_CHARS


class _CountedName(str):
    """A stage name that counts how often it is hashed or compared (in ``counts[0]``)."""

    counts: ClassVar[list[int]] = [0]

    def __hash__(self) -> int:
        self.counts[0] += 1
        return str.__hash__(self)

    def __eq__(self, other: object) -> bool:
        self.counts[0] += 1
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other


def test_thousands_of_stages_are_checked_in_linear_time() -> None:
    """Checking n stages for repeats costs a few hashes and comparisons per stage (counted:
    a quadratic scan would cost millions here), whatever the machine."""
    stages = [f"s{i}" for i in range(3000)]
    text = "stages: [" + ", ".join([*stages, "s0"]) + "]"
    stage = config_module._stage
    _CountedName.counts[0] = 0
    with mock.patch.object(config_module, "_stage",
                           lambda value, key: _CountedName(stage(value, key))), \
            pytest.raises(RepoConfigError, match=r"stages\[3000\]: 's0' is listed twice"):
        parse_config(text)
    assert 3000 <= _CountedName.counts[0] <= 3 * 3001, _CountedName.counts[0]
    error = outcome(text.replace(", s0]", "]") + "\ntimeouts: {x: 1h}")
    assert isinstance(error, RepoConfigError)
    assert "(s0, s1, s2, s3, s4, s5, …)" in str(error)


# -- Hypothesis: any text, any structure, only RepoConfig or a bounded RepoConfigError ---------

KNOWN_KEYS = ["stages", "timeouts", "start_timeout", "settle", "agents", "scopes",
              "maintainers", "dispatch", "revert_limit", "revert_window"]
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=60)
           | st.sampled_from(["planner", "executor", "1h", "30m", "0s", "label", "octocat",
                              "bot[bot]", "a:b", "400d"]))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(
        st.sampled_from(["planner", "executor", "octocat", "x"]) | st.text(max_size=10),
        inner, max_size=6),
    max_leaves=30,
)
TOKENS = ["stages", "agents", "timeouts", "maintainers", "settle", "planner", "octocat", "1h",
          ": ", "- ", "[", "]", "{", "}", ", ", "\n", "  ", "&a ", "&b ", "*a", "*b", "<<: ",
          "? ", "!!int ", "!!timestamp ", "!!binary ", "!!set ", "!!map ", "!!seq ", "!foo ",
          "'q'", '"\\e\\u202e"', "2001-13-45", "99999999999d", "---\n", "...\n", "%YAML 1.1\n",
          "# c", "|\n", ">-\n", "\t", "\x00", "\u202e", "\ud800", "1" * 50]
SOUP = st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)
FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("loader", LOADERS)
@FUZZ
@given(text=st.text())
def test_any_text_gives_a_config_or_a_bounded_config_error(loader: object, text: str) -> None:
    with reading_with(loader):
        outcome(text)


@pytest.mark.parametrize("loader", LOADERS)
@FUZZ
@given(text=SOUP)
def test_yaml_token_soup_gives_a_config_or_a_bounded_config_error(
    loader: object, text: str
) -> None:
    with reading_with(loader):
        outcome(text)


@FUZZ
@given(data=st.dictionaries(st.sampled_from(KNOWN_KEYS), VALUES, max_size=5) | VALUES)
def test_any_structure_gives_a_config_or_a_bounded_config_error(data: object) -> None:
    outcome(yaml.safe_dump(data, allow_unicode=True))
