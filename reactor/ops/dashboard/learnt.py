"""What a few stored deliveries say that never changes, learnt once per process by the
dashboard (:mod:`reactor.ops.dashboard.boards`) and kept, bounded, between refreshes.

- :class:`RepoNames`: a repository's id, full name and ``html_url``, from the payload of a
  stored delivery its newest audit records name (an id never changes; a renamed
  repository's newest name wins);
- :class:`DeliveryFacts`: when a delivery arrived at the web process (its stored record's
  header line: hand-off latency is measured from a completion's arrival), and how an
  ``issues.closed`` delivery's issue was closed (its payload's ``state_reason``).

A stored delivery larger than :data:`MAX_DELIVERY_BYTES` is not read; a few are read per
refresh (:data:`NAME_TRIES`, :data:`CLOSE_READS`, :data:`ARRIVAL_READS`), in pipelines of
:data:`CHUNK`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import redis.asyncio

from reactor.ops.dashboard import standing
from reactor.store import deliveries
from reactor.store.audit import AuditRecord

MAX_DELIVERY_BYTES = 1 << 20  # a stored delivery larger than this is not read
NAME_TRIES = 3  # stored deliveries read per unnamed repository and refresh
CLOSE_READS = 20  # stored ``closed`` deliveries read per refresh
ARRIVAL_READS = 500  # stored deliveries' header lines read per refresh
FACTS_KEPT = 20_000  # deliveries whose facts are remembered
CHUNK = 100  # header lines per Redis pipeline: its replies are parsed on the event loop


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
    payload = await deliveries.payload_of(client, guid, at_most=MAX_DELIVERY_BYTES)
    repo = payload.get("repository") if payload else None
    if not isinstance(repo, dict) or type(repo.get("id")) is not int:
        return None
    url = repo.get("html_url")
    safe = url if isinstance(url, str) and url.startswith(("https://", "http://")) else None
    return repo["id"], RepoName(str(repo.get("full_name") or repo["id"]), safe)


@dataclass
class DeliveryFacts:
    """What a stored delivery says that never changes, learnt once per process and kept for
    the newest :data:`FACTS_KEPT` deliveries: when it arrived at the web process, and (for
    an ``issues.closed`` delivery) its issue's ``state_reason``. None: not readable."""

    arrivals: dict[str, float | None] = field(default_factory=dict)
    closes: dict[str, str | None] = field(default_factory=dict)

    async def learn(self, client: redis.asyncio.Redis, *, arrivals: Sequence[str],
                    closes: Sequence[str]) -> None:
        """Read the facts of the deliveries named not known yet (a few per refresh)."""
        wanted = [g for g in dict.fromkeys(arrivals) if g not in self.arrivals][:ARRIVAL_READS]
        for start in range(0, len(wanted), CHUNK):
            self.arrivals.update(await deliveries.arrivals(client, wanted[start:start + CHUNK]))
        for guid in [g for g in dict.fromkeys(closes) if g not in self.closes][:CLOSE_READS]:
            self.closes[guid] = await _state_reason(client, guid)
        for known in (self.arrivals, self.closes):
            for guid in list(known)[:max(0, len(known) - FACTS_KEPT)]:
                del known[guid]

    def known_arrivals(self, guids: Iterable[str]) -> dict[str, float]:
        return {g: t for g in guids if (t := self.arrivals.get(g)) is not None}

    def known_closes(self, guids: Iterable[str]) -> dict[str, str]:
        return {g: how for g in guids if (how := self.closes.get(g))}


async def _state_reason(client: redis.asyncio.Redis, guid: str) -> str | None:
    """How the issue of a stored ``closed`` delivery was closed."""
    payload = await deliveries.payload_of(client, guid, at_most=MAX_DELIVERY_BYTES)
    issue = payload.get("issue") if payload else None
    reason = issue.get("state_reason") if isinstance(issue, dict) else None
    return reason if reason in (standing.COMPLETED, standing.NOT_PLANNED,
                                standing.DUPLICATE) else None
