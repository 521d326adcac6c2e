"""What each GitHub call reports to whoever counts them (Prometheus, logs, tests).

The client calls an optional ``on_response(CallRecord)`` once per HTTP attempt, retries
included, with the route as a template (``/repos/{owner}/{repo}/issues/{id}``) so metric
labels stay few whatever the repositories and issue numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

# The segment after one of these names a thing, not a route.
_NAMED_BY_PREVIOUS = {
    "labels": "{name}",
    "users": "{username}",
    "orgs": "{org}",
    "deliveries": "{delivery_id}",
    "installations": "{installation_id}",
}


@dataclass(frozen=True)
class CallRecord:
    """One HTTP attempt: ``status`` 0 means no answer (timeout or transport error)."""

    method: str
    route: str
    status: int
    installation_id: int | None
    rate_remaining: int | None
    elapsed_s: float


OnResponse = Callable[[CallRecord], None]


def route_of(url: str, *, base_url: str) -> str:
    """The route template of an API URL: ``/repos/{owner}/{repo}/issues/{id}/labels``."""
    base_path = urlsplit(base_url).path.rstrip("/")
    path = urlsplit(url).path.removeprefix(base_path)
    parts = path.strip("/").split("/")
    route: list[str] = []
    for index, part in enumerate(parts):
        previous = parts[index - 1] if index else ""
        if parts[0] == "repos" and index in (1, 2):
            route.append("{owner}" if index == 1 else "{repo}")
        elif previous == "contents":
            route.append("{path}")
            break
        elif part.isdigit():
            route.append(_NAMED_BY_PREVIOUS.get(previous, "{id}"))
        elif previous in _NAMED_BY_PREVIOUS:
            route.append(_NAMED_BY_PREVIOUS[previous])
        else:
            route.append(part)
    return "/" + "/".join(route)
