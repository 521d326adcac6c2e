"""What a test needs from the machine beyond Python, and what happens when it is missing.

Some tests need a tool a developer's machine may lack: npm and its registry (GitHub's
published webhook examples and OpenAPI descriptions, :mod:`tests.octokit`), Debian's
``chromium`` (the dashboard in a real browser), a ``redis-server`` binary, PyYAML built with
libyaml. Each such test calls :func:`missing` when its tool is not there. On a developer's
machine the test is then skipped, with the reason. Under ``CI=true`` (``.ci/run`` sets it, as
most CI services do) it fails instead: a CI run exists to check everything, and a skip there
would let a run pass that never checked what the test names.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """Whether the tests run under CI (``CI`` set to ``true`` or ``1``)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1"}


def missing(reason: str) -> NoReturn:
    """The test cannot run here because of ``reason``: skip it, or fail it under CI."""
    if in_ci():
        pytest.fail(f"CI=true and a prerequisite is missing: {reason}", pytrace=False)
    pytest.skip(reason)
