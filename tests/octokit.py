"""GitHub's own published data, fetched from npm by the tests and cached, never committed.

``npm pack`` downloads a pinned package into ``.cache/octokit/`` at the repository root; a
test that needs it is skipped with a reason when npm is unavailable and nothing is cached.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "octokit"
WEBHOOKS_EXAMPLES = ("@octokit/webhooks-examples", "7.6.1")


def package_dir(name: str, version: str) -> Path:
    """The unpacked npm package ``name@version`` (downloaded once into the cache)."""
    target = CACHE / f"{name.replace('/', '__')}-{version}"
    if (target / "package" / "package.json").is_file():
        return target / "package"
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"npm is not installed and {name}@{version} is not cached")
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [npm, "pack", f"{name}@{version}", "--silent", "--pack-destination", str(target)],
        capture_output=True, text=True, timeout=300,
    )
    if done.returncode != 0:
        pytest.skip(f"npm pack {name}@{version} failed: {done.stderr.strip()[:200]}")
    tarball = target / done.stdout.strip().splitlines()[-1]
    with tarfile.open(tarball) as archive:
        archive.extractall(target, filter="data")
    tarball.unlink()
    return target / "package"


@cache
def webhook_examples() -> tuple[tuple[str, dict[str, Any]], ...]:
    """Every (event name, payload) example GitHub publishes for github.com."""
    index = package_dir(*WEBHOOKS_EXAMPLES) / "api.github.com" / "index.json"
    return tuple(
        (entry["name"], example)
        for entry in json.loads(index.read_text())
        for example in entry["examples"]
    )


def webhook_example(event: str, action: str | None = None) -> dict[str, Any]:
    """The first published example of ``event`` (with ``action``, when given)."""
    for name, payload in webhook_examples():
        if name == event and (action is None or payload.get("action") == action):
            return payload
    raise LookupError(f"no published example of {event}.{action}")
