"""Who is calling: App JWTs, installation tokens and ``user:<login>`` tokens.

GitHub accepts three credentials on the routes the reactor uses
(https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app):

* a JWT signed RS256 with the App's private key (``iss`` = App id, lifetime at most ten
  minutes), for ``/app`` routes;
* an installation access token from ``POST /app/installations/{id}/access_tokens``, acting as
  the App's ``<slug>[bot]`` user until its ``expires_at``;
* in the sandbox only, ``token user:<login>``, acting as the user ``login`` (created on first
  use), so tests and demo agents act as distinct accounts.

Both ``token X`` and ``Bearer X`` are accepted for each, as on GitHub.
"""

from __future__ import annotations

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from ghsandbox.protocol import Actor, ActorKind, ApiError
from ghsandbox.state import World

JWT_MAX_LIFETIME_S = 600
CLOCK_DRIFT_S = 60
AUTH_DOCS = "https://docs.github.com/rest"
SUSPENDED = "This installation has been suspended"  # GitHub's 403 for its tokens


def credential(header: str | None) -> str | None:
    """The credential of an ``Authorization`` header (``token X`` or ``Bearer X``)."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() not in ("token", "bearer") or not value.strip():
        return None
    return value.strip()


def authenticate(
    header: str | None, *, world: World, public_key: RSAPublicKey, app_id: int, bot_login: str
) -> Actor:
    """The caller named by ``header``; ApiError 401 (GitHub's bodies) when it is not valid."""
    value = credential(header)
    if value is None:
        raise ApiError(401, "Requires authentication", docs=AUTH_DOCS)
    if value.startswith("user:") and len(value) > len("user:"):
        login = value.removeprefix("user:")
        world.account(login)
        return Actor(ActorKind.USER, login)
    token = world.tokens.get(value)
    if token is not None:
        if token.expires_at <= world.clock():
            raise ApiError(401, "Bad credentials", docs=AUTH_DOCS)
        installation = world.installations.get(token.installation_id)
        if installation is not None and installation.suspended_at is not None:
            raise ApiError(403, SUSPENDED, docs=AUTH_DOCS)
        scope = tuple(token.repo_ids) if token.repo_ids is not None else None
        return Actor(ActorKind.INSTALLATION, bot_login, token.installation_id, scope, value)
    if value.count(".") == 2:
        _verify_jwt(value, public_key=public_key, app_id=app_id, now=world.clock())
        return Actor(ActorKind.APP, bot_login.removesuffix("[bot]"))
    raise ApiError(401, "Bad credentials", docs=AUTH_DOCS)


def _verify_jwt(value: str, *, public_key: RSAPublicKey, app_id: int, now: float) -> None:
    """Check an App JWT as GitHub does: signature, issuer, ``iat``, ``exp`` and its lifetime."""
    try:
        claims = jwt.decode(
            value,
            public_key,
            algorithms=["RS256"],
            options={"verify_exp": False, "verify_iat": False, "verify_iss": False},
        )
    except jwt.PyJWTError:
        raise ApiError(401, "A JSON web token could not be decoded", docs=AUTH_DOCS) from None
    iat, exp = claims.get("iat"), claims.get("exp")
    if str(claims.get("iss")) != str(app_id):
        raise ApiError(401, "'Issuer' claim ('iss') must be the App's id", docs=AUTH_DOCS)
    if not isinstance(iat, int) or iat > now + CLOCK_DRIFT_S:
        raise ApiError(
            401,
            "'Issued at' claim ('iat') must be an Integer representing the time that the "
            "assertion was issued",
            docs=AUTH_DOCS,
        )
    if not isinstance(exp, int) or exp <= now:
        raise ApiError(
            401,
            "'Expiration time' claim ('exp') must be a numeric value representing the "
            "future time at which the assertion expires",
            docs=AUTH_DOCS,
        )
    if exp - iat > JWT_MAX_LIFETIME_S + CLOCK_DRIFT_S:
        raise ApiError(
            401, "'Expiration time' claim ('exp') is too far in the future", docs=AUTH_DOCS
        )
