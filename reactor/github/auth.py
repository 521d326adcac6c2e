"""The App's JSON Web Token: the credential of App-level calls and of token requests.

GitHub's rules, followed here
(https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app):
signed with RS256 by the App's private key; ``iat`` 60 seconds in the past, against clock
drift; ``exp`` no more than 10 minutes after now (9 here, for slack); ``iss`` the App's id.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from reactor.core.errors import ConfigError
from reactor.process.settings import check_private_key

BACKDATE = timedelta(seconds=60)
LIFETIME = timedelta(minutes=9)
# A signed JWT is reused for this long, well inside its lifetime, so a call never carries a
# JWT about to expire and signing (milliseconds of RSA work) happens a few times an hour.
REUSE_FOR = timedelta(minutes=5)


def app_jwt(app_id: int, private_key: RSAPrivateKey | str, *, now: datetime) -> str:
    """Sign a JWT that authenticates as the App at ``now`` (aware) for the next 9 minutes."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    claims = {
        "iat": int((now - BACKDATE).timestamp()),
        "exp": int((now + LIFETIME).timestamp()),
        "iss": str(app_id),
    }
    return jwt.encode(claims, private_key, algorithm="RS256")


def _load_key(pem: str) -> RSAPrivateKey:
    """Parse the PEM once (RSA key checks take tens of milliseconds)."""
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        check_private_key(pem)  # raises the ConfigError that names the problem
        raise ConfigError("PRIVATE_KEY is not a readable, unencrypted PEM private key") from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError("PRIVATE_KEY must be an RSA key (GitHub Apps sign JWTs with RS256)")
    return key


class AppSigner:
    """Signs the App's JWTs with a key parsed once; the key never appears in its repr."""

    def __init__(self, app_id: int, private_key: str) -> None:
        self.app_id = app_id
        self._key = _load_key(private_key)
        self._signed: tuple[datetime, str] | None = None

    def __repr__(self) -> str:
        return f"AppSigner(app_id={self.app_id})"

    def jwt(self, *, now: datetime) -> str:
        """A JWT valid at ``now``: the last one signed while it is young enough, else a new one."""
        if self._signed is not None:
            signed_at, token = self._signed
            if signed_at <= now < signed_at + REUSE_FOR:
                return token
        token = app_jwt(self.app_id, self._key, now=now)
        self._signed = (now, token)
        return token
