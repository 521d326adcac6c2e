"""Hidden HTML-comment markers: how the shell recognises the reactor's own texts on GitHub.

A comment carries ``<!-- reactor:<rule>:<issue>:<key> -->`` where ``key`` is the delivery id
of the change it answers (or a hand-off key), so a retried or replayed delivery produces the
same marker and the shell can see the comment is already there. An issue the reactor creates
carries ``<!-- reactor:create:<key> -->`` with its idempotency key, so a second worker that
lost the race finds it by searching issue bodies (SPEC §3, R5).

Keys are percent-encoded (and ``--`` split) so no input can end the HTML comment early.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

_CREATE = re.compile(r"<!-- reactor:create:(\S+) -->")
_COMMENT = re.compile(r"<!-- reactor:((?:R\d+|[a-z-]+):\d+:\S+) -->")


def _encode(key: str) -> str:
    return quote(key, safe="/:@.").replace("--", "-%2D")


def comment_marker(rule: str, issue: int, key: str) -> str:
    """The marker of the reactor's comment for ``rule`` on ``issue`` answering ``key``."""
    return f"<!-- reactor:{rule}:{issue}:{_encode(key)} -->"


def creation_marker(key: str) -> str:
    """The marker placed in the body of an issue the reactor creates."""
    return f"<!-- reactor:create:{_encode(key)} -->"


def creation_key(body: str) -> str | None:
    """The idempotency key of a reactor-created issue, or None for anyone else's issue."""
    match = _CREATE.search(body)
    return unquote(match.group(1)) if match else None


def comment_markers(body: str) -> tuple[str, ...]:
    """Every comment marker in ``body`` (the ``rule:issue:key`` part), for dedupe checks."""
    return tuple(_COMMENT.findall(body))


def creation_ref(key: str) -> str:
    """A stand-in, in a comment's text, for the number of the issue created for ``key``.

    The rules decide a hand-off before the issue exists; the applier writes ``#<number>``
    in its place once the issue is created (or found).
    """
    return f"{{{{reactor:issue:{_encode(key)}}}}}"
