"""What a REST handler receives and returns: :class:`Call`, :class:`Reply`, :class:`ApiError`.

Handlers are plain synchronous functions ``(Call) -> Reply``: the pipeline in
:mod:`ghsandbox.pipeline` reads the body, authenticates and rate-limits before calling
them, so a handler's read-modify-write of the world runs without an ``await`` and is atomic.
Errors are raised as :class:`ApiError` and answered with GitHub's error body
``{"message", "documentation_url"[, "errors"]}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from ghsandbox.faults import ANONYMOUS_LIMIT, PRIMARY_LIMIT
from ghsandbox.model import Repo
from ghsandbox.payloads import Emitter
from ghsandbox.view import View

if TYPE_CHECKING:
    from ghsandbox.runtime import Sandbox

DOCS = "https://docs.github.com/rest"


class ActorKind(StrEnum):
    """Who a request acts as."""

    APP = "app"  # a JWT signed with the App's key
    INSTALLATION = "installation"  # an installation access token: the App's [bot] user
    USER = "user"  # ``token user:<login>``
    ANONYMOUS = "anonymous"  # no credentials, on the routes GitHub serves to anyone


@dataclass(frozen=True)
class Actor:
    """The authenticated caller; ``login`` is the account webhooks name as ``sender`` (empty
    for an anonymous caller); ``credential`` is an installation token's value (to revoke it)."""

    kind: ActorKind
    login: str
    installation_id: int | None = None
    repo_ids: tuple[int, ...] | None = None  # a token limited to some repositories
    credential: str | None = field(default=None, repr=False)

    @property
    def rate_key(self) -> str:
        """The bucket the primary rate limit counts against (per installation, user or App;
        anonymous calls share one, as GitHub counts them per address and the sandbox's
        callers share a loopback one)."""
        if self.kind is ActorKind.INSTALLATION:
            return f"installation:{self.installation_id}"
        return f"{self.kind.value}:{self.login}"

    @property
    def rate_limit(self) -> int:
        """Calls an hour: 5,000, or 60 without credentials, as on GitHub."""
        return ANONYMOUS_LIMIT if self.kind is ActorKind.ANONYMOUS else PRIMARY_LIMIT


ANONYMOUS = Actor(ActorKind.ANONYMOUS, "")


class ApiError(Exception):
    """A GitHub error response; ``str()`` is its message. ``errors`` holds objects
    (``validation-error``), or plain strings where GitHub answers ``validation-error-simple``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[dict[str, Any]] | list[str] | None = None,
        headers: Mapping[str, str] | None = None,
        docs: str = DOCS,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = dict(headers or {})
        self.docs = docs

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "documentation_url": self.docs}
        if self.errors is not None:
            out["errors"] = self.errors
        out["status"] = str(self.status)
        return out


def not_found(docs: str = DOCS) -> ApiError:
    return ApiError(404, "Not Found", docs=docs)


def validation_failed(
    resource: str, field_name: str, code: str, *, docs: str = DOCS, **extra: Any
) -> ApiError:
    """GitHub's 422 with one entry in ``errors`` (codes: missing_field, invalid, already_exists,
    custom, unprocessable); ``extra`` adds keys such as ``message`` or ``value`` to it."""
    error = {"resource": resource, "field": field_name, "code": code, **extra}
    return ApiError(422, "Validation Failed", errors=[error], docs=docs)


@dataclass(frozen=True)
class Reply:
    """A successful answer: a status, a JSON-able body (None for none) and extra headers."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Call:
    """One API request as a handler sees it."""

    method: str
    path: str
    url: str
    params: Mapping[str, str]
    query: QueryParams
    body: Any
    actor: Actor
    view: View
    sandbox: Sandbox

    @cached_property
    def events(self) -> Emitter:
        """Sends the webhooks for this call's changes, with the caller as ``sender``; its
        ``issues`` webhooks go out when the request ends (:meth:`Emitter.flush`)."""
        return Emitter(self.view, self.sandbox.hub, self.actor.login, held=[])

    def repo(self) -> Repo:
        """The ``{owner}/{repo}`` of the path; 404 when unknown, 403 for a foreign installation."""
        repo = self.view.world.repo(self.params["owner"], self.params["repo"])
        if repo is None:
            raise not_found()
        kind = self.actor.kind
        if kind is ActorKind.INSTALLATION and (
            repo.installation_id != self.actor.installation_id
            or (self.actor.repo_ids is not None and repo.id not in self.actor.repo_ids)
        ):
            raise ApiError(403, "Resource not accessible by integration")
        if kind is ActorKind.APP:
            raise ApiError(
                403, "Resource not accessible by integration (use an installation token)"
            )
        return repo

    def int_param(self, name: str) -> int:
        raw = self.params[name]
        if not raw.isdigit():
            raise not_found()
        return int(raw)

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; GitHub answers 400 "Problems parsing JSON" otherwise."""
        if not isinstance(self.body, dict):
            raise ApiError(400, "Problems parsing JSON")
        return self.body

    def page_of(self, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        """The ``page``/``per_page`` slice of ``items`` and its ``Link`` header, as GitHub pages."""
        per_page = _bounded(self.query.get("per_page"), default=30, low=1, high=100)
        page = _bounded(self.query.get("page"), default=1, low=1, high=10**9)
        last = max(1, -(-len(items) // per_page))
        start = (page - 1) * per_page
        return items[start : start + per_page], _link_header(self.url, self.query, page, last)


def _bounded(raw: str | None, *, default: int, low: int, high: int) -> int:
    if raw is None or not raw.strip().lstrip("-").isdigit():
        return default
    return min(high, max(low, int(raw)))


def _link_header(url: str, query: QueryParams, page: int, last: int) -> dict[str, str]:
    def link(number: int, rel: str) -> str:
        params = {k: v for k, v in query.items() if k != "page"}
        params["page"] = str(number)
        return f'<{url}?{urlencode(params)}>; rel="{rel}"'

    parts = []
    if page > 1:
        parts += [link(min(page - 1, last), "prev")]
    if page < last:
        parts += [link(page + 1, "next"), link(last, "last")]
    if page > 1:
        parts += [link(1, "first")]
    return {"link": ", ".join(parts)} if parts else {}
