"""The App JWT: claims GitHub requires, signed with the App's key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from reactor.core.errors import ConfigError
from reactor.github import AppSigner, app_jwt

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_jwt_claims_follow_github_rules_and_verify_with_the_public_key(
    rsa_key: tuple[str, bytes],
) -> None:
    token = app_jwt(123, rsa_key[0], now=NOW)

    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(
        token, rsa_key[1], algorithms=["RS256"], options={"verify_exp": False, "verify_iat": False}
    )
    assert claims == {
        "iat": int(NOW.timestamp()) - 60,
        "exp": int(NOW.timestamp()) + 9 * 60,
        "iss": "123",
    }
    assert claims["exp"] - int(NOW.timestamp()) <= 10 * 60


def test_jwt_signed_by_another_key_does_not_verify(rsa_key: tuple[str, bytes]) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    token = app_jwt(123, rsa_key[0], now=datetime.now(UTC))
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            token,
            other.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            algorithms=["RS256"],
        )


def test_naive_time_is_refused(rsa_key: tuple[str, bytes]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        app_jwt(123, rsa_key[0], now=datetime(2025, 3, 1, 12, 0, 0))


def test_signer_reuses_a_young_jwt_and_signs_again_after_five_minutes(
    rsa_key: tuple[str, bytes],
) -> None:
    signer = AppSigner(7, rsa_key[0])
    first = signer.jwt(now=NOW)

    assert signer.jwt(now=NOW + timedelta(minutes=4, seconds=59)) == first
    renewed = signer.jwt(now=NOW + timedelta(minutes=5))
    assert renewed != first
    claims = jwt.decode(renewed, rsa_key[1], algorithms=["RS256"], options={"verify_exp": False})
    assert claims["iat"] == int((NOW + timedelta(minutes=5)).timestamp()) - 60


def test_signer_never_shows_its_key(rsa_key: tuple[str, bytes]) -> None:
    signer = AppSigner(7, rsa_key[0])
    assert "PRIVATE" not in repr(signer)
    assert repr(signer) == "AppSigner(app_id=7)"


def test_signer_refuses_a_key_that_is_not_pem() -> None:
    with pytest.raises(ConfigError, match="not a PEM key"):
        AppSigner(7, "not a key")
