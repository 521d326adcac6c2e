"""The README's examples work as printed."""

from __future__ import annotations

from pathlib import Path

from reactor.core.config import parse_config
from reactor.core.transitions import TRANSITIONS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _block(opening: str) -> str:
    start = README.index(opening) + len(opening)
    return README[start:README.index("```", start)]


def test_the_config_example_parses() -> None:
    example = _block("```yaml\n")
    assert example.startswith("stages:")
    config = parse_config(example)
    assert config.maintainers == frozenset({"octocat"})
    assert config.may_drive("planner-bot[bot]", "planner")


def test_the_state_diagram_is_the_lifecycle_table() -> None:
    edges = {
        tuple(line.strip().split(" --> "))
        for line in _block("```mermaid\n").splitlines() if "-->" in line and "[*]" not in line
    }
    table = {(before.value, after.value) for before, nexts in TRANSITIONS.items()
             for after in nexts}
    assert edges == table
