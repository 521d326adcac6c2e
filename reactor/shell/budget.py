"""One installation's share of a reconcile run: its GitHub calls metered, and where it stands.

SPEC §6 bounds what one tenant may cost the others: a sweep gives each installation a budget
of GitHub calls per run (:class:`Budget`), spent through a :class:`Metered` API object that
counts every request, pages and ``blocked_by`` reads included. A run checks the budget only
where stopping leaves nothing half done — before a repository, before each page of its
listing, before a competition, between two ``blocked_by`` reads — so a competition's
decision, once taken, is always applied whole (its writes may take the run past the budget
by :data:`WRITE_RESERVE` calls or so). Where it stopped is a :class:`Position`, kept by the
sweep as its cursor: the next run resumes there.

A repository's listing of open issues is read a window of :meth:`Budget.window` pages at a
time (oldest issues first), and the competitions found in a window are swept before the next
window is listed: a window takes at most a quarter of what a run may spend beyond the
reserve, so a run that begins at a window always has the rest for its competitions, and a
repository with more open issues than a run's budget can list is still swept, over several
runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import orjson
from gidgethub.abc import GitHubAPI

WRITE_RESERVE = 25  # calls kept back for a competition's writes once its reads are done
MIN_READS = 10  # blocked_by reads a competition makes however little is left: runs progress
LISTING_SHARE = 4  # a listing window takes at most 1/4 of a run's calls beyond the reserve


@dataclass
class Budget:
    """GitHub calls one installation may make in one run; ``limit`` None: no bound
    (``reactor reconcile`` by hand)."""

    limit: int | None = None
    spent: int = 0

    def left(self) -> float:
        return math.inf if self.limit is None else self.limit - self.spent

    def allows(self, calls: int = 1) -> bool:
        """Whether ``calls`` more still leave :data:`WRITE_RESERVE` for writes."""
        return self.left() >= calls + WRITE_RESERVE

    def window(self) -> int | None:
        """Listing pages swept at a time (None: the whole listing at once, no bound)."""
        if self.limit is None:
            return None
        return max(1, (self.limit - WRITE_RESERVE) // LISTING_SHARE)


class Metered(GitHubAPI):
    """A gidgethub API object that counts each request against ``budget`` and has ``inner``
    (the installation's own API object, with its token, retries and cache) make it."""

    def __init__(self, inner: GitHubAPI, budget: Budget) -> None:
        super().__init__(inner.requester, base_url=inner.base_url)
        self._inner = inner
        self.budget = budget

    async def _request(self, method: str, url: str, headers: Mapping[str, str],
                       body: bytes = b"") -> tuple[int, Mapping[str, str], bytes]:
        self.budget.spent += 1
        return await self._inner._request(method, url, headers, body)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@dataclass(frozen=True, slots=True)
class Position:
    """Where an installation's sweep stands: in the repository whose id is ``repo_id``
    (repositories go in order of id), the window of its listing that begins at page ``page``
    (windows go in order), its competition ``comp`` (in order of name), whose ``blocked_by``
    links were read up to issue ``after``. ``comp`` empty: the window has not begun."""

    repo_id: int
    comp: str = ""
    after: int = 0
    page: int = 1

    def passed(self, repo_id: int, comp: str | None = None, *, page: int = 1) -> bool:
        """Whether the repository (or the competition, in the window at ``page``) comes
        before this position: an earlier run swept it."""
        if comp is None:
            return repo_id < self.repo_id
        return (repo_id, page, comp) < (self.repo_id, self.page, self.comp)

    def first_page(self, repo_id: int) -> int:
        """The listing page the repository's sweep begins at."""
        return self.page if repo_id == self.repo_id else 1

    def resume_after(self, repo_id: int, comp: str, *, page: int = 1) -> int:
        """The issue after which the competition's ``blocked_by`` reads go on."""
        here = (repo_id, page, comp) == (self.repo_id, self.page, self.comp)
        return self.after if here else 0

    def dumps(self) -> str:
        return orjson.dumps([self.repo_id, self.comp, self.after, self.page]).decode()

    @classmethod
    def loads(cls, raw: bytes | str) -> Position | None:
        """The position written by :meth:`dumps` (or, without its page, by an earlier
        version); None for anything else (start afresh)."""
        try:
            repo_id, comp, after, *page = orjson.loads(raw)
            if len(page) > 1 or not isinstance(comp, str):
                return None
            return cls(int(repo_id), comp, int(after), max(1, int(page[0])) if page else 1)
        except (orjson.JSONDecodeError, TypeError, ValueError):
            return None


@dataclass
class Pass:
    """One installation's part of a run: its API object (metered, for the sweep), where the
    previous run stopped (``start``), the competition being swept (``at``), and where this
    run stopped for want of budget (``stopped``) or a rate limit (``limited``, at ``at``):
    the next run resumes there."""

    installation_id: int
    gh: GitHubAPI
    budget: Budget
    start: Position | None = None
    at: Position | None = None
    stopped: Position | None = None
    limited: datetime | None = None  # rate limited until then: the run ended early

    @classmethod
    def metered(cls, installation_id: int, inner: GitHubAPI, budget: Budget,
                start: Position | None = None) -> Pass:
        return cls(installation_id, Metered(inner, budget), budget, start)
