"""Secrets never leave the process: log lines and Sentry events are scrubbed."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import sentry_sdk
import sentry_sdk.envelope
import sentry_sdk.transport
from redis.asyncio import Redis

from reactor.github.tokens import InstallationToken, TokenCache
from reactor.process.observability import (
    REDACTED,
    SecretRegistry,
    before_send,
    configure_logging,
    init_sentry,
    redact,
    register_secret,
    register_settings,
)
from reactor.process.settings import Settings
from reactor.store import keys
from tests.test_settings import RSA_PEM

LONG_TOKEN = "ghs_" + "A1b2C3d4" * 64  # GitHub's newer installation tokens run to ~520 chars
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjMifQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


@pytest.mark.parametrize(
    "secret", [LONG_TOKEN, "ghp_" + "x" * 36, JWT, SIGNATURE, RSA_PEM, "token user:alice-secret"]
)
def test_redact_removes_secrets_from_text(secret: str) -> None:
    text = redact(f"before {secret} after")
    assert secret not in text and REDACTED in text
    assert text.startswith("before ") and text.endswith(" after")


def test_sentry_events_are_scrubbed_by_key_and_by_value() -> None:
    event = {
        "request": {"headers": {"Authorization": "token abc", "X-Hub-Signature-256": SIGNATURE,
                                "X-GitHub-Event": "issues"}},
        "extra": {"private_key": RSA_PEM, "note": f"fetched {LONG_TOKEN}"},
        "breadcrumbs": [{"message": f"Bearer {JWT}"}],
    }
    scrubbed = before_send(event, {})
    headers = scrubbed["request"]["headers"]
    assert headers["Authorization"] == REDACTED and headers["X-Hub-Signature-256"] == REDACTED
    assert headers["X-GitHub-Event"] == "issues"
    assert scrubbed["extra"]["private_key"] == REDACTED
    assert LONG_TOKEN not in scrubbed["extra"]["note"]
    assert JWT not in scrubbed["breadcrumbs"][0]["message"]


def test_log_lines_carry_context_and_no_token(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info")
    logging.getLogger("reactor.test").info(
        "token refreshed: %s", LONG_TOKEN, extra={"delivery": "d-1", "installation": 7}
    )
    line = capsys.readouterr().err.strip()
    assert "delivery=d-1" in line and "installation=7" in line
    assert LONG_TOKEN not in line and REDACTED in line


def new_style_token() -> str:
    """GitHub's newer installation token: ``ghs_<app id>_<JWT-ish>``, 520 characters with '.'
    and '-' after the first separator."""
    return ("ghs_1001_eyJhbGciOiJFUzI1NiJ9." + "Zm9v-YmFy_YmF6.cXV4" * 30)[:520]


def fragments(secret: str, size: int = 12) -> list[str]:
    """Every ``size``-character piece of ``secret``: none may survive redaction."""
    return [secret[i:i + size] for i in range(len(secret) - size + 1)]


def test_a_new_style_520_character_token_is_redacted_whole(
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = new_style_token()
    assert len(token) == 520 and "." in token and "-" in token
    configure_logging("info")
    logging.getLogger("reactor.test").warning("GitHub refused %s; retrying", token)
    line = capsys.readouterr().err
    assert "GitHub refused [redacted]; retrying" in line
    assert not [piece for piece in fragments(token) if piece in line]


def test_secrets_the_process_knows_are_redacted_by_value(
    capsys: pytest.CaptureFixture[str],
) -> None:
    webhook_secret, redis_password = "webhook secret of this test", "redis-password-of-this-test"
    settings = Settings(webhook_secrets=(webhook_secret.encode(),), private_key=RSA_PEM,
                        redis_url=f"redis://:{redis_password}@127.0.0.1:6379/0")
    assert init_sentry(settings, component="worker") is False  # no DSN: registers all the same
    opaque = "v1." + secrets.token_hex(20)  # an older token shape that no pattern knows
    register_secret(opaque)
    configure_logging("info")
    logging.getLogger("reactor.test").warning(
        "%s %s %s %r", webhook_secret, redis_password, opaque, RSA_PEM
    )
    line = capsys.readouterr().err
    for secret in (webhook_secret, redis_password, opaque, RSA_PEM.splitlines()[1]):
        assert secret not in line
    assert line.count(REDACTED) == 4


def test_urls_in_log_lines_lose_their_credentials() -> None:
    text = redact("cannot reach redis://:hunter2-pw@10.0.0.5:6379/0 (from https://bob:pw@x.io/)")
    assert text == "cannot reach redis://:***@10.0.0.5:6379/0 (from https://bob:***@x.io/)"


def test_the_registry_keeps_the_newest_tokens_and_every_pinned_secret() -> None:
    registry = SecretRegistry(capacity=2)
    registry.add("pinned-webhook-secret", pinned=True)
    for token in ("token-number-1", "token-number-2", "token-number-3"):
        registry.add(token)
    registry.add("short")  # shorter than MIN_SECRET_CHARS: patterns only
    text = registry.redact("pinned-webhook-secret token-number-1 token-number-3 short")
    assert text == f"{REDACTED} token-number-1 {REDACTED} short"


async def test_installation_tokens_are_registered_when_minted_and_when_read(
    redis_url: str,
) -> None:
    minted, read = ("v1." + secrets.token_hex(20) for _ in range(2))
    expires = datetime.now(UTC) + timedelta(hours=1)

    async def fetch(installation_id: int) -> InstallationToken:
        return InstallationToken(token=minted, expires_at=expires)

    client = Redis.from_url(redis_url)
    try:
        assert await TokenCache(client, fetch).get(1) == minted
        await client.hset(keys.installation_token(2),  # as another process caches one
                          mapping={"token": read, "expires_at": repr(expires.timestamp())})
        assert await TokenCache(client, fetch).get(2) == read
    finally:
        await client.aclose()
    assert redact(f"{minted} {read}") == f"{REDACTED} {REDACTED}"


class CapturingTransport(sentry_sdk.transport.Transport):
    """Keeps the events Sentry would send, instead of sending them."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: sentry_sdk.envelope.Envelope) -> None:
        event = envelope.get_event()
        if event is not None:
            self.events.append(dict(event))


