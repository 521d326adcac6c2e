"""Fresh reads of what the rules decide on. The payload's copy of an issue is never trusted.

A competition is read with one paginated listing by its ``comp:`` label (open and closed);
issues named by a change but no longer carrying the label (its ``comp:`` label was removed)
are read one by one. Conditional requests make an unchanged page free
(https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from gidgethub.abc import GitHubAPI

from reactor.core.errors import GitHubError
from reactor.core.events import parse_issue
from reactor.core.markers import creation_key
from reactor.core.view import IssueSnapshot, Repo

# GitHub's reads can lag its writes: a 404 right after a creation is retried briefly.
NOT_FOUND_RETRIES = (0.2, 0.5, 1.0)


async def competition_issues(
    gh: GitHubAPI, repo: Repo, comp: str | None, also: Iterable[int]
) -> tuple[IssueSnapshot, ...]:
    """Every issue of ``comp`` (none for a lone issue), plus the issues in ``also``."""
    found: dict[int, IssueSnapshot] = {}
    if comp is not None:
        url = f"/repos/{repo.full_name}/issues{{?labels,state,per_page}}"
        params: dict[str, str | int] = {"labels": f"comp:{comp}", "state": "all", "per_page": 100}
        async for item in gh.getiter(url, params):
            if "pull_request" not in item:
                listed = parse_issue(item)
                found[listed.number] = listed
    for number in sorted(set(also) - set(found)):
        single = await one_issue(gh, repo, number)
        if single is not None:
            found[number] = single
    return tuple(found[n] for n in sorted(found))


async def one_issue(gh: GitHubAPI, repo: Repo, number: int) -> IssueSnapshot | None:
    """The issue, or None once it is gone (deleted or transferred) after brief retries."""
    for delay in (*NOT_FOUND_RETRIES, None):
        try:
            item: Any = await gh.getitem(f"/repos/{repo.full_name}/issues/{number}")
        except GitHubError as exc:
            if exc.status not in (404, 410):
                raise
            if delay is None:
                return None
            await asyncio.sleep(delay)
            continue
        return None if "pull_request" in item else parse_issue(item)
    return None


async def newest_agent_issue(gh: GitHubAPI, repo: Repo) -> int | None:
    """The number of the repository's newest open agent issue (one ``agent:`` label), from
    its 100 newest open issues; None when there is none."""
    url = f"/repos/{repo.full_name}/issues{{?state,sort,direction,per_page}}"
    params: dict[str, str | int] = {"state": "open", "sort": "created", "direction": "desc",
                                    "per_page": 100}
    items: Any = await gh.getitem(url, params)
    for item in items if isinstance(items, list) else ():
        if "pull_request" not in item and parse_issue(item).stage is not None:
            return int(item["number"])
    return None


def _written_by(item: Any, author: str) -> bool:
    """Whether ``author`` (the App's bot) wrote the issue or comment ``item``: anyone can
    paste a marker into a text of their own."""
    user = item.get("user") if isinstance(item, dict) else None
    login = user.get("login") if isinstance(user, dict) else None
    return isinstance(login, str) and login.casefold() == author.casefold()


async def has_comment(
    gh: GitHubAPI, repo: Repo, issue: int, marker: str, *, author: str
) -> bool:
    """Whether a comment by ``author`` on ``issue`` carries ``marker`` (a POST answered 5xx
    may have written it all the same)."""
    url = f"/repos/{repo.full_name}/issues/{issue}/comments{{?per_page}}"
    async for item in gh.getiter(url, {"per_page": 100}):
        if _written_by(item, author) and marker in str(item.get("body") or ""):
            return True
    return False


async def find_created(
    gh: GitHubAPI, repo: Repo, labels: Iterable[str], key: str, *, author: str
) -> int | None:
    """The issue ``author`` wrote with the creation marker of ``key`` among those with
    ``labels``, newest first: one a creation answered 5xx (or a worker killed mid-creation)
    may have made."""
    url = f"/repos/{repo.full_name}/issues{{?labels,state,sort,direction,per_page}}"
    params: dict[str, str | int] = {"labels": ",".join(labels), "state": "all",
                                    "sort": "created", "direction": "desc", "per_page": 100}
    items: Any = await gh.getitem(url, params)
    for item in items if isinstance(items, list) else ():
        if "pull_request" not in item and _written_by(item, author) \
                and creation_key(str(item.get("body") or "")) == key:
            return int(item["number"])
    return None


async def label_written(
    gh: GitHubAPI, repo: Repo, issue: int, label: str, action: str, *, author: str,
    since: datetime | None = None,
) -> bool:
    """Whether ``author`` (the App's bot) made the write ``action`` (``labeled`` or
    ``unlabeled``) of ``label``: the issue's latest event on the label is it, or — when
    ``since`` (the write's start) is given — such an event is no older than a second before
    it, though someone changed the label since (an agent taking its stage at once). A label
    write answered 5xx may have been made all the same
    (https://docs.github.com/en/rest/issues/events)."""
    latest, recent = None, False
    url = f"/repos/{repo.full_name}/issues/{issue}/events{{?per_page}}"
    async for item in gh.getiter(url, {"per_page": 100}):
        named = (item.get("label") or {}).get("name") if isinstance(item, dict) else None
        if isinstance(named, str) and named.casefold() == label.casefold():
            latest = item
            recent = recent or (since is not None and _ours(item, action, author)
                                and _at(item) >= since - WRITE_CLOCK_SLACK)
    return recent or (latest is not None and _ours(latest, action, author))


WRITE_CLOCK_SLACK = timedelta(seconds=1)  # events carry whole seconds


def _ours(event: dict[str, Any], action: str, author: str) -> bool:
    return event.get("event") == action and _written_by({"user": event.get("actor")}, author)


def _at(event: dict[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(event.get("created_at")).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


async def blocked_by(gh: GitHubAPI, repo: Repo, issue: int) -> frozenset[int]:
    """The issues of this repository GitHub lists as blocking ``issue``.
    https://docs.github.com/en/rest/issues/issue-dependencies"""
    url = f"/repos/{repo.full_name}/issues/{issue}/dependencies/blocked_by{{?per_page}}"
    found = set()
    async for item in gh.getiter(url, {"per_page": 100}):
        if str(item.get("repository_url", "")).endswith(f"/repos/{repo.full_name}"):
            found.add(int(item["number"]))
    return frozenset(found)
