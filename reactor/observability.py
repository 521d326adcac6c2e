"""Logs and Sentry, set up once per process, with secrets scrubbed from both.

Log lines are ``key=value`` pairs so they can be grepped and parsed; the delivery id,
installation, repository and issue travel as ``extra`` fields. Sentry is enabled only when
``SENTRY_DSN`` is set, with the Starlette and RQ integrations, and every event passes through
:func:`scrub` first.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from reactor.settings import Settings

CONTEXT_FIELDS = ("delivery", "event", "installation", "repo", "issue", "job")

# Things that must never leave the process: tokens (classic, fine-grained, App, installation,
# JWTs), PEM keys, webhook signatures and Authorization headers.
_SECRET_PATTERNS = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{10,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    re.compile(r"\bsha(?:1|256)=[0-9a-f]{40,64}\b"),
    re.compile(r"(?i)\b(token|bearer)\s+[A-Za-z0-9_.:\-\[\]]{8,}"),
)
_SECRET_KEYS = re.compile(
    r"(?i)(authorization|token|secret|private_key|password|signature|cookie|dsn)"
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def scrub(value: Any) -> Any:
    """A copy of ``value`` with secret-looking keys and strings redacted (for Sentry events)."""
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_KEYS.search(k) else scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(scrub(v) for v in value)
    if isinstance(value, str):
        return redact(value)
    return value


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    return scrub(event)  # type: ignore[no-any-return]


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [
            self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), f"level={record.levelname.lower()}",
            f"logger={record.name}", f"msg={record.getMessage()!r}",
        ]
        parts += [f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS if hasattr(record, k)]
        if record.exc_info:
            parts.append(f"exc={self.formatException(record.exc_info)!r}")
        return redact(" ".join(parts))


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel({"trace": "DEBUG", "warn": "WARNING", "fatal": "CRITICAL"}.get(
        level.lower(), level.upper()))


def init_sentry(settings: Settings, *, component: str) -> bool:
    """Start Sentry for ``component`` (``web`` or ``worker``) when SENTRY_DSN is set."""
    if not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.rq import RqIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        integrations=[StarletteIntegration(), RqIntegration()],
        before_send=before_send,  # type: ignore[arg-type]
        send_default_pii=False,
        server_name=component,
    )
    return True
