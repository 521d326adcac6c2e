"""Settings: Probot's variable names, .env files, and one readable line per mistake."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from reactor.core.errors import ConfigError
from reactor.process.settings import Settings, mask_url


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL
        if isinstance(key, rsa.RSAPrivateKey) else serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


RSA_PEM = pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def test_probot_names_are_read() -> None:
    settings = Settings.parse({
        "APP_ID": "123", "PRIVATE_KEY": RSA_PEM, "WEBHOOK_SECRET": "new, old",
        "GITHUB_API_URL": "http://127.0.0.1:9/", "REDIS_URL": "redis://127.0.0.1:6379/0",
        "PORT": "8080", "LOG_LEVEL": "DEBUG", "WEBHOOK_PROXY_URL": "https://smee.io/abc",
    })
    assert settings.app_id == 123 and settings.has_app
    assert settings.webhook_secrets == (b"new", b"old")
    assert settings.github_api_url == "http://127.0.0.1:9"
    assert settings.port == 8080 and settings.log_level == "debug"


def test_escaped_newlines_in_an_inline_key_are_accepted() -> None:
    escaped = RSA_PEM.replace("\n", "\\n")
    assert Settings.parse({"PRIVATE_KEY": escaped}).private_key == RSA_PEM


def test_key_is_read_from_private_key_path(tmp_path: Path) -> None:
    (tmp_path / "app.pem").write_text(RSA_PEM)
    assert Settings.parse({"PRIVATE_KEY_PATH": str(tmp_path / "app.pem")}).private_key == RSA_PEM


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"APP_ID": "abc"}, "APP_ID must be the App's numeric id"),
        ({"PRIVATE_KEY": "not a key"}, "PRIVATE_KEY is not a PEM key"),
        ({"PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----"},
         "not a readable"),
        ({"PRIVATE_KEY": pem(ec.generate_private_key(ec.SECP256R1()))}, "must be an RSA key"),
        ({"PRIVATE_KEY_PATH": "/nonexistent/app.pem"}, "cannot read /nonexistent/app.pem"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must be a redis/rediss/unix URL"),
        ({"GITHUB_API_URL": "api.github.com"}, "GITHUB_API_URL must be a http/https URL"),
        ({"PORT": "99999"}, "PORT must be a number from 1 to 65535"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be one of"),
        ({"UNSAFE_DISABLE": "lease,locks"}, "UNSAFE_DISABLE names unknown mechanisms locks"),
    ],
)
def test_malformed_values_are_one_readable_line(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Settings.parse(values)
    assert "\n" not in str(caught.value)


def test_every_safety_mechanism_is_on_unless_unsafe_disable_names_it() -> None:
    assert all(Settings.parse({}).guards(m) for m in ("lease", "fresh", "journal"))
    off = Settings.parse({"UNSAFE_DISABLE": " lease, journal "})
    assert [m for m in ("lease", "fresh", "journal") if not off.guards(m)] == ["lease", "journal"]


def test_missing_requirements_name_the_variable() -> None:
    empty = Settings.parse({})
    for require, name in [(empty.require_app, "APP_ID"), (empty.require_redis_url, "REDIS_URL"),
                          (empty.require_webhook_secrets, "WEBHOOK_SECRET")]:
        with pytest.raises(ConfigError, match=name):
            require()


def test_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("APP_ID=1\nPORT=4000\n")
    settings = Settings.from_env({"PORT": "5000"}, env_file=env_file)
    assert (settings.app_id, settings.port) == (1, 5000)


def test_the_command_line_prints_one_line_and_exits_non_zero(tmp_path: Path) -> None:
    env = {**os.environ, "PRIVATE_KEY": "oops", "REDIS_URL": "redis://127.0.0.1:1/0"}
    done = subprocess.run([sys.executable, "-m", "reactor", "serve"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "reactor: PRIVATE_KEY is not a PEM key (expected '-----BEGIN RSA PRIVATE KEY-----')"
    )


def test_repr_shows_no_secret_and_masks_the_redis_password() -> None:
    settings = Settings.parse({
        "APP_ID": "123", "PRIVATE_KEY": RSA_PEM, "WEBHOOK_SECRET": "webhook-secret-value",
        "REDIS_URL": "redis://:redis-password-value@10.0.0.5:6379/0",
        "SENTRY_DSN": "https://sentry-key-value@o1.ingest.sentry.io/1",
    })
    text = repr(settings)
    assert "redis_url='redis://:***@10.0.0.5:6379/0'" in text and "app_id=123" in text
    for secret in ("redis-password-value", "webhook-secret-value", "sentry-key-value",
                   RSA_PEM.splitlines()[1]):
        assert secret not in text


@pytest.mark.parametrize(("url", "masked"), [
    ("redis://:hunter2@host:6379/0", "redis://:***@host:6379/0"),
    ("rediss://default:hunter2@host:6380/1", "rediss://default:***@host:6380/1"),
    ("redis://:p@ssw0rd@host/0", "redis://:***@host/0"),
    ("https://ghp_token@example.com/x", "https://:***@example.com/x"),
    ("unix:///run/redis.sock?db=0&password=hunter2", "unix:///run/redis.sock?db=0&password=***"),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
])
def test_mask_url_hides_credentials_only(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize("url", ["localhost://:hunter2@host:6379", "redis://:hunter2@[::1"])
def test_a_malformed_redis_url_is_reported_without_its_password(url: str) -> None:
    with pytest.raises(ConfigError, match="REDIS_URL must be a redis/rediss/unix URL") as caught:
        Settings.parse({"REDIS_URL": url})
    assert "hunter2" not in str(caught.value) and ":***@" in str(caught.value)
