"""Secrets never leave the process: log lines and Sentry events are scrubbed."""

from __future__ import annotations

import logging

import pytest

from reactor.observability import REDACTED, before_send, configure_logging, redact
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
