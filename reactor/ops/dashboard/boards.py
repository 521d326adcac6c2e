"""What the dashboard reads from Redis, per repository: a :class:`Board` each, bounded.

It reads Redis only, never GitHub: the web process keeps no App credentials or GitHub client
(SPEC §2: it stores and enqueues), a page that refreshes every few seconds spends no rate
limit, and it works when GitHub is down, which is when an operator looks. It reads what the
reactor believes, which is what one debugs:

- each issue the reactor judged: the status it accepted, its competition and stage
  (:func:`reactor.store.memory.recall`), found by a ``SCAN`` of those keys;
- the "blocked by" links the reactor recorded (R7's native edges). Issue bodies are not
  kept, so a body's ``depends on #N`` is not known here (``reactor graph`` reads GitHub);
- the stage order of the repository's last good ``.github/reactor.yml``;
- the audit log's newest records: the newest :data:`RECENT_RECORDS` whatever their age, and on back
  to an hour ago, :data:`HOUR_RECORDS` at most (:func:`reactor.store.audit.newest`), never the
  whole stream. They name repositories by full name; a stored delivery of each names the
  repository's id and ``html_url`` (learnt once per process: an id never changes), from which the
  issue links are made — GitHub's, a GHES host's or the sandbox's
  (:class:`reactor.ops.dashboard.learnt.RepoNames`). A repository no stored delivery names any more
  is shown by its id, without links;
- of a few stored deliveries the records name, what never changes, learnt once per process
  (:class:`reactor.ops.dashboard.learnt.DeliveryFacts`): when a completion that was handed off
  arrived (hand-off latency) and how a ``closed`` delivery's issue was closed.

A repository the reactor forgot (the App uninstalled, or the repository taken from it:
:mod:`reactor.store.tenants`) is left out, and so are the audit records naming it from before
then; records made since (the App given it again) bring it back.

What one tenant has is bounded before it is read in full: :data:`REPOSITORIES` repositories
(those with the newest audit records first) are read, the others only counted, and of each
the newest :data:`MAX_ISSUES` issues, read in pipelines of :data:`CHUNK`: redis-py parses
a pipeline's replies on the event loop that takes webhooks, in one go (in pipelines of 500,
a webhook waited up to 0.25 s while 5,000 issues were read; in pipelines of 100, 0.05 s:
``bench/dashboard.py``). The audit records are read :data:`RECORDS_CHUNK` at a time for the
same reason (3,000 records in pages of 1,000 held the event loop up to 0.1 s a page).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import redis.asyncio

from reactor.core.config import DEFAULT_CONFIG, RepoConfig
from reactor.ops.dashboard import pulse, recent, standing
from reactor.ops.dashboard.learnt import DeliveryFacts, RepoNames
from reactor.shell import repoconfig
from reactor.store import audit, memory, tenants
from reactor.store.audit import AuditRecord

REPOSITORIES = 20  # drawn per page; the others are named, with their issue counts
MAX_ISSUES = 5000  # read per repository: the newest
CHUNK = 100  # issues per Redis pipeline: its replies are parsed on the event loop
RECENT_RECORDS = 400  # audit records read per refresh, whatever their age
HOUR_RECORDS = 3000  # audit records read per refresh at most: the last hour's, newest first
RECORDS_CHUNK = 250  # audit records per XREVRANGE: its reply is parsed on the event loop


@dataclass(frozen=True)
class Board:
    """One repository as the reactor remembers it: ``issues`` each have a competition and a
    stage; ``unread`` remembered issues were left unread (past :data:`MAX_ISSUES`);
    ``records`` are its audit records read, newest first, and ``arrivals`` and ``closes``
    what their stored deliveries say (:class:`DeliveryFacts`)."""

    title: str
    html_url: str | None
    config: RepoConfig
    issues: Mapping[int, memory.Recalled]
    native: Mapping[int, frozenset[int]]  # the "blocked by" links recorded, per issue
    records: tuple[AuditRecord, ...]
    unread: int = 0
    arrivals: Mapping[str, float] = field(default_factory=dict)
    closes: Mapping[str, str] = field(default_factory=dict)

    @property
    def order(self) -> tuple[str, ...]:
        """The configured stages, in order."""
        return self.config.stages

    def link(self, number: int) -> str | None:
        return f"{self.html_url}/issues/{number}" if self.html_url else None


@dataclass(frozen=True)
class Boards:
    """The page's repositories: those drawn, and the title and remembered issue count of
    each one left out; ``now`` is when they were read, and ``cut`` the time of the oldest
    audit record read when the read's bound (:data:`HOUR_RECORDS`) stopped it short of an
    hour before (None: it was not)."""

    drawn: tuple[Board, ...]
    others: tuple[tuple[str, int], ...]
    now: datetime
    cut: datetime | None = None


def _id_time(entry_id: str) -> datetime:
    """When Redis appended a stream entry (its id's first part, in milliseconds)."""
    return datetime.fromtimestamp(int(entry_id.split("-", 1)[0]) / 1000, UTC)


async def _issues(client: redis.asyncio.Redis, repo_id: int, numbers: Sequence[int]
                  ) -> tuple[dict[int, memory.Recalled], dict[int, frozenset[int]]]:
    """The memory of ``numbers`` (those with a competition and a stage) and their recorded
    blockers, a pipeline of :data:`CHUNK` at a time."""
    issues: dict[int, memory.Recalled] = {}
    native: dict[int, frozenset[int]] = {}
    for start in range(0, len(numbers), CHUNK):
        recalled = await memory.recall(client, repo_id, numbers[start:start + CHUNK])
        placed = {n: r for n, r in recalled.items() if r.comp and r.stage}
        issues.update(placed)
        native.update(await memory.dependencies(client, repo_id, placed))
    return issues, native


def _mine(records: Sequence[AuditRecord], repo: str | None) -> tuple[AuditRecord, ...]:
    return tuple(r for r in records if repo and r.repo == repo)


@dataclass(frozen=True, slots=True)
class _Candidate:
    rank: float  # where the repository's newest record is among the recent ones
    repo_id: int | None  # None: known from audit records only
    title: str
    count: int


def _candidates(names: RepoNames, numbers: Mapping[int, list[int]],
                records: Sequence[AuditRecord]) -> list[_Candidate]:
    """Every repository, those with the newest records first, then by id."""
    rank: dict[str, int] = {}
    for i, record in enumerate(records):
        if record.repo:
            rank.setdefault(record.repo, i)
    found = []
    for repo_id, issues in numbers.items():
        name = names.by_id.get(repo_id)
        title = name.full_name if name else f"repository {repo_id}"
        found.append(_Candidate(rank.get(title, math.inf), repo_id, title, len(issues)))
    titles = {c.title for c in found}
    found += [_Candidate(i, None, repo, 0) for repo, i in rank.items() if repo not in titles]
    return sorted(found, key=lambda c: (c.rank, c.repo_id or 0))


def _not_forgotten(gone: Mapping[int, tuple[str, float]], records: Sequence[AuditRecord],
                   numbers: Mapping[int, list[int]]
                   ) -> tuple[list[AuditRecord], dict[int, list[int]]]:
    """``records`` but those naming a repository forgotten since, and ``numbers`` but those
    of a forgotten repository that no record kept names (one the App was given again)."""
    when = {name.casefold(): at for name, at in gone.values()}

    def shown(record: AuditRecord) -> bool:
        forgot = when.get(record.repo.casefold())
        return forgot is None or _id_time(record.id).timestamp() > forgot

    kept = [r for r in records if shown(r)]
    named = {r.repo.casefold() for r in kept}
    return kept, {repo_id: issues for repo_id, issues in numbers.items()
                  if repo_id not in gone or gone[repo_id][0].casefold() in named}


async def _board(client: redis.asyncio.Redis, names: RepoNames, chosen: _Candidate,
                 numbers: Sequence[int], records: Sequence[AuditRecord]) -> Board:
    if chosen.repo_id is None:
        name = names.by_id.get(names.ids.get(chosen.title, -1))
        return Board(chosen.title, name.html_url if name else None, DEFAULT_CONFIG,
                     {}, {}, _mine(records, chosen.title))
    name = names.by_id.get(chosen.repo_id)
    newest = sorted(numbers)[-MAX_ISSUES:]
    issues, native = await _issues(client, chosen.repo_id, newest)
    config = await repoconfig.last_good(client, chosen.repo_id)
    return Board(chosen.title, name.html_url if name else None, config, issues,
                 native, _mine(records, name.full_name if name else None),
                 unread=len(numbers) - len(newest))


async def _with_facts(client: redis.asyncio.Redis, facts: DeliveryFacts, drawn: list[Board],
                      *, now: datetime) -> list[Board]:
    """The boards with what their records' stored deliveries say (hand-off arrivals, how
    closed issues were closed), read for the deliveries not known yet."""
    arrivals = {i: pulse.handoff_deliveries(pulse.handoffs(b.records, now=now))
                for i, b in enumerate(drawn)}
    closes = {i: standing.close_deliveries(b.records) for i, b in enumerate(drawn)}
    await facts.learn(client, arrivals=[g for gs in arrivals.values() for g in gs],
                      closes=[g for gs in closes.values() for g in gs])
    return [replace(b, arrivals=facts.known_arrivals(arrivals[i]),
                    closes=facts.known_closes(closes[i])) for i, b in enumerate(drawn)]


async def boards(client: redis.asyncio.Redis, names: RepoNames, facts: DeliveryFacts, *,
                 now: datetime) -> Boards:
    """A board per repository the reactor remembers issues of or has audit records of, for
    the first :data:`REPOSITORIES` of them; the others by title and issue count."""
    records = await audit.newest(client, at_least=RECENT_RECORDS, since=now - pulse.HOUR,
                                 at_most=HOUR_RECORDS, page=RECORDS_CHUNK)
    records, numbers = _not_forgotten(await tenants.forgotten(client), records,
                                      await memory.remembered(client))
    await names.learn(client, records)
    candidates = _candidates(names, numbers, records)
    drawn = [await _board(client, names, c, numbers.get(c.repo_id or -1, []), records)
             for c in candidates[:REPOSITORIES]]
    drawn = await _with_facts(client, facts, drawn, now=now)
    cut = None
    if len(records) >= HOUR_RECORDS:  # the records' own times are what the charts count by
        cut = recent.moment(records[-1].at) or _id_time(records[-1].id)
    return Boards(tuple(drawn), tuple((c.title, c.count) for c in candidates[REPOSITORIES:]),
                  now, cut)
