"""Catch-up: redeliver the webhooks GitHub could not deliver (the reactor was down, or said 503).

GitHub does not retry a failed delivery. It keeps every attempt for three days and, asked to,
sends a delivery again with the same ``X-GitHub-Delivery`` GUID, which the reactor then accepts
exactly once (https://docs.github.com/en/webhooks/using-webhooks/handling-failed-webhook-deliveries,
https://docs.github.com/en/rest/apps/webhooks#list-deliveries-for-an-app-webhook).

A periodic job (``reactor.entrypoints.jobs.catch_up``, every minute) reads the App's
delivery log back to where its previous run left off and asks for a redelivery of every GUID
that has no successful (2xx) attempt, except

- a GUID the reactor accepted after all (its record is in Redis: GitHub gave up waiting
  for the answer, say), and
- a GUID whose redelivery was asked for a moment ago: after the n-th request the next waits
  :func:`hold` (50 s, doubling up to 30 min), so that GUID is not redelivered again before
  GitHub has tried, and a long outage does not cost a burst of requests every minute.

Runs take a Redis lock, so one runs at a time; a run asked for while another goes on waits
a moment for it (:data:`LOCK_WAIT_S`) rather than leave its work to the next minute. A run's
cursor for the next is its own start, or the newest attempt of a GUID it left waiting, if
older; the next run reads :data:`OVERLAP` further back, for attempts GitHub logs a little
late.

**Sooner than the minute.** The web process remembers the deliveries it had to answer 503
because Redis was away, and once Redis answers it deletes the job's period marker and those
GUIDs' holds (``reactor/store/ingest.py``): the scheduler then runs the catch-up within a
second, and it asks GitHub for those GUIDs whatever it asked before — GitHub has just tried
them. GitHub's log can show such an attempt a little late, so while one of those GUIDs is not
accepted the web process deletes the period marker again, a few times over 15 s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis.asyncio
from gidgethub.abc import GitHubAPI
from redis.exceptions import LockError

from reactor.core.errors import DeliveryNotFound, GitHubError, is_transient
from reactor.github import HookDelivery, list_deliveries, needing_redelivery, redeliver
from reactor.store import keys
from reactor.store.accept import UNACCEPTED_TTL_S

log = logging.getLogger(__name__)

WINDOW = timedelta(days=3)  # how long GitHub keeps deliveries
OVERLAP = timedelta(minutes=2)  # attempts may be logged after a run read past them
HOLD_BASE_S = 50  # a little under the job's period: a failed redelivery is tried next run
HOLD_CAP_S = 30 * 60
LOCK_TIMEOUT_S = 15 * 60  # longer than the job's timeout
LOCK_WAIT_S = 5.0  # a run asked for while another goes on waits for its end this long

Progress = Callable[[str], None]  # told what a long run is doing, one short line at a time


@dataclass(frozen=True)
class Plan:
    """The log's GUIDs without a successful attempt, each as its newest attempt, by fate."""

    redeliver: tuple[HookDelivery, ...] = ()
    accepted: tuple[HookDelivery, ...] = ()  # the reactor has it: no redelivery
    waiting: tuple[HookDelivery, ...] = ()  # a redelivery was asked for a moment ago


@dataclass(frozen=True)
class Report:
    """What one run did."""

    read: int
    redelivered: tuple[str, ...]
    accepted: int
    waiting: int
    refused: tuple[str, ...] = ()  # GitHub would not redeliver these (gone from its log)

    def summary(self) -> str:
        return (f"read {self.read} attempts; redelivered {len(self.redelivered)}, "
                f"already accepted {self.accepted}, waiting {self.waiting}, "
                f"refused {len(self.refused)}")


def hold(requests: int) -> int:
    """Seconds before another redelivery of a GUID whose redelivery was asked ``requests`` times."""
    return int(min(HOLD_CAP_S, HOLD_BASE_S * 2 ** (requests - 1)))


def partition(failed: Sequence[HookDelivery], *, seen: set[str], held: set[str]) -> Plan:
    """Sort failed GUIDs into those to redeliver, those accepted and those waiting (pure)."""
    return Plan(
        redeliver=tuple(d for d in failed if d.guid not in seen and d.guid not in held),
        accepted=tuple(d for d in failed if d.guid in seen),
        waiting=tuple(d for d in failed if d.guid not in seen and d.guid in held),
    )


def next_cursor(plan: Plan, *, started: datetime) -> datetime:
    """Where the next run reads back to: this run's start, or an attempt it left waiting."""
    return min([started, *(d.delivered_at for d in plan.waiting)])


async def read_log(
    gh: GitHubAPI, *, since: datetime | None, progress: Progress | None = None
) -> list[HookDelivery]:
    """Every attempt in the App's delivery log since ``since`` (None: all), newest first."""
    found: list[HookDelivery] = []
    async for delivery in list_deliveries(gh, since=since):
        found.append(delivery)
        if progress is not None and len(found) % 100 == 0:
            progress(f"read {len(found)} attempts of the delivery log")
    return found


async def plan(client: redis.asyncio.Redis, deliveries: Iterable[HookDelivery]) -> Plan:
    """The failed GUIDs of ``deliveries``, told apart by what Redis knows of each."""
    failed = needing_redelivery(deliveries)
    if not failed:
        return Plan()
    async with client.pipeline(transaction=False) as pipe:
        for delivery in failed:
            pipe.ttl(keys.delivery(delivery.guid))
            pipe.exists(keys.redelivery_hold(delivery.guid))
        flags = await pipe.execute()
    # a record is its GUID accepted, unless an older web process stored it apart and could
    # not accept it (reactor/store/accept.py): the redelivery takes such a record over
    seen = {d.guid for d, ttl in zip(failed, flags[0::2], strict=True)
            if ttl > UNACCEPTED_TTL_S}
    held = {d.guid for d, flag in zip(failed, flags[1::2], strict=True) if flag}
    return partition(failed, seen=seen, held=held)


