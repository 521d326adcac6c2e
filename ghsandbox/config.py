"""The sandbox's configuration: one frozen value, plus generators for what a user did not give.

The sandbox hosts exactly one GitHub App. Its id, slug, RSA key and webhook secret are what the
reactor's ``APP_ID``, ``PRIVATE_KEY`` and ``WEBHOOK_SECRET`` must hold, so
:func:`generate_private_key` and :func:`generate_secret` produce credentials of the same kind
GitHub gives (an RSA 2048 PEM key, a random secret) when the command line names none.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DEFAULT_APP_SLUG = "issue-safety-reactor"
DEFAULT_APP_ID = 1001
DEFAULT_TOKEN_LIFETIME_S = 3600


@dataclass(frozen=True)
class SandboxConfig:
    """Everything a sandbox server needs at start.

    ``webhook_urls`` are the first hook receivers (more can be added at run time through
    ``POST /_sandbox/hooks``); ``state_dir``, when set, keeps the sandbox's state across
    restarts as JSON files.
    """

    app_id: int = DEFAULT_APP_ID
    app_slug: str = DEFAULT_APP_SLUG
    private_key_pem: str = field(default="", repr=False)
    webhook_secret: str = field(default="", repr=False)
    webhook_urls: tuple[str, ...] = ()
    state_dir: Path | None = None

    @classmethod
    def generate(cls, **overrides: object) -> SandboxConfig:
        """A config with a fresh key and secret; keyword arguments override any field."""
        values: dict[str, object] = {
            "private_key_pem": generate_private_key(),
            "webhook_secret": generate_secret(),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def public_key(self) -> rsa.RSAPublicKey:
        """The App's public key, which verifies the JWTs the App signs."""
        key = serialization.load_pem_private_key(self.private_key_pem.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the sandbox App key must be an RSA private key")
        return key.public_key()


def generate_private_key() -> str:
    """A new RSA 2048 private key in PKCS#1 PEM, the format GitHub hands out for Apps."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def generate_secret() -> str:
    """A random webhook secret (40 hex characters)."""
    return secrets.token_hex(20)
