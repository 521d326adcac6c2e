"""An account's profile: ``public-user`` (anyone's) and ``private-user`` (the caller's own).

Both add to the ``simple-user`` of :func:`ghsandbox.render.user` the profile fields
GitHub's OpenAPI description requires (https://docs.github.com/rest/users/users). The
sandbox keeps no profiles, so they are empty; its repositories are private, so
``public_repos`` is 0 and a user's own count shows only in ``owned_private_repos``.
"""

from __future__ import annotations

from ghsandbox.model import Account
from ghsandbox.render import EPOCH, Json, user

FREE_PLAN = {"name": "free", "space": 976_562_499, "collaborators": 0, "private_repos": 10_000}


def public_user(base: str, account: Account) -> Json:
    """``GET /users/{username}``: what anyone may read about ``account``."""
    return {
        **user(base, account),
        "name": None,
        "company": None,
        "blog": "",
        "location": None,
        "email": None,
        "hireable": None,
        "bio": None,
        "twitter_username": None,
        "public_repos": 0,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "created_at": EPOCH,
        "updated_at": EPOCH,
    }


def private_user(base: str, account: Account, *, owned_repos: int) -> Json:
    """``GET /user``: the caller's own profile, with the counts only its owner sees."""
    return {
        **public_user(base, account),
        "user_view_type": "private",
        "notification_email": None,
        "private_gists": 0,
        "total_private_repos": owned_repos,
        "owned_private_repos": owned_repos,
        "disk_usage": 0,
        "collaborators": 0,
        "two_factor_authentication": False,
        "plan": dict(FREE_PLAN),
    }
