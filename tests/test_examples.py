"""``examples/agent-workflow.yml``, the agent as a GitHub Actions workflow: actionlint finds
nothing wrong with it (and does find a mistake planted in a copy, so the check checks), and it
keeps the promises the README makes for it — it runs on ``status:starting`` for its own
``agent:`` label only, queues runs of one issue instead of cancelling them, moves its own
status labels with its own identity, and never starts a stage."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.prerequisites import missing

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WORKFLOW = EXAMPLES / "agent-workflow.yml"


def actionlint() -> str:
    """The actionlint binary the dev extras install beside this Python, else one on PATH."""
    beside = Path(sys.executable).parent / "actionlint"
    found = str(beside) if beside.exists() else shutil.which("actionlint")
    if found is None:
        missing("actionlint is not installed (pip install -e '.[dev]' installs it)")
    return found


def lint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([actionlint(), "-no-color", *map(str, paths)], capture_output=True,
                          text=True, timeout=60)


def workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def test_actionlint_finds_nothing_wrong_with_the_examples() -> None:
    examples = sorted(EXAMPLES.glob("*.yml"))
    assert WORKFLOW in examples
    done = lint(*examples)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_finds_a_mistake_in_a_broken_copy(tmp_path: Path) -> None:
    broken = tmp_path / "agent-workflow.yml"
    broken.write_text(WORKFLOW.read_text().replace("steps.token.outputs", "steps.tokn.outputs"))
    done = lint(broken)
    assert done.returncode == 1 and '"tokn" is not defined' in done.stdout, done.stdout


def test_it_runs_on_status_starting_for_its_own_stage_only() -> None:
    flow = workflow()
    assert flow[True] == {"issues": {"types": ["labeled"]}}  # YAML 1.1 reads `on` as True
    (job,) = flow["jobs"].values()
    condition = " ".join(job["if"].split())
    assert condition == ("github.event.label.name == 'status:starting' && "
                         "contains(github.event.issue.labels.*.name, 'agent:executor')")


def test_runs_of_one_issue_queue_instead_of_cancelling() -> None:
    (job,) = workflow()["jobs"].values()
    assert job["concurrency"]["cancel-in-progress"] is False
    assert "github.event.issue.number" in job["concurrency"]["group"]
    assert "concurrency" not in workflow()  # on the job: skipped runs never enter the group


def test_it_moves_its_own_status_with_its_own_token_and_never_starts_a_stage() -> None:
    (job,) = workflow()["jobs"].values()
    writes = [step for step in job["steps"] if "gh issue edit" in step.get("run", "")]
    assert [step["name"] for step in writes] == [
        "Claim (starting → running)", "Report completed (running → completed)",
        "Report error (running → error)"]
    for step in writes:
        assert step["env"]["GH_TOKEN"] == "${{ steps.token.outputs.token }}", step["name"]
    added = {label for step in writes
             for label in re.findall(r"--add-label (\S+)", step["run"])}
    assert added == {"status:running", "status:completed", "status:error"}
    assert "GITHUB_TOKEN" not in "".join(str(step) for step in job["steps"])
    assert workflow()["permissions"] == {"contents": "read"}
