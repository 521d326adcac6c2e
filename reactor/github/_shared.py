"""Small helpers shared by the modules of this package (no GitHub logic lives here)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from redis.asyncio import Redis

Clock = Callable[[], datetime]

# The asyncio Redis client (redis-py ships its own type hints).
RedisClient: TypeAlias = "Redis"

# Redis scope of App-level (JWT) calls, beside the numeric ids of installations.
APP_SCOPE = "app"

# Compare-and-delete: remove a key only while it still holds what this process wrote, so a
# slow process never deletes a lock or a token that another process has since replaced.
DELETE_IF_VALUE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
DELETE_IF_FIELD = """
if redis.call('hget', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('del', KEYS[1]) end
return 0
"""


def utc_now() -> datetime:
    """The current time, aware and in UTC (the default clock of every component)."""
    return datetime.now(UTC)


def scope(installation_id: int | None) -> int | str:
    """The Redis key scope of a call: the installation id, or ``app`` for App-level calls."""
    return APP_SCOPE if installation_id is None else installation_id


def as_text(value: bytes | str) -> str:
    """A Redis reply as text, whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value


def as_bytes(value: bytes | str) -> bytes:
    """A Redis reply as bytes, whether or not the client decodes responses."""
    return value.encode() if isinstance(value, str) else value
