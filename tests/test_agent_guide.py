"""``reactor agent-guide``: the standing instruction for one stage's agent says what the rules
enforce — every rule id of :class:`Rule` answered, exactly the lifecycle table's moves — with
the repository's config in it; the command reads the config from a file, through the App or
not at all, and bad input is one line and a non-zero exit."""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from pathlib import Path

import pytest

from ghsandbox.config import SandboxConfig
from ghsandbox.testing import run_sandbox
from reactor.core.actions import Rule
from reactor.core.comments import span
from reactor.core.config import DEFAULT_CONFIG, parse_config
from reactor.core.guide import MOVES, RULES, UnknownStage, agent_guide, facts, moves, rule_rows
from reactor.core.labels import ReactorLabel
from reactor.core.rules import normalise_title
from reactor.core.rules.handoff import EVENT_TYPE, issue_title
from reactor.core.transitions import TRANSITIONS
from tests.test_cli import clean_env, reactor

CONFIG = """\
stages: [planner, executor, monitor]
timeouts: {executor: 90m}
start_timeout: 5m
settle: 2s
agents:
  executor: ["executor-bot[bot]"]
scopes:
  "executor-bot[bot]": [titanic]
maintainers: [octocat]
dispatch: [label, repository_dispatch]
revert_limit: 4
revert_window: 2h
"""
LIFECYCLE = {(before, after) for before, allowed in TRANSITIONS.items() for after in allowed}
MOVE_ROW = re.compile(r"^\| `(\w+)` \| `(\w+)` \|", re.M)
RULE_ROW = re.compile(r"^\| (R\d+) ", re.M)


def test_every_rule_id_has_its_duty_and_answer_in_the_table() -> None:
    assert {rule.value for rule in Rule} <= set(RULES)
    text = agent_guide(DEFAULT_CONFIG, "executor")
    assert RULE_ROW.findall(text) == [rule.value for rule in Rule]
    for row in rule_rows(facts(DEFAULT_CONFIG, "executor", None)):
        assert "(not described)" not in (row.duty, row.answer), row.rule
        assert f"| {row.rule.value} {row.rule.name_text} | {row.duty} | {row.answer} |" in text


def test_the_moves_listed_are_exactly_the_lifecycle_table() -> None:
    assert set(MOVES) == LIFECYCLE
    for stage in DEFAULT_CONFIG.stages:
        text = agent_guide(DEFAULT_CONFIG, stage)
        listed = [(before, after) for before, after in MOVE_ROW.findall(text)]
        assert len(listed) == len(set(listed)) and set(listed) == LIFECYCLE, stage
    shown = moves(facts(DEFAULT_CONFIG, "executor", None))
    assert {(m.before, m.after) for m in shown} == LIFECYCLE
    assert all("(not described)" not in m.when for m in shown)


def test_the_agent_moves_its_own_status_and_the_reactor_starts_every_stage_but_the_first() -> None:
    mine = {(m.before.value, m.after.value) for m in moves(facts(DEFAULT_CONFIG, "executor", None))
            if m.who == "you"}
    assert {("starting", "running"), ("running", "completed"), ("running", "error")} <= mine
    assert not any(after == "starting" for _, after in mine)
    first = agent_guide(DEFAULT_CONFIG, "planner")
    later = agent_guide(DEFAULT_CONFIG, "analyzer")
    assert "| `idle` | `starting` | you or a human |" in first
    assert "| `idle` | `starting` | the reactor | on hand-off, when `planner` completes" in later


def test_the_config_is_in_the_text() -> None:
    config = parse_config(CONFIG)
    text = agent_guide(config, "executor", comp="titanic", source="`reactor.yml`")
    assert "planner → **executor** → monitor." in text
    assert "`running` at most 1h 30m, `starting` at most 5m" in text
    assert "settle window (2s)" in text
    assert "only `executor-bot[bot]` (or a maintainer) may change `status:`" in text
    assert "only the competitions in your scope (`executor-bot[bot]`: titanic)" in text
    assert "ask @octocat in a comment" in text
    assert "After 4 reverts of one issue within 2h" in text
    assert f"`repository_dispatch` event of type `{EVENT_TYPE}`" in text
    assert "hands off to `monitor`" in text
    assert "earlier stage (planner)" in text
    assert "from `reactor.yml`" in text
    assert "outside the scope" not in text


def test_the_defaults_name_no_one_and_warn_of_a_competition_outside_the_agents_scope() -> None:
    text = agent_guide(DEFAULT_CONFIG, "retrospective")
    assert "anyone who can label issues may change `status:`" in text
    assert "a maintainer (none is configured" in text
    assert "repository_dispatch" not in text
    assert "`running` at most 1h, `starting` at most 10m" in text
    assert "hands off." in text  # the last stage hands off to no one
    scoped = agent_guide(parse_config(CONFIG), "executor", comp="house")
    assert "Note: `house` is outside the scope of `executor-bot[bot]`" in scoped


def test_a_competition_parent_issue_is_named_only_when_the_config_has_one() -> None:
    assert "parent issue" not in agent_guide(DEFAULT_CONFIG, "executor")
    nested = agent_guide(parse_config("chain: [dependencies, sub_issues]"), "executor")
    assert "nor take it out of its competition's parent issue (`reactor:competition`)" in nested
    assert "a stage taken out of its parent is put back" in nested


