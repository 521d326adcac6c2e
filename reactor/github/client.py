"""The process's GitHub client: gidgethub API objects for each installation and for the App.

Create one :class:`GitHubClient` per process, where the process starts (the web app's
lifespan, the worker's start-up), and close it on the way out. It owns one
``httpx.AsyncClient`` — one keep-alive connection pool for every call — and hands out
gidgethub API objects (``getitem``, ``getiter``, ``post``, ``patch``, ``put``, ``delete``):

- ``client.for_installation(id)`` acts as that installation, with its token fetched lazily
  from the shared cache
  (https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/authenticating-as-a-github-app-installation);
- ``client.app`` acts as the App itself, with a JWT, for ``/app``, ``/app/installations``,
  ``/app/hook/deliveries`` and the like (see ``reactor.github.app`` for typed helpers).

Every call takes the path described in ``reactor.github.transport``. The client is bound to
the event loop it is first used in, as its connection pool and Redis client are.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any

import gidgethub.httpx
import httpx

from reactor.github._shared import Clock, RedisClient, utc_now
from reactor.github.auth import AppSigner
from reactor.github.cache import ETagCache
from reactor.github.metrics import OnResponse
from reactor.github.pacing import WINDOWS, ContentPacer, Window
from reactor.github.ratelimit import RateBudget
from reactor.github.retry import Response, RetryPolicy
from reactor.github.tokens import InstallationToken, TokenCache
from reactor.github.transport import Credentials, Transport
from reactor.process.settings import DEFAULT_API_URL, Settings

DEFAULT_USER_AGENT = "issue-safety-reactor"


class ReactorAPI(gidgethub.httpx.GitHubAPI):
    """A gidgethub API object whose requests take the reactor's transport."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        transport: Transport,
        credentials: Credentials,
        requester: str,
        base_url: str,
    ) -> None:
        super().__init__(http, requester, base_url=base_url)
        self._transport = transport
        self._credentials = credentials

    @property
    def installation_id(self) -> int | None:
        """The installation this object acts as; None when it acts as the App."""
        return self._credentials.installation_id

    async def _request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
    ) -> Response:
        return await self._transport.send(
            method, url, headers, body, credentials=self._credentials, raw=super()._request
        )


class InstallationAPI(ReactorAPI):
    """Acts as one installation (its token): everything the reactor does in repositories."""


class AppAPI(ReactorAPI):
    """Acts as the App (its JWT): App metadata, installations, the webhook delivery log."""


class _InstallationCredentials:
    """An installation's token, from the shared cache; a rejected token is dropped."""

    def __init__(self, tokens: TokenCache, installation_id: int) -> None:
        self._tokens = tokens
        self.installation_id = installation_id

    async def authorization(self) -> str:
        return f"token {await self._tokens.get(self.installation_id)}"

    async def rejected(self, authorization: str) -> bool:
        # The token was revoked or expired early: forget it, so that the retry (and every
        # other process) fetches a fresh one.
        await self._tokens.drop(self.installation_id, authorization.removeprefix("token "))
        return True


class _AppCredentials:
    """The App's JWT; a rejected JWT means a wrong key or App id, which no retry fixes."""

    installation_id = None

    def __init__(self, signer: AppSigner, clock: Clock) -> None:
        self._signer = signer
        self._clock = clock

    async def authorization(self) -> str:
        return f"bearer {self._signer.jwt(now=self._clock())}"

    async def rejected(self, authorization: str) -> bool:
        return False


class GitHubClient:
    """The one GitHub client of a process (see the module docstring).

    ``redis`` is the process's asyncio Redis client (tokens, ETags and rate-limit pauses are
    shared through it); ``http`` an existing ``httpx.AsyncClient`` to use instead of the one
    the client creates (and then does not close); ``retry`` the backoff policy;
    ``on_response`` is called with a ``CallRecord`` after every HTTP attempt and must not
    raise; ``clock`` gives aware UTC time; ``token_margin`` is how long before ``expires_at``
    a token stops being used; ``etag_ttl`` how long a cached answer is kept; ``timeout`` is
    per HTTP attempt, in seconds.
    """

    def __init__(
        self,
        *,
        app_id: int,
        private_key: str,
        redis: RedisClient,
        api_url: str = DEFAULT_API_URL,
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        on_response: OnResponse | None = None,
        clock: Clock = utc_now,
        token_margin: timedelta = timedelta(minutes=5),
        etag_ttl: timedelta = timedelta(hours=1),
        timeout: float = 10.0,
        user_agent: str = DEFAULT_USER_AGENT,
        content_windows: tuple[Window, ...] = WINDOWS,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._owns_http = http is None
        self._http = http if http is not None else _http_client(timeout)
        self._user_agent = user_agent
        self.transport = Transport(
            redis,
            base_url=self.api_url,
            retry=retry if retry is not None else RetryPolicy(),
            clock=clock,
            etags=ETagCache(redis, ttl=etag_ttl),
            on_response=on_response,
            pacer=ContentPacer(redis, clock=clock, windows=content_windows),
        )
        self.tokens = TokenCache(redis, self._fetch_token, clock=clock, margin=token_margin)
        self.app = AppAPI(
            self._http,
            transport=self.transport,
            credentials=_AppCredentials(AppSigner(app_id, private_key), clock),
            requester=user_agent,
            base_url=self.api_url,
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, redis: RedisClient, **options: Any
    ) -> GitHubClient:
        """A client for the configured App (ConfigError when APP_ID or the key is missing)."""
        app_id, private_key = settings.require_app()
        return cls(
            app_id=app_id,
            private_key=private_key,
            redis=redis,
            api_url=settings.github_api_url,
            content_windows=(Window(settings.content_writes_per_minute, 60),
                             Window(settings.content_writes_per_hour, 3600)),
            **options,
        )

    def for_installation(self, installation_id: int) -> InstallationAPI:
        """An API object acting as the installation; its token is fetched on first use."""
        return InstallationAPI(
            self._http,
            transport=self.transport,
            credentials=_InstallationCredentials(self.tokens, installation_id),
            requester=self._user_agent,
            base_url=self.api_url,
        )

    def rate_budget(self, installation_id: int | None) -> RateBudget | None:
        """The rate budget GitHub last reported to this process (None id: the App's)."""
        return self.transport.budget(installation_id)

    async def aclose(self) -> None:
        """Close the connection pool, if this client created it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> GitHubClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _fetch_token(self, installation_id: int) -> InstallationToken:
        # https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app
        data = await self.app.post(
            "/app/installations/{installation_id}/access_tokens",
            {"installation_id": installation_id},
            data=b"",
        )
        return InstallationToken.from_payload(data)


def _http_client(timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        follow_redirects=True,
    )