@pytest.fixture
def sentry_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Sentry as ``init_sentry`` starts it, with its events kept here rather than sent."""
    transport = CapturingTransport()
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # earlier tests' capsys streams
    real_init = sentry_sdk.init
    monkeypatch.setattr(sentry_sdk, "init", lambda **options: real_init(
        **options, transport=transport))
    settings = Settings(sentry_dsn="https://public@sentry.example/1")
    assert init_sentry(settings, component="web")
    yield transport.events
    real_init(dsn="")  # Sentry is off again for the tests that follow


def fail_with(token: str, bare: str) -> None:
    held = {"token": token}  # noqa: F841 - frame variables Sentry used to capture
    raise RuntimeError(f"GitHub refused {token} ({len(bare)} bytes)")


def test_sentry_events_carry_no_token_and_no_frame_variables(
    sentry_events: list[dict[str, Any]],
) -> None:
    token, bare = new_style_token(), "an-opaque-value-" + secrets.token_hex(16)
    try:
        fail_with(token, bare)
    except RuntimeError:
        logging.getLogger("reactor.test").exception("job failed with %s", token)
    sentry_sdk.flush()
    assert len(sentry_events) == 1
    sent = orjson.dumps(sentry_events[0], default=str).decode()
    assert "GitHub refused [redacted]" in sent and "fail_with" in sent
    assert bare not in sent and not [piece for piece in fragments(token) if piece in sent]
    frames = [frame for value in sentry_events[0]["exception"]["values"]
              for frame in value["stacktrace"]["frames"]]
    assert frames and not [frame for frame in frames if "vars" in frame]


def test_the_redis_and_sentinel_passwords_in_the_settings_are_redacted_by_value() -> None:
    settings = Settings.parse({
        "REDIS_URL": "redis://:url-password-7f3a@mymaster/0", "REDIS_SENTINELS": "10.0.0.7",
        "REDIS_SENTINEL_MASTER": "mymaster", "REDIS_SENTINEL_PASSWORD": "sentinel-pw-91c2",
    })
    register_settings(settings)
    text = redact("auth failed with url-password-7f3a, then sentinel-pw-91c2")
    assert "url-password-7f3a" not in text and "sentinel-pw-91c2" not in text