def test_titles_and_duplicates_read_as_the_reactor_reads_them() -> None:
    text = agent_guide(DEFAULT_CONFIG, "executor", comp="titanic")
    assert f"title the new issue `{issue_title('titanic', 'executor', '<task>')}`" in text
    example = issue_title("titanic", "executor", "Train the model!")
    assert f"(`{example}` reads as `{normalise_title(example)}`)" in text
    assert "--label agent:executor --label comp:titanic" in text


def test_the_reactor_labels_errors_and_escalation_are_spelled_out() -> None:
    text = agent_guide(DEFAULT_CONFIG, "executor")
    for label in ReactorLabel:
        assert f"`{label.value}`" in text
    assert "move to `status:error` and say what failed" in text
    assert "Escalate instead of retrying forever" in text
    assert "until a maintainer removes the label, which hands it back" in text
    assert "never set `status:starting` on its issue and never create its issue" in text
    assert f"`running` at most {span(timedelta(hours=4))}" in text


def test_an_unknown_stage_is_refused() -> None:
    with pytest.raises(UnknownStage, match="unknown stage 'deployer': the stages are planner"):
        agent_guide(DEFAULT_CONFIG, "deployer")


# -- the command ---------------------------------------------------------------------------------


def test_the_command_prints_the_guide_from_the_defaults_or_a_file(tmp_path: Path) -> None:
    done = reactor("agent-guide", "--stage", "executor", env=clean_env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == agent_guide(
        DEFAULT_CONFIG, "executor",
        source="the default config (no `.github/reactor.yml` read)")
    config = tmp_path / "reactor.yml"
    config.write_text(CONFIG)
    done = reactor("agent-guide", "--stage", "Executor", "--comp", "Titanic", "--config",
                   str(config), env=clean_env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == agent_guide(parse_config(CONFIG), "executor", comp="titanic",
                                      source=f"`{config}`")
    helped = reactor("agent-guide", "--help", env=clean_env())
    assert helped.returncode == 0 and "--stage S" in helped.stdout


@pytest.mark.parametrize(("args", "code", "error"), [
    (("--stage", "deployer"), 1, "reactor: unknown stage 'deployer': the stages are planner, "
                                 "analyzer, executor, monitor, retrospective\n"),
    (("--stage", "executor", "--config", "missing.yml"), 1,
     "reactor: cannot read missing.yml: No such file or directory\n"),
    (("--stage", "executor", "--config", "bad.yml"), 1,
     "reactor: bad.yml: stages: must be a list, e.g. [a, b], not 'nope'\n"),
    (("--stage", "executor", "--config", "binary.yml"), 1, "reactor: binary.yml: not UTF-8 text\n"),
])
def test_bad_input_is_one_line_and_a_non_zero_exit(
    tmp_path: Path, args: tuple[str, ...], code: int, error: str,
) -> None:
    (tmp_path / "bad.yml").write_text("stages: nope\n")
    (tmp_path / "binary.yml").write_bytes(b"\xff\xfe\x00")
    done = reactor("agent-guide", *args, env=clean_env(), cwd=tmp_path)
    assert (done.returncode, done.stderr, done.stdout) == (code, error, "")


@pytest.mark.parametrize("args", [
    ("--stage", "executor", "--comp", "a:b"),
    ("--stage", "executor", "--repo", "nope"),
    ("--stage", "executor", "--repo", "a/b", "--config", "x"),
    ("--comp", "titanic"),
])
def test_a_bad_argument_is_a_usage_error(args: tuple[str, ...]) -> None:
    done = reactor("agent-guide", *args, env=clean_env())
    assert done.returncode == 2 and "usage:" in done.stderr and done.stdout == ""


def test_with_repo_it_reads_the_config_in_force_through_the_app(
    redis_url: str, tmp_path: Path,
) -> None:
    with run_sandbox(SandboxConfig.generate()) as sandbox:
        env = {**clean_env(), **sandbox.env(), "REDIS_URL": redis_url}
        with sandbox.client() as client:
            for name, text in (("agents", CONFIG), ("broken", "stages: nope\n")):
                client.create_repo("acme", name)
                put = client.as_user("alice", "PUT",
                                     f"/repos/acme/{name}/contents/.github/reactor.yml",
                                     json={"message": "config",
                                           "content": base64.b64encode(text.encode()).decode()})
                assert put.status_code == 201, put.text
            client.create_repo("acme", "plain")
        done = reactor("agent-guide", "--repo", "acme/agents", "--stage", "executor",
                       env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        source = "the config of acme/agents (its `.github/reactor.yml`, or the defaults)"
        assert done.stdout == agent_guide(parse_config(CONFIG), "executor", source=source)
        plain = reactor("agent-guide", "--repo", "acme/plain", "--stage", "monitor", env=env)
        assert plain.returncode == 0 and "`running` at most 8h" in plain.stdout, plain.stderr
        broken = reactor("agent-guide", "--repo", "acme/broken", "--stage", "executor", env=env)
        assert broken.returncode == 1 and broken.stderr.count("\n") == 1
        assert broken.stderr.startswith("reactor: acme/broken: .github/reactor.yml: stages:")
        elsewhere = reactor("agent-guide", "--repo", "acme/none", "--stage", "executor", env=env)
        assert elsewhere.stderr == ("reactor: the App is not installed on acme/none (or it "
                                    "does not exist)\n") and elsewhere.returncode == 1
