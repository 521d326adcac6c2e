"""Accounts: the caller's own (``GET /user``) and anyone's (``GET /users/{username}``).

https://docs.github.com/rest/users/users — agent libraries call ``GET /user`` on start-up to
learn who they act as. Acting as a user (``token user:<login>``), it answers that user's
``private-user``; an installation token or an App JWT is not a user, and GitHub answers 403
"Resource not accessible by integration" (an App reads its bot's account with
``GET /users/<slug>[bot]``, as workflows do to commit as the App). ``GET /users/{username}``
answers the ``public-user`` of an account the sandbox knows — a user who has acted, an owner
of a repository, the App's bot — and 404 for a name it has never seen, as GitHub does for a
name no one holds.
"""

from __future__ import annotations

from ghsandbox.model import Account
from ghsandbox.pipeline import Auth, Endpoint
from ghsandbox.protocol import ActorKind, ApiError, Call, Reply, not_found

ME_DOCS = "https://docs.github.com/rest/users/users#get-the-authenticated-user"
USER_DOCS = "https://docs.github.com/rest/users/users#get-a-user"


def get_authenticated(call: Call) -> Reply:
    if call.actor.kind is not ActorKind.USER:
        raise ApiError(403, "Resource not accessible by integration", docs=ME_DOCS)
    account = call.view.world.account(call.actor.login)
    return Reply(body=call.view.profile(account, private=True))


def get_by_username(call: Call) -> Reply:
    return Reply(body=call.view.profile(_known(call, call.params["username"])))


def _known(call: Call, login: str) -> Account:
    world = call.view.world
    if login.lower() == call.view.bot_login.lower():
        return world.account(call.view.bot_login)  # the App's bot exists from the start
    found = world.accounts.get(login.lower())
    if found is None:
        raise not_found(docs=USER_DOCS)
    return found


ENDPOINTS = [
    Endpoint("GET", "/user", get_authenticated, Auth.ANY),
    Endpoint("GET", "/users/{username}", get_by_username, Auth.OPTIONAL),
]
