"""The reactor's one exception tree.

::

    ReactorError                    every error the reactor raises on purpose
    ├── ConfigError                 a missing or malformed setting (one readable line)
    ├── DeliveryError               a stored delivery that cannot be turned into an event
    │   ├── DeliveryNotFound        no stored delivery under that id
    │   └── PayloadError            the payload does not parse into the typed event
    ├── StoreUnavailable            Redis cannot take or give what was asked
    ├── LeaseLost                   another worker holds the competition now: do not write
    ├── Conflict                    an issue changed after it was read: decide again
    └── GitHubError                 a GitHub API call that did not succeed
        ├── RateLimited             primary or secondary limit; carries when to retry
        └── GitHubUnavailable       5xx or timeouts after every retry

Each carries the context needed to act on it (delivery id, status code, retry time), and
its ``str()`` is one line fit for a log or a terminal.
"""

from __future__ import annotations

from datetime import datetime


class ReactorError(Exception):
    """Base of every error the reactor raises on purpose."""


class Conflict(ReactorError):
    """The issue changed after it was read: the decision must be taken again."""

    def __init__(self, issue: int) -> None:
        super().__init__(f"issue #{issue} changed while the reactor was deciding")
        self.issue = issue


class ConfigError(ReactorError):
    """A setting is missing or malformed; the message names it and says what is expected."""


class DeliveryError(ReactorError):
    """A stored delivery cannot be turned into an event."""

    def __init__(self, message: str, *, delivery_id: str) -> None:
        super().__init__(message)
        self.delivery_id = delivery_id


class DeliveryNotFound(DeliveryError):
    """No delivery is stored under the id (expired, or never accepted)."""


class PayloadError(DeliveryError):
    """The payload is not JSON, or lacks a field the reactor reads."""


class StoreUnavailable(ReactorError):
    """Redis is unreachable or refused the write."""


class LeaseLost(ReactorError):
    """The competition's lease expired and another worker took it; this one must not write."""


class GitHubError(ReactorError):
    """A GitHub API call failed; ``status`` is the HTTP status (0 for a transport error)."""

    def __init__(self, message: str, *, status: int = 0, method: str = "", url: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.url = url


def is_transient(exc: GitHubError) -> bool:
    """Whether trying again later may succeed (limits, 5xx, timeouts) or never will (4xx)."""
    return isinstance(exc, RateLimited | GitHubUnavailable) or exc.status in (0, 429) or (
        exc.status >= 500
    )


class RateLimited(GitHubError):
    """The installation is rate limited until ``retry_at`` (primary or secondary limit)."""

    def __init__(
        self, message: str, *, retry_at: datetime, installation_id: int | None = None, **kw: object
    ) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_at = retry_at
        self.installation_id = installation_id


class GitHubUnavailable(GitHubError):
    """GitHub answered 5xx or timed out on every attempt."""