async def redeliver_each(
    gh: GitHubAPI, client: redis.asyncio.Redis, deliveries: Sequence[HookDelivery], *,
    progress: Progress | None = None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Ask GitHub to redeliver each; the GUIDs redelivered, and those GitHub refused.

    A GUID another run claimed meanwhile is skipped. A transient failure (a rate limit,
    GitHub unavailable) ends the run: the rest wait for the next one.
    """
    done: list[str] = []
    refused: list[str] = []
    for number, delivery in enumerate(deliveries, 1):
        if not await claim(client, delivery.guid):
            continue
        try:
            await redeliver(gh, delivery.id)
        except GitHubError as exc:
            await client.delete(keys.redelivery_hold(delivery.guid))
            if is_transient(exc):
                raise
            log.warning("GitHub refused to redeliver %s: %s", delivery.guid, exc)
            refused.append(delivery.guid)
            continue
        done.append(delivery.guid)
        if progress is not None:
            progress(f"redelivered {number} of {len(deliveries)}")
    return tuple(done), tuple(refused)


async def claim(client: redis.asyncio.Redis, guid: str, *, force: bool = False) -> bool:
    """Record a redelivery request for ``guid``, unless (without ``force``) one was made
    within its hold; False when it was."""
    requests = int(await client.get(keys.redeliveries(guid)) or 0) + 1
    held = keys.redelivery_hold(guid)
    if not await client.set(held, requests, nx=not force, ex=hold(requests)):
        return False
    await client.set(keys.redeliveries(guid), requests, ex=int(WINDOW.total_seconds()))
    return True


async def catch_up(
    gh: GitHubAPI, client: redis.asyncio.Redis, *, now: datetime,
    progress: Progress | None = None,
) -> Report:
    """One scheduled run: read the log since the cursor, redeliver, move the cursor."""
    raw = await client.get(keys.CATCHUP_CURSOR)
    since = datetime.fromtimestamp(float(raw), UTC) if raw is not None else now - WINDOW
    since = max(since - OVERLAP, now - WINDOW)
    deliveries = await read_log(gh, since=since, progress=progress)
    todo = await plan(client, deliveries)
    done, refused = await redeliver_each(gh, client, todo.redeliver, progress=progress)
    cursor = next_cursor(todo, started=now)
    await client.set(keys.CATCHUP_CURSOR, repr(cursor.timestamp()))
    return Report(read=len(deliveries), redelivered=done, accepted=len(todo.accepted),
                  waiting=len(todo.waiting), refused=refused)


async def newest(gh: GitHubAPI, *, limit: int) -> list[HookDelivery]:
    """The newest ``limit`` attempts of the App's delivery log, newest first."""
    found: list[HookDelivery] = []
    async for delivery in list_deliveries(gh, per_page=min(100, limit)):
        found.append(delivery)
        if len(found) >= limit:
            break
    return found


async def list_failed(
    gh: GitHubAPI, client: redis.asyncio.Redis, *, progress: Progress | None = None
) -> list[tuple[HookDelivery, str]]:
    """Each GUID of the whole log with no successful attempt, as its newest attempt, with
    its state (``redeliver``, ``accepted`` or ``waiting``: see :class:`Plan`), oldest first."""
    todo = await plan(client, await read_log(gh, since=None, progress=progress))
    states = (("redeliver", todo.redeliver), ("accepted", todo.accepted),
              ("waiting", todo.waiting))
    rows = [(delivery, state) for state, found in states for delivery in found]
    return sorted(rows, key=lambda row: row[0].delivered_at)


async def redeliver_guid(
    gh: GitHubAPI, client: redis.asyncio.Redis, guid: str, *, progress: Progress | None = None
) -> HookDelivery:
    """Redeliver ``guid`` now, whatever its attempts; its newest attempt, which was sent again.

    Raises DeliveryNotFound when the log lacks it. The request counts as the catch-up job's
    own, which then leaves the GUID alone for its hold.
    """
    read = 0
    async for delivery in list_deliveries(gh):
        read += 1
        if progress is not None and read % 100 == 0:
            progress(f"looking for {guid}: read {read} attempts of the delivery log")
        if delivery.guid == guid:
            await claim(client, guid, force=True)
            await redeliver(gh, delivery.id)
            return delivery
    raise DeliveryNotFound(f"no delivery {guid} in the App's delivery log "
                           f"(GitHub keeps deliveries for {WINDOW.days} days)", delivery_id=guid)


async def run_once(gh: GitHubAPI, client: redis.asyncio.Redis, *, now: datetime) -> str:
    """A catch-up run under the lock; what it did, in a line (RQ keeps it as the result)."""
    lock = client.lock(keys.CATCHUP_LOCK, timeout=LOCK_TIMEOUT_S,
                       blocking_timeout=LOCK_WAIT_S)
    if not await lock.acquire():
        return "skipped: another catch-up run is going on"
    try:
        report = await catch_up(gh, client, now=now)
    except GitHubError as exc:
        if not is_transient(exc):
            raise
        log.warning("catch-up stopped; the next run goes on: %s", exc)
        return f"stopped: {exc}"
    finally:
        try:
            await lock.release()
        except LockError:
            log.warning("the catch-up lock expired before the run ended")
    if report.redelivered:
        log.info("catch-up: %s", report.summary())
    return report.summary()
