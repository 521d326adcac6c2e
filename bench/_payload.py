"""The benchmark's webhook: GitHub's published ``issues.labeled`` example, padded and signed.

The example comes from ``@octokit/webhooks-examples`` (see ``tests/octokit.py``). It is
11.8 KB as GitHub sends it (compact JSON); SPEC §7 measures a 12 KB payload, so the issue's
body grows by a few paragraphs of an ordinary bug report, the field real issues make large.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.octokit import WEBHOOKS_EXAMPLES, webhook_example

SECRET = "bench-webhook-secret"  # noqa: S105 - signs benchmark traffic only
TARGET_BYTES = 12 * 1024

_REPORT = """

### Steps to reproduce
1. Create a branch and stage a change: `git checkout -b fix/typo && git add -p`
2. Commit with the hook installed: `git commit -m "Fix the typo in the README"`
3. Read the hook's output in the terminal.

### Expected
The hook accepts the message, since *commit* is spelled correctly in it.

### Actual
The hook rejects it with `error: unknown word 'commmit'` and exits 1. Our CI logs show the
same on every runner since the last release; pinning the previous version works around it.
"""


class PayloadUnavailable(Exception):
    """GitHub's example could not be fetched (no npm, no registry); the message says why."""


@dataclass(frozen=True, slots=True)
class Webhook:
    """A signed delivery body and where it came from."""

    body: bytes
    signature: str  # the X-Hub-Signature-256 header's value
    source: str

    def describe(self) -> str:
        return f"{self.source}, issue.body lengthened to {len(self.body)} bytes in all"


def issues_labeled(*, target: int = TARGET_BYTES) -> Webhook:
    """The published ``issues.labeled`` example grown to about ``target`` bytes, signed."""
    try:
        payload = copy.deepcopy(webhook_example("issues", "labeled"))
    except pytest.skip.Exception as exc:  # how tests/octokit.py says npm cannot fetch it
        raise PayloadUnavailable(f"GitHub's example payload is unavailable: {exc}") from None
    issue = payload["issue"]
    original = len(_compact(payload))
    while len(_compact(payload)) < target:
        issue["body"] += _REPORT
    # Each character cut shrinks the JSON by at least one byte, so this lands at or under.
    issue["body"] = issue["body"][: target - len(_compact(payload)) or None]
    body = _compact(payload)
    name, version = WEBHOOKS_EXAMPLES[:2]
    return Webhook(
        body=body,
        signature="sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
        source=f"{name}@{version} issues.labeled ({original} bytes)",
    )


def _compact(payload: dict[str, Any]) -> bytes:
    """JSON as GitHub sends it: no whitespace between tokens."""
    return json.dumps(payload, separators=(",", ":")).encode()
