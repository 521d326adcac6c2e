"""Logs and Sentry, set up once per process, with secrets scrubbed from both.

Log lines are ``key=value`` pairs so they can be grepped and parsed; the delivery id,
installation, repository and issue travel as ``extra`` fields. Sentry is enabled only when
``SENTRY_DSN`` is set, with the Starlette and RQ integrations, without local variables or
request bodies, and every event passes through :func:`scrub` first.

Secrets are redacted twice over: by pattern (token prefixes, PEM keys, JWTs, signatures, the
password in a URL), and by value — the webhook secrets, the App's key, the Redis password and
every installation token this process has minted or read (:func:`register_secret`), so a
secret in a shape no pattern knows is caught as well.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from reactor.process.settings import Settings, mask_url

CONTEXT_FIELDS = ("delivery", "event", "installation", "repo", "issue", "job")

# Things that must never leave the process: tokens (classic, fine-grained, App, installation —
# GitHub's newer ones are ~520 characters with '.' and '-' in them), JWTs, PEM keys (whole or
# cut short), webhook signatures and Authorization headers.
_SECRET_PATTERNS = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
               re.S),
    re.compile(r"(?<![A-Za-z0-9])(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9._-]{10,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    re.compile(r"\bsha(?:1|256)=[0-9a-fA-F]{40,64}\b"),
    re.compile(r"(?i)\b(token|bearer)\s+[A-Za-z0-9_.:\-\[\]]{8,}"),
)
_SECRET_KEYS = re.compile(
    r"(?i)(authorization|token|secret|private_key|password|signature|cookie|dsn)"
)
REDACTED = "[redacted]"
MIN_SECRET_CHARS = 8  # a shorter value would redact ordinary words; patterns still apply
MAX_RECENT_SECRETS = 512  # installation tokens remembered, newest first; a re-read re-adds one


class SecretRegistry:
    """Secret values this process knows, redacted wherever they appear in text.

    Values from the settings stay for the life of the process; installation tokens rotate
    hourly, so only the newest :data:`MAX_RECENT_SECRETS` are kept. :meth:`redact` reads a
    tuple rebuilt on each change, so Sentry's thread may redact while a token is added.
    """

    def __init__(self, capacity: int = MAX_RECENT_SECRETS) -> None:
        self._capacity = capacity
        self._pinned: dict[str, None] = {}
        self._recent: dict[str, None] = {}
        self._values: tuple[str, ...] = ()

    def add(self, value: str, *, pinned: bool = False) -> None:
        if len(value) < MIN_SECRET_CHARS or value in self._pinned or value in self._recent:
            return
        if pinned:
            self._pinned[value] = None
        else:
            self._recent[value] = None
            while len(self._recent) > self._capacity:
                del self._recent[next(iter(self._recent))]
        # Longest first, so a whole key goes before any part of it that is also known.
        self._values = tuple(sorted((*self._pinned, *self._recent), key=len, reverse=True))

    def redact(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text


_registry = SecretRegistry()


def register_secret(value: str) -> None:
    """Redact ``value`` from every log line and Sentry event of this process from now on."""
    _registry.add(value)


def register_settings(settings: Settings) -> None:
    """Redact the secrets in ``settings`` (webhook secrets, the App's key, the passwords of
    Redis and of its Sentinels)."""
    for secret in settings.webhook_secrets:
        _registry.add(secret.decode(errors="replace"), pinned=True)
    if settings.private_key is not None:
        _registry.add(settings.private_key, pinned=True)
    password = urlsplit(settings.redis_url).password if settings.redis_url else None
    for known in (password, settings.redis_sentinel_password):
        if known:
            _registry.add(known, pinned=True)


def redact(text: str) -> str:
    """``text`` with every known secret and every secret-looking string replaced."""
    text = _registry.redact(text)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return mask_url(text)


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
    """Sentry's last look at an event: frame variables dropped, everything else scrubbed.

    ``init_sentry`` turns local variables off; dropping any that still arrive keeps a bare
    token held in some frame from leaving even if an integration adds them back.
    """
    for frame in _frames(event):
        frame.pop("vars", None)
    return scrub(event)  # type: ignore[no-any-return]


def _frames(event: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every stack frame of the event's exceptions and threads."""
    for section in ("exception", "threads"):
        for value in (event.get(section) or {}).get("values") or ():
            yield from (value.get("stacktrace") or {}).get("frames") or ()


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


# Libraries that log every HTTP call or job at INFO: heard only at LOG_LEVEL=debug.
CHATTY_LOGGERS = ("httpx", "httpcore", "rq.worker", "rq.scheduler", "rq.queue")


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel({"trace": "DEBUG", "warn": "WARNING", "fatal": "CRITICAL"}.get(
        level.lower(), level.upper()))
    chatty = logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(chatty)


def init_sentry(settings: Settings, *, component: str) -> bool:
    """Start Sentry for ``component`` (``web`` or ``worker``) when SENTRY_DSN is set.

    Both processes call this once at start-up with their settings, so it also registers the
    settings' secrets for redaction (:func:`register_settings`), with or without Sentry.
    """
    register_settings(settings)
    if not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.rq import RqIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        integrations=[StarletteIntegration(), RqIntegration()],
        before_send=before_send,  # type: ignore[arg-type]
        # No PII is Sentry's default (its ``send_default_pii`` option is deprecated).
        include_local_variables=False,  # a frame may hold a bare token or key
        max_request_body_size="never",  # request bodies are tenants' text
        server_name=component,
    )
    return True
