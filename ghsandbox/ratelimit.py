"""GitHub's rate limits as a request meets them: the ``x-ratelimit-*`` headers of every
answer, the primary limit's 403 and a secondary limit's 403/429 with ``retry-after``.

https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api — the counters
are :class:`ghsandbox.faults.RateLimits`, one bucket per installation, user or App (and
one for calls without credentials, 60 an hour); :mod:`ghsandbox.pipeline` calls these
checks in GitHub's order.
"""

from __future__ import annotations

from starlette.requests import Request

from ghsandbox.protocol import Actor, ActorKind, ApiError
from ghsandbox.runtime import Sandbox

RATE_DOCS = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"


def rate_headers(sandbox: Sandbox, actor: Actor, now: float) -> dict[str, str]:
    """``actor``'s budget as GitHub shows it on every answer."""
    remaining, used, reset = sandbox.limits.peek(actor.rate_key, now, limit=actor.rate_limit)
    return {
        "x-ratelimit-limit": str(actor.rate_limit),
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-used": str(used),
        "x-ratelimit-reset": str(reset),
        "x-ratelimit-resource": "core",
    }


def check_primary_limit(sandbox: Sandbox, actor: Actor, now: float, request: Request) -> None:
    """403 with ``x-ratelimit-remaining: 0`` once ``actor``'s hour is spent."""
    remaining, used, reset = sandbox.limits.peek(actor.rate_key, now, limit=actor.rate_limit)
    if remaining > 0:
        return
    if actor.kind is ActorKind.INSTALLATION:
        who = f"installation ID {actor.installation_id}."
    elif actor.kind is ActorKind.ANONYMOUS:
        who = (
            f"{request.client.host if request.client else '127.0.0.1'}. (But here's the good "
            "news: Authenticated requests get a higher rate limit. Check out the documentation "
            "for more details.)"
        )
    else:
        who = f"user ID {sandbox.world.account(actor.login).id}."
    raise ApiError(
        403,
        f"API rate limit exceeded for {who}",
        docs=RATE_DOCS,
        headers={
            "x-ratelimit-limit": str(actor.rate_limit),
            "x-ratelimit-remaining": "0",
            "x-ratelimit-used": str(used),
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-resource": "core",
        },
    )


def check_secondary_limit(sandbox: Sandbox, now: float) -> None:
    """403 (or 429) with ``retry-after`` while a ``secondary_limit`` fault lasts."""
    faults = sandbox.faults
    if now >= faults.secondary_until:
        return
    raise ApiError(
        faults.secondary_status,
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
        docs=RATE_DOCS + "#about-secondary-rate-limits",
        headers={"retry-after": str(faults.secondary_retry_after)},
    )
