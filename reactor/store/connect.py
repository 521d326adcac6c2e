"""Redis clients, made in one place from the settings: one server, TLS, or Sentinel.

Every process and command that touches Redis gets its clients here, so each follows the same
deployment:

- ``REDIS_URL`` alone: ``redis://`` or ``unix://`` to one server; ``rediss://`` is TLS, the
  server's certificate checked against ``REDIS_TLS_CA_FILE`` (else the system's CAs).
- ``REDIS_SENTINELS`` and ``REDIS_SENTINEL_MASTER``: the sentinels are asked where the master
  of that name is, and every connection follows it through a failover (redis-py's
  ``SentinelConnectionPool``: a connection to a master that went away, or that was demoted
  to a replica, is dropped and the next one is made to the master the sentinels name now).
  ``REDIS_URL`` then gives only the scheme (``rediss://``: TLS to the master and the
  sentinels alike), the credentials and the database; its host is not used.
  ``REDIS_SENTINEL_PASSWORD`` is the sentinels' own password.

See https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/ and
https://redis.io/docs/latest/operate/oss_and_stack/management/security/encryption/.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.connection import parse_url
from redis.retry import Retry
from tenacity import RetryCallState

from reactor.process.settings import Settings, mask_url

log = logging.getLogger(__name__)

# Asking a sentinel where the master is: one that does not answer within these is skipped
# for the next (redis-py tries each in turn, without retrying one).
SENTINEL_CONNECT_TIMEOUT_S = 1.0
SENTINEL_TIMEOUT_S = 2.0


def async_client(settings: Settings, *,
                 client_class: type[redis.asyncio.Redis] = redis.asyncio.Redis,
                 **options: Any) -> redis.asyncio.Redis:
    """An asyncio client of the deployment's Redis (its master, with Sentinel).

    ``options`` are redis-py's connection options (``socket_timeout``, ``retry``, …);
    ``client_class`` a subclass of redis-py's client (a dry run's read-only one)."""
    if settings.redis_sentinels:
        sentinel = redis.asyncio.sentinel.Sentinel(
            settings.redis_sentinels, sentinel_kwargs=_sentinel_options(settings),
            **_master_options(settings), **options,
        )
        client: redis.asyncio.Redis = sentinel.master_for(
            _master(settings), redis_class=client_class)
        return client
    return client_class.from_url(settings.require_redis_url(), **_tls(settings), **options)


def sync_client(settings: Settings, *, client_class: type[redis.Redis] = redis.Redis,
                **options: Any) -> redis.Redis:
    """A synchronous client of the deployment's Redis (RQ's, the scheduler's, the commands')."""
    if settings.redis_sentinels:
        sentinel = redis.sentinel.Sentinel(
            settings.redis_sentinels, sentinel_kwargs=_sentinel_options(settings),
            **_master_options(settings), **options,
        )
        client: redis.Redis = sentinel.master_for(_master(settings), redis_class=client_class)
        return client
    return client_class.from_url(settings.require_redis_url(), **_tls(settings), **options)


def dedicated(client: redis.asyncio.Redis, **overrides: Any) -> AbstractConnection:
    """A connection of its own, outside ``client``'s pool, made as the pool makes its own
    (``overrides`` replacing some of its options): the ingest's pipelined connection.

    With Sentinel it is redis-py's ``SentinelManagedConnection``, which asks the pool where
    the master is each time it connects, so it follows a failover as the pool's own do."""
    pool = client.connection_pool
    connection: AbstractConnection = pool.connection_class(
        **{**pool.connection_kwargs, **overrides})
    return connection


def describe(settings: Settings) -> str:
    """Where the clients go, for people: the URL (password masked) or the Sentinel master."""
    if settings.redis_sentinels:
        where = ",".join(f"{host}:{port}" for host, port in settings.redis_sentinels)
        scheme = "rediss" if _is_tls(settings) else "redis"
        return f"{scheme} master {_master(settings)!r} of the sentinels {where}"
    return mask_url(settings.require_redis_url())


def _master(settings: Settings) -> str:
    assert settings.redis_sentinel_master is not None  # Settings.parse requires it
    return settings.redis_sentinel_master


def _is_tls(settings: Settings) -> bool:
    return urlsplit(settings.require_redis_url()).scheme == "rediss"


def _tls(settings: Settings) -> dict[str, Any]:
    """The TLS options beyond what the URL says: the CA that signed the server's certificate."""
    if _is_tls(settings) and settings.redis_tls_ca_file:
        return {"ssl_ca_certs": settings.redis_tls_ca_file}
    return {}


def _master_options(settings: Settings) -> dict[str, Any]:
    """The URL's options for connections to the master: its credentials, database and query
    options; the host is the sentinels' to say."""
    options: dict[str, Any] = parse_url(settings.require_redis_url())  # type: ignore[no-untyped-call]
    for name in ("host", "port", "connection_class", "path"):
        options.pop(name, None)
    if _is_tls(settings):
        options["ssl"] = True  # redis-py's SentinelConnectionPool then speaks TLS
        options.update(_tls(settings))
    return options


def _sentinel_options(settings: Settings) -> dict[str, Any]:
    """How to reach the sentinels: their password, short timeouts, TLS as for the master."""
    options: dict[str, Any] = {"socket_connect_timeout": SENTINEL_CONNECT_TIMEOUT_S,
                               "socket_timeout": SENTINEL_TIMEOUT_S}
    if settings.redis_sentinel_password:
        options["password"] = settings.redis_sentinel_password
    if _is_tls(settings):
        options["ssl"] = True
        options.update(_tls(settings))
    return options


RIDE_THROUGH_RETRIES = 5  # 0.2 + 0.4 + 0.8 + 1.6 + 2 s: a Redis restart of ~5 s goes unnoticed


def redis_retry() -> Retry:
    """Backoff for a synchronous client's connection errors (RQ's, the scheduler's, a worker's)."""
    return Retry(ExponentialBackoff(cap=2.0, base=0.1), RIDE_THROUGH_RETRIES,
                 supported_errors=(redis.ConnectionError,))


def async_redis_retry() -> AsyncRetry:
    """The same backoff for the jobs' asyncio client."""
    return AsyncRetry(ExponentialBackoff(cap=2.0, base=0.1), RIDE_THROUGH_RETRIES,
                      supported_errors=(redis.ConnectionError,))


def stop_riding_through(connection: redis.Redis) -> None:
    """A process asked to stop no longer waits for Redis: its remaining commands (RQ's
    records of its death, the scheduler's lock) fail at once if Redis is gone, as it is when
    ``reactor dev`` is killed and its Redis goes with it."""
    connection.set_retry(Retry(NoBackoff(), 0))


def log_waiting(who: str) -> Callable[[RetryCallState], None]:
    """A tenacity ``before_sleep`` that says who waits for Redis, and why."""

    def log_failure(state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome is not None else None
        log.warning("%s waits for Redis: %s", who, failure)

    return log_failure
