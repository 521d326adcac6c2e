"""Redis clients that read and never write: what ``reactor replay --dry-run`` is given.

A dry run takes the live path's reads — the reactor's memory, the cached config, the
installation tokens and ETags other processes cached — so what it prints is what the live
path would decide, while the database stays exactly as it was (SPEC §4: "writes nothing"):

- a command Redis documents as a read is sent;
- a write (the caches' ``SET``/``HSET``/``EXPIRE``, a script) is not sent, and is answered as
  if it had succeeded, so the caller carries on (a token fetched on a cache miss is used once,
  not cached);
- any other command — one that both reads and writes, such as ``LMOVE`` or ``GETDEL``, or
  one this module does not know — raises :class:`ReadOnlyViolation`: a dry run that needs it
  stops rather than print a decision taken on a made-up answer.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
from redis.asyncio.client import Pipeline

from reactor.core.errors import StoreUnavailable

READS = frozenset({
    "GET", "MGET", "STRLEN", "GETRANGE", "EXISTS", "TYPE", "TTL", "PTTL", "HGET", "HMGET",
    "HGETALL", "HEXISTS", "HLEN", "HKEYS", "HVALS", "HSCAN", "SMEMBERS", "SISMEMBER",
    "SMISMEMBER", "SCARD", "SSCAN", "LRANGE", "LLEN", "LINDEX", "ZRANGE", "ZRANGEBYSCORE",
    "ZREVRANGE", "ZREVRANGEBYSCORE", "ZSCORE", "ZMSCORE", "ZCARD", "ZCOUNT", "ZRANK", "ZSCAN",
    "XRANGE", "XREVRANGE", "XLEN", "SCAN", "DBSIZE", "PING", "ECHO", "TIME", "INFO",
})  # fmt: skip
# Writes whose answer no dry-run caller reads beyond "it worked".
WRITES = frozenset({
    "SET", "SETEX", "PSETEX", "SETNX", "MSET", "DEL", "UNLINK", "EXPIRE", "PEXPIRE",
    "EXPIREAT", "PEXPIREAT", "PERSIST", "HSET", "HSETNX", "HMSET", "HDEL", "HINCRBY", "SADD",
    "SREM", "LPUSH", "RPUSH", "LTRIM", "LREM", "ZADD", "ZREM", "ZREMRANGEBYSCORE",
    "ZREMRANGEBYRANK", "XADD", "XTRIM", "XDEL", "EVAL", "EVALSHA", "FCALL",
})  # fmt: skip


class ReadOnlyViolation(StoreUnavailable):
    """A dry run reached a Redis command it can neither send nor pretend to have sent."""


def _sends(command: object) -> bool:
    """True for a read (send it), False for a write (pretend); raise for anything else."""
    name = (command.decode() if isinstance(command, bytes) else str(command)).upper()
    if name in READS:
        return True
    if name in WRITES:
        return False
    raise ReadOnlyViolation(f"a dry run writes nothing to Redis, and cannot run {name}")


class ReadOnlyRedis(redis.asyncio.Redis):
    """An asyncio Redis client that sends reads only (see the module docstring)."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if _sends(args[0]):
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        return True

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        return _ReadOnlyPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )


class _ReadOnlyPipeline(Pipeline):
    """A pipeline that sends its reads and answers its writes as :class:`ReadOnlyRedis`."""

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        queued = self.command_stack
        sent = [_sends(args[0]) for args, _ in queued]
        self.command_stack = [entry for entry, send in zip(queued, sent, strict=True) if send]
        answers = iter(await super().execute(raise_on_error))  # resets the pipeline
        return [next(answers) if send else True for send in sent]


class ReadOnlySyncRedis(redis.Redis):
    """The synchronous client RQ would schedule jobs with; a dry run schedules none, so it
    sends reads and refuses everything else."""

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if not _sends(args[0]):
            raise ReadOnlyViolation(f"a dry run writes nothing to Redis, and cannot run "
                                    f"{args[0]}")
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Any:
        raise ReadOnlyViolation("a dry run writes nothing to Redis, and runs no pipeline here")
