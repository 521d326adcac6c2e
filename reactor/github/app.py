"""App-level calls, made with the App's JWT: who the App is, where it is installed, and
GitHub's log of the webhook deliveries it sent (with redelivery).

Followed: https://docs.github.com/en/rest/apps/apps and
https://docs.github.com/en/rest/apps/webhooks. Answers are parsed into frozen values with
only the fields the reactor reads; an answer lacking one raises GitHubError.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from gidgethub.abc import GitHubAPI

from reactor.core.errors import GitHubError

T = TypeVar("T")


@dataclass(frozen=True)
class AppInfo:
    """The App behind the JWT (``GET /app``)."""

    id: int
    slug: str
    name: str
    owner: str
    permissions: Mapping[str, str] = field(default_factory=dict)
    events: tuple[str, ...] = ()

    @property
    def bot_login(self) -> str:
        """The login the App's own writes carry (how rule R10 recognises them)."""
        return f"{self.slug}[bot]"


@dataclass(frozen=True)
class Installation:
    """One installation of the App on an account."""

    id: int
    account: str
    account_type: str
    repository_selection: str
    permissions: Mapping[str, str] = field(default_factory=dict)
    events: tuple[str, ...] = ()
    suspended: bool = False


@dataclass(frozen=True)
class HookDelivery:
    """One attempt in the App's webhook delivery log; a redelivery is a new attempt."""

    id: int
    guid: str
    delivered_at: datetime
    redelivery: bool
    status: str
    status_code: int
    event: str
    action: str | None
    installation_id: int | None
    repository_id: int | None

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300


async def get_app(gh: GitHubAPI) -> AppInfo:
    """The App itself; a cheap check that the App id and private key are right."""
    return parse_app(await gh.getitem("/app"))


async def list_installations(gh: GitHubAPI) -> AsyncIterator[Installation]:
    """Every installation of the App, all pages."""
    async for item in gh.getiter("/app/installations{?per_page}", {"per_page": 100}):
        yield parse_installation(item)


async def repo_installation(gh: GitHubAPI, owner: str, repo: str) -> Installation:
    """The installation that covers one repository (GitHubError 404 when none does)."""
    url = "/repos/{owner}/{repo}/installation"
    return parse_installation(await gh.getitem(url, {"owner": owner, "repo": repo}))


async def list_deliveries(
    gh: GitHubAPI, *, since: datetime | None = None, per_page: int = 100
) -> AsyncIterator[HookDelivery]:
    """The App's delivery log, newest first, stopping before ``since`` when given."""
    async for item in gh.getiter("/app/hook/deliveries{?per_page}", {"per_page": per_page}):
        delivery = parse_delivery(item)
        if since is not None and delivery.delivered_at < since:
            return
        yield delivery


async def find_delivery(gh: GitHubAPI, guid: str) -> HookDelivery | None:
    """The newest attempt of the delivery whose ``X-GitHub-Delivery`` is ``guid``."""
    async for delivery in list_deliveries(gh):
        if delivery.guid == guid:
            return delivery
    return None


async def redeliver(gh: GitHubAPI, delivery_id: int) -> None:
    """Ask GitHub to send a delivery again (same GUID); it answers 202 and sends it soon."""
    url = "/app/hook/deliveries/{delivery_id}/attempts"
    await gh.post(url, {"delivery_id": delivery_id}, data=b"")


def needing_redelivery(deliveries: Iterable[HookDelivery]) -> tuple[HookDelivery, ...]:
    """For each GUID with no successful attempt, its newest attempt, oldest GUID first.

    These are the deliveries the reactor never accepted (it was down, or answered 503):
    GitHub does not retry them by itself.
    """
    newest: dict[str, HookDelivery] = {}
    delivered: set[str] = set()
    for delivery in deliveries:
        if delivery.succeeded:
            delivered.add(delivery.guid)
        known = newest.get(delivery.guid)
        if known is None or delivery.delivered_at > known.delivered_at:
            newest[delivery.guid] = delivery
    failed = (d for guid, d in newest.items() if guid not in delivered)
    return tuple(sorted(failed, key=lambda d: d.delivered_at))


def parse_app(data: Any) -> AppInfo:
    owner = _field(data, "owner", dict, "app")
    return AppInfo(
        id=_field(data, "id", int, "app"),
        slug=_field(data, "slug", str, "app"),
        name=_field(data, "name", str, "app"),
        owner=_field(owner, "login", str, "app owner"),
        permissions=dict(data.get("permissions") or {}),
        events=tuple(data.get("events") or ()),
    )


def parse_installation(data: Any) -> Installation:
    account = _field(data, "account", dict, "installation")
    return Installation(
        id=_field(data, "id", int, "installation"),
        account=_field(account, "login", str, "installation account"),
        account_type=str(account.get("type", "")),
        repository_selection=str(data.get("repository_selection", "")),
        permissions=dict(data.get("permissions") or {}),
        events=tuple(data.get("events") or ()),
        suspended=data.get("suspended_at") is not None,
    )


def parse_delivery(data: Any) -> HookDelivery:
    delivered_at = _field(data, "delivered_at", str, "delivery")
    try:
        when = datetime.fromisoformat(delivered_at)
    except ValueError:
        raise GitHubError(f"delivery has a malformed delivered_at: {delivered_at!r}") from None
    return HookDelivery(
        id=_field(data, "id", int, "delivery"),
        guid=_field(data, "guid", str, "delivery"),
        delivered_at=when,
        redelivery=bool(data.get("redelivery")),
        status=str(data.get("status", "")),
        status_code=int(data.get("status_code") or 0),
        event=_field(data, "event", str, "delivery"),
        action=data.get("action"),
        installation_id=data.get("installation_id"),
        repository_id=data.get("repository_id"),
    )


def _field(data: Any, name: str, kind: type[T], what: str) -> T:
    value = data.get(name) if isinstance(data, dict) else None
    if not isinstance(value, kind):
        raise GitHubError(f"GitHub's {what} answer lacks {name!r} ({kind.__name__})")
    return value
