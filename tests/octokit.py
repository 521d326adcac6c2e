"""GitHub's own published data, fetched from npm by the tests and cached, never committed.

``npm pack`` downloads a pinned package once; the one file a test needs is kept under
``.cache/octokit/`` at the repository root (gitignored). Without npm, or when the registry
cannot be reached, :class:`Unavailable` says why, and the test is skipped with that reason —
or fails, under ``CI=true`` (:func:`tests.prerequisites.missing`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from tests.prerequisites import missing

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "octokit"
NPM_TIMEOUT_S = 300
WEBHOOKS_EXAMPLES = ("@octokit/webhooks-examples", "7.6.1", "package/api.github.com/index.json")


class Unavailable(Exception):
    """The package cannot be had here (no npm, no registry); the message says why."""


def fetch(package: str, version: str, member: str) -> Path:
    """The cached ``member`` of the npm package ``package@version``, downloaded if needed."""
    target = CACHE / f"{package.replace('/', '__')}-{version}-{Path(member).name}"
    if target.is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable(f"npm is not installed, so {package}@{version} cannot be fetched")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        done = subprocess.run(
            [npm, "pack", f"{package}@{version}", "--pack-destination", work, "--silent"],
            capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False,
        )
        tarballs = list(Path(work).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            raise Unavailable(f"npm pack {package}@{version} failed: {done.stderr.strip()[-300:]}")
        with tarfile.open(tarballs[0]) as archive:
            extracted = archive.extractfile(member)
            if extracted is None:
                raise Unavailable(f"{package}@{version} has no {member}")
            partial = target.with_suffix(".part")
            partial.write_bytes(extracted.read())
            partial.replace(target)
    return target


@cache
def webhook_examples() -> tuple[tuple[str, dict[str, Any]], ...]:
    """Every (event name, payload) example GitHub publishes for github.com."""
    try:
        index = fetch(*WEBHOOKS_EXAMPLES)
    except Unavailable as exc:
        missing(str(exc))
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
