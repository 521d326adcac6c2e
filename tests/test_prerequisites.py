"""A missing tool skips a test on a developer's machine and fails it under ``CI=true``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import octokit
from tests.prerequisites import missing


@pytest.mark.parametrize("ci", ["true", "1", "TRUE"])
def test_under_ci_a_missing_prerequisite_fails_the_test(
    monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="CI=true and a prerequisite is missing: "
                                                    "npm is not installed"):
        missing("npm is not installed")


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_elsewhere_a_missing_prerequisite_skips_the_test_with_its_reason(
    monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match=r"^npm is not installed$"):
        missing("npm is not installed")


def test_githubs_published_examples_without_npm_fail_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The path the webhook-example tests take (SPEC §8) when npm cannot fetch them."""
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(octokit, "CACHE", tmp_path / "empty-cache")
    monkeypatch.setattr(octokit.shutil, "which", lambda name: None)
    octokit.webhook_examples.cache_clear()
    try:
        with pytest.raises(pytest.fail.Exception, match="npm is not installed"):
            octokit.webhook_examples()
    finally:
        octokit.webhook_examples.cache_clear()
