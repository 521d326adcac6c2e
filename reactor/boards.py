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
- the audit log's newest records. They name repositories by full name; a stored delivery of
  each names the repository's id and ``html_url`` (learnt once per process: an id never
  changes), from which the issue links are made — GitHub's, a GHES host's or the sandbox's.
  A repository no stored delivery names any more is shown by its id, without links.

What one tenant has is bounded before it is read in full: :data:`REPOSITORIES` repositories
(those with the newest audit records first) are read, the others only counted, and of each
the newest :data:`MAX_ISSUES` issues, read in pipelines of :data:`CHUNK`: redis-py parses
a pipeline's replies on the event loop that takes webhooks, in one go (in pipelines of 500,
a webhook waited up to 0.25 s while 5,000 issues were read; in pipelines of 100, 0.05 s:
``bench/dashboard.py``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice

import orjson
import redis.asyncio

from reactor.config import DEFAULT_CONFIG, RepoConfig, RepoConfigError, parse_config
from reactor.store import deliveries, keys, memory
from reactor.store.audit import AuditRecord

REPOSITORIES = 20  # drawn per page; the others are named, with their issue counts
MAX_ISSUES = 5000  # read per repository: the newest
CHUNK = 100  # issues per Redis pipeline: its replies are parsed on the event loop
RECENT_RECORDS = 400  # audit records read per refresh
RECORDS_SHOWN = 12  # per repository
MAX_DELIVERY_BYTES = 1 << 20  # a stored delivery larger than this is not read for a name
NAME_TRIES = 3  # stored deliveries read per unnamed repository and refresh
_ISSUE_KEY = re.compile(re.escape(keys.PREFIX) + r"issue:(\d+):(\d+)")
_SHOWN_OUTCOMES = frozenset({"applied", "rejected", "replayed"})


@dataclass(frozen=True, slots=True)
class RepoName:
    full_name: str
    html_url: str | None


@dataclass
class RepoNames:
    """Repository ids and names, learnt from stored deliveries (see the module docstring)."""

    by_id: dict[int, RepoName] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    async def learn(self, client: redis.asyncio.Redis, records: Iterable[AuditRecord]) -> None:
        """Name each repository ``records`` (newest first) mention that is not known yet, from
        the stored delivery of one of its newest records (a renamed repository: its new
        name); a few tries per refresh, as old deliveries expire."""
        tries: Counter[str] = Counter()
        named: set[int] = set()
        for record in records:
            if not record.repo or record.repo in self.ids or record.delivery == record.event:
                continue
            tries[record.repo] += 1
            found = None
            if tries[record.repo] <= NAME_TRIES:
                found = await _repository_of(client, record.delivery)
            if found is None:
                continue
            repo_id, name = found
            if repo_id not in named:  # the newest name of a renamed repository wins
                self.by_id[repo_id] = name
                named.add(repo_id)
            self.ids[name.full_name] = repo_id


async def _repository_of(client: redis.asyncio.Redis, guid: str) -> tuple[int, RepoName] | None:
    """The repository a stored delivery's payload names: id, full name and ``html_url``."""
    size = await client.strlen(keys.delivery(guid))
    if not 0 < size <= MAX_DELIVERY_BYTES:
        return None
    record: bytes | None = await client.get(keys.delivery(guid))  # type: ignore[assignment]
    try:
        payload = orjson.loads(deliveries.decode(guid, record).body) if record else None
    except ValueError:  # orjson.JSONDecodeError is one
        return None
    repo = payload.get("repository") if isinstance(payload, dict) else None
    if not isinstance(repo, dict) or type(repo.get("id")) is not int:
        return None
    url = repo.get("html_url")
    safe = url if isinstance(url, str) and url.startswith(("https://", "http://")) else None
    return repo["id"], RepoName(str(repo.get("full_name") or repo["id"]), safe)


