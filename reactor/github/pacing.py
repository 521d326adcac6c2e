"""Pacing of content-creating writes per installation, below GitHub's secondary limits.

GitHub allows at most 80 content-generating requests a minute and 500 an hour
(https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits);
going over earns a 403 or 429 and a pause that stops every write, label changes included.
The reactor therefore spends its own, smaller budget first: :data:`WINDOWS`, with a margin for
the agents and workflows that write with the same App. Only content counts — an issue or a
comment created (:func:`creates_content`); label changes and dispatches do not.

The budget is one sliding-window log per installation in Redis (``keys.content_writes``), a
sorted set of the writes' times shared by every worker process. One Lua script checks both
windows and logs the write in one step, so concurrent workers can never let more through
than the budget. A sliding log rather than GCRA or a token bucket: those let a full burst
through on top of a steady rate, up to twice the limit in some 60-second window, while the
log holds every window to its limit exactly, at a cost of one entry per write (at most
:data:`PER_HOUR`). A refused write raises :class:`~reactor.core.errors.RateLimited` with the
moment the oldest write in the way leaves its window, and the job layer defers the job to
then, exactly as for GitHub's own limits.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from reactor.core.errors import RateLimited
from reactor.github._shared import Clock, RedisClient, utc_now
from reactor.store import keys

# GitHub allows 80 a minute and 500 an hour; these margins leave room for others' writes.
PER_MINUTE = 70
PER_HOUR = 450

# The last path segment of the POST routes that create content (issues, comments).
CONTENT_SEGMENTS = frozenset({"issues", "comments"})

# KEYS[1]: the installation's log (a sorted set of write times in milliseconds).
# ARGV: now (ms), a unique member for this write, then pairs of (limit, window in ms).
# Answers 0 when the write may go (it is logged), else the moment (ms) it may go.
_TAKE_LUA = """
local now = tonumber(ARGV[1])
local longest = 0
for i = 3, #ARGV, 2 do longest = math.max(longest, tonumber(ARGV[i + 1])) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - longest)
local free_at = 0
for i = 3, #ARGV, 2 do
  local limit, window = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local since = '(' .. (now - window)
  if redis.call('ZCOUNT', KEYS[1], since, '+inf') >= limit then
    -- The write may go once the limit-th newest write of the window has left it.
    local blocking = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', since, 'WITHSCORES',
                                'LIMIT', limit - 1, 1)
    free_at = math.max(free_at, tonumber(blocking[2]) + window)
  end
end
if free_at > 0 then return free_at end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], longest)
return 0
"""


@dataclass(frozen=True)
class Window:
    """At most ``limit`` content writes in any ``seconds``-long window."""

    limit: int
    seconds: int


WINDOWS = (Window(PER_MINUTE, 60), Window(PER_HOUR, 3600))


def creates_content(method: str, url: str) -> bool:
    """Whether the call creates an issue or a comment (GitHub's "content-generating")."""
    if method.upper() != "POST":
        return False
    return urlsplit(url).path.rstrip("/").rpartition("/")[2] in CONTENT_SEGMENTS


class ContentPacer:
    """Each installation's budget of content writes, shared by every process through Redis."""

    def __init__(
        self, redis: RedisClient, *, clock: Clock = utc_now, windows: tuple[Window, ...] = WINDOWS
    ) -> None:
        self._take = redis.register_script(_TAKE_LUA)
        self._clock = clock
        self._windows = [n for w in windows for n in (w.limit, w.seconds * 1000)]
        self._describe = ", ".join(f"{w.limit} in {w.seconds} s" for w in windows)

    async def take(self, installation_id: int, *, method: str, url: str) -> None:
        """Spend one content write of the installation's budget, or raise RateLimited.

        The error carries ``retry_at``, when the budget next has room, and status 429: the
        refusal is the reactor's own, made without a call to GitHub.
        """
        now_ms = int(self._clock().timestamp() * 1000)
        member = f"{now_ms}:{secrets.token_hex(6)}"
        free_at = int(await self._take(
            keys=[keys.content_writes(installation_id)], args=[now_ms, member, *self._windows]
        ))
        if free_at:
            until = datetime.fromtimestamp(free_at / 1000, UTC)
            raise RateLimited(
                f"installation {installation_id} has spent its budget of content writes "
                f"({self._describe}) until {until:%Y-%m-%d %H:%M:%S} UTC",
                retry_at=until, installation_id=installation_id, status=429, method=method,
                url=url,
            )
