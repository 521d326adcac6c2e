"""Retries of GitHub calls that failed for reasons worth trying again: 5xx and transport errors.

Exponential backoff with full jitter, as the spec's seed figures and GitHub's best practices
ask (https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api):
5 attempts, waits drawn uniformly from [0, 1 s], [0, 2 s], [0, 4 s], ... capped at 16 s.

Reads and idempotent writes (PUT, PATCH, DELETE) are retried on any 5xx or transport error.
A POST that creates something (a comment, an issue, a dispatch) and a label write (adding
labels, removing one) are retried only when they cannot have reached GitHub (the connection
was never made): GitHub sometimes answers 5xx after it wrote, so the caller, which can look
for what it wrote, decides. A label write is not idempotent in time: retried after an agent
moved on (removed the label the first attempt added), it would undo the agent's move.

Rate limits are not retried here: a limited call raises at once (see ``ratelimit``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from reactor.core.errors import GitHubUnavailable

log = logging.getLogger(__name__)

Response = tuple[int, Mapping[str, str], bytes]


class ServerError(Exception):
    """A 5xx answer, raised inside the retry loop so that it is retried."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"HTTP {response[0]}")
        self.response = response


RETRYABLE = (ServerError, httpx.TransportError)
UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def retryable(method: str, url: str) -> Callable[[BaseException], bool]:
    """Which failures of ``method url`` may be retried here (see the module docstring)."""
    path = urlsplit(url).path
    labels = "/labels" in path and "/issues/" in path and method.upper() in ("POST", "DELETE")
    kinds = UNSENT if method.upper() == "POST" or labels else RETRYABLE
    return lambda failure: isinstance(failure, kinds)


def full_jitter() -> Callable[[RetryCallState], float]:
    """The seed's backoff: uniform in [0, min(16, 2 ** (attempt - 1))] seconds."""
    return wait_random_exponential(multiplier=1, max=16)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; tests swap ``sleep`` to record waits, not sleep them."""

    attempts: int = 5
    wait: Callable[[RetryCallState], float] = field(default_factory=full_jitter)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


async def with_retries(
    attempt: Callable[[], Awaitable[Response]], *, policy: RetryPolicy, method: str, url: str
) -> Response:
    """Run ``attempt`` until it returns, retrying RETRYABLE failures per ``policy``.

    After the last attempt the failure becomes :class:`~reactor.core.errors.GitHubUnavailable`.
    """
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        wait=policy.wait,
        sleep=policy.sleep,
        retry=retry_if_exception(retryable(method, url)),
        before_sleep=_log_retry(method, url, policy.attempts),
    )
    try:
        response: Response = await retrying(attempt)
    except RetryError as exc:
        last = exc.last_attempt.exception()
        raise _unavailable(last, method=method, url=url, attempts=policy.attempts) from last
    except RETRYABLE as exc:  # not retried: a creating POST that may have been received
        raise _unavailable(exc, method=method, url=url, attempts=1) from exc
    return response


def _unavailable(
    failure: BaseException | None, *, method: str, url: str, attempts: int
) -> GitHubUnavailable:
    status = failure.response[0] if isinstance(failure, ServerError) else 0
    return GitHubUnavailable(
        f"GitHub did not answer {method} {urlsplit(url).path} after {attempts} attempts "
        f"(last: {_reason(failure)})",
        status=status,
        method=method,
        url=url,
    )


def _reason(failure: BaseException | None) -> str:
    # httpx's own messages may quote the request; the exception's type says enough.
    return str(failure) if isinstance(failure, ServerError) else type(failure).__name__


def _log_retry(method: str, url: str, attempts: int) -> Callable[[RetryCallState], None]:
    path = urlsplit(url).path

    def log_retry(state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "GitHub %s %s failed (%s); attempt %d of %d in %.2f s",
            method, path, _reason(failure), state.attempt_number + 1, attempts, wait,
        )

    return log_retry