@dataclass(frozen=True)
class Board:
    """One repository as the reactor remembers it: ``issues`` each have a competition and a
    stage; ``unread`` remembered issues were left unread (past :data:`MAX_ISSUES`)."""

    title: str
    html_url: str | None
    order: tuple[str, ...]  # the configured stages, in order
    issues: Mapping[int, memory.Recalled]
    native: Mapping[int, frozenset[int]]  # the "blocked by" links recorded, per issue
    records: tuple[AuditRecord, ...]
    unread: int = 0

    def link(self, number: int) -> str | None:
        return f"{self.html_url}/issues/{number}" if self.html_url else None


@dataclass(frozen=True)
class Boards:
    """The page's repositories: those drawn, and the title and remembered issue count of
    each one left out."""

    drawn: tuple[Board, ...]
    others: tuple[tuple[str, int], ...]


async def recent_records(client: redis.asyncio.Redis) -> list[AuditRecord]:
    """The newest audit records, newest first (one ``XREVRANGE``, unfiltered)."""
    entries: list[tuple[bytes, dict[bytes, bytes]]] = await client.xrevrange(  # type: ignore[assignment]
        keys.AUDIT, count=RECENT_RECORDS)
    return [AuditRecord.from_stream(entry_id, fields) for entry_id, fields in entries]


async def remembered(client: redis.asyncio.Redis) -> dict[int, list[int]]:
    """Per repository id, the numbers of the issues the reactor remembers anything of."""
    numbers: dict[int, list[int]] = {}
    pattern = keys.ISSUE.format(repo_id="*", issue="*")
    async for key in client.scan_iter(match=pattern, count=1000):
        found = _ISSUE_KEY.fullmatch(key.decode() if isinstance(key, bytes) else key)
        if found is not None:
            numbers.setdefault(int(found[1]), []).append(int(found[2]))
    return numbers


async def repo_config(client: redis.asyncio.Redis, repo_id: int) -> RepoConfig:
    """The repository's last good config (the defaults when none parsed yet)."""
    text: bytes | None = await client.get(keys.config_good(repo_id))  # type: ignore[assignment]
    try:
        return parse_config(text.decode("utf-8", "replace")) if text else DEFAULT_CONFIG
    except RepoConfigError:
        return DEFAULT_CONFIG


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


def _shown(records: Sequence[AuditRecord], repo: str | None) -> tuple[AuditRecord, ...]:
    """The repository's newest records that say something: a rule, an action, a refusal
    (not the echoes of the reactor's own writes, R10)."""
    mine = (r for r in records if repo and r.repo == repo and r.outcome != "skipped"
            and (r.rule or r.outcome in _SHOWN_OUTCOMES))
    return tuple(islice(mine, RECORDS_SHOWN))


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


async def _board(client: redis.asyncio.Redis, names: RepoNames, chosen: _Candidate,
                 numbers: Sequence[int], records: Sequence[AuditRecord]) -> Board:
    if chosen.repo_id is None:
        name = names.by_id.get(names.ids.get(chosen.title, -1))
        return Board(chosen.title, name.html_url if name else None, DEFAULT_CONFIG.stages,
                     {}, {}, _shown(records, chosen.title))
    name = names.by_id.get(chosen.repo_id)
    newest = sorted(numbers)[-MAX_ISSUES:]
    issues, native = await _issues(client, chosen.repo_id, newest)
    config = await repo_config(client, chosen.repo_id)
    return Board(chosen.title, name.html_url if name else None, config.stages, issues,
                 native, _shown(records, name.full_name if name else None),
                 unread=len(numbers) - len(newest))


async def boards(client: redis.asyncio.Redis, names: RepoNames) -> Boards:
    """A board per repository the reactor remembers issues of or has audit records of, for
    the first :data:`REPOSITORIES` of them; the others by title and issue count."""
    records = await recent_records(client)
    await names.learn(client, records)
    numbers = await remembered(client)
    candidates = _candidates(names, numbers, records)
    drawn = [await _board(client, names, c, numbers.get(c.repo_id or -1, []), records)
             for c in candidates[:REPOSITORIES]]
    return Boards(tuple(drawn), tuple((c.title, c.count) for c in candidates[REPOSITORIES:]))
