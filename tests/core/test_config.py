"""``.github/reactor.yml``: defaults, every key, and one readable error per mistake."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reactor.config import (
    DEFAULT_CONFIG,
    DEFAULT_STAGE_TIMEOUT,
    DEFAULT_STAGES,
    DispatchMode,
    RepoConfig,
    RepoConfigError,
    parse_config,
    parse_duration,
)
from reactor.errors import ConfigError

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
