"""``reactor status [--repo O/R] [--json]``: competitions × stages, as the reactor remembers them.

A cell holds what the reactor last *accepted* for each issue of that competition and stage
(:mod:`reactor.store.memory`: one hash per issue with its status, competition, stage and
since when), not a fresh read of GitHub; ``reactor reconcile`` rebuilds that memory from
GitHub whenever in doubt. The memory names repositories by id, so a rename or a transfer
keeps it; the names come from the App's own list of the repositories it is installed on
(``GET /app/installations``, then each installation's ``/installation/repositories``), read
afresh rather than kept as a note in Redis, so a renamed repository shows its new name and
one the App was removed from is left out. The columns follow the repository's
``.github/reactor.yml`` stage order (its cached copy, read through the App when not cached),
then any stage only the memory still names.

:func:`app_context`, :func:`repo_name` and :func:`progress` are shared with ``reactor graph``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from reactor.core.errors import ConfigError
from reactor.core.terminal import json_document, printable
from reactor.process.settings import Settings

if TYPE_CHECKING:  # the clients are imported when a command runs, not with `reactor --help`
    import redis.asyncio
    from gidgethub.abc import GitHubAPI

    from reactor.core.view import Repo
    from reactor.github import GitHubClient
    from reactor.shell.context import Context
    from reactor.store.memory import Recalled

_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+")
EMPTY = "-"
UNKNOWN = "unknown"  # remembered in a competition and stage, with no status accepted yet


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``status`` to ``reactor``'s subcommands."""
    about = ("show competitions × stages: each issue's status as the reactor last accepted "
             "it")
    parser = subparsers.add_parser("status", help=about, description=about)
    parser.add_argument("--repo", type=repo_name, metavar="O/R", help="only this repository")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per competition, one per line")
    parser.set_defaults(run=status)
    return parser


def status(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``reactor status`` (the parser's ``run``)."""
    settings.require_app()
    settings.require_redis_url()
    boards = asyncio.run(_read(args.repo, settings))
    for board in boards:
        lines = board.documents() if args.json else [*board.table(), ""]
        sys.stdout.write("".join(f"{line}\n" for line in lines))
    if not boards and not args.json:
        where = args.repo or "any repository"
        print(printable(f"no competition remembered for {where} yet: `reactor reconcile` "
                        "reads them from GitHub"))
    return 0


def repo_name(text: str) -> str:
    """``--repo``: an ``owner/name`` as GitHub spells repositories (argparse type)."""
    if not _REPO.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected owner/name, not {printable(text)!r}")
    return text


def progress(line: str) -> None:
    """One line of progress on stderr, where it does not mix with the output."""
    print(printable(line), file=sys.stderr, flush=True)


@asynccontextmanager
async def app_context(settings: Settings) -> AsyncIterator[Context]:
    """A worker's clients (Redis, the App's GitHub client, the App's login) for one command.

    A worker waits for Redis and GitHub to come back; a command says at once what is wrong:
    Redis is pinged first and ``GET /app`` is tried once, a refused JWT named as such.
    """
    import handlers
    from reactor.github import GitHubClient
    from reactor.shell.context import Context
    from reactor.store import connect
    from reactor.store.counters import AuditLog

    client = connect.async_client(settings, socket_connect_timeout=2, socket_timeout=30)
    sync_client = connect.sync_client(settings, socket_connect_timeout=2, socket_timeout=30)
    try:
        await client.ping()
        async with GitHubClient.from_settings(settings, redis=client) as github:
            login = await _app_login(github)
            yield Context(settings=settings, redis=client, sync_redis=sync_client,
                          audit_log=AuditLog(client), github=github, app_login=login,
                          router=handlers.router, turn_router=handlers.turn_router)
    finally:
        await client.aclose()
        sync_client.close()


async def locate_repo(ctx: Context, full_name: str) -> tuple[GitHubAPI, Repo, str | None]:
    """For a command on one repository: the installation's API object, the repository and its
    web address, found among the installation's repositories (ConfigError when the App is not
    installed there, or there is no such repository)."""
    from reactor.core.errors import GitHubError
    from reactor.core.view import Repo
    from reactor.github import repo_installation

    owner, name = full_name.split("/", 1)
    unknown = ConfigError(f"the App is not installed on {full_name} (or it does not exist)")
    try:
        installation = await repo_installation(ctx.github.app, owner, name)
    except GitHubError as exc:
        if exc.status in (403, 404):
            raise unknown from None
        raise
    gh = ctx.github.for_installation(installation.id)
    async for item in gh.getiter("/installation/repositories{?per_page}", {"per_page": 100},
                                 iterable_key="repositories"):
        if str(item["full_name"]).casefold() == full_name.casefold():
            repo = Repo(str(item["owner"]["login"]), str(item["name"]), int(item["id"]))
            return gh, repo, item.get("html_url")
    raise unknown

async def _app_login(github: GitHubClient) -> str:
    """The App's ``<slug>[bot]`` login (``GET /app``); a refused JWT is a ConfigError."""
    from reactor.core.errors import GitHubError
    from reactor.github import get_app

    try:
        return (await get_app(github.app)).bot_login
    except GitHubError as exc:
        if exc.status == 401:
            raise ConfigError("GitHub refused the App's JWT (401): APP_ID and PRIVATE_KEY do "
                              "not belong to the same App (`reactor doctor` says more)") from None
        raise


@dataclass(frozen=True)
class Entry:
    """One issue in a cell: its number, the status last accepted and since when."""

    issue: int
    status: str | None
    since: str | None

    def text(self) -> str:
        return f"#{self.issue} {self.status or UNKNOWN}"


@dataclass(frozen=True)
class Board:
    """One repository's competitions × stages: ``rows[comp][stage]`` are its issues."""

    repo: str
    stages: tuple[str, ...]
    rows: Mapping[str, Mapping[str, tuple[Entry, ...]]]

    def table(self) -> list[str]:
        """The repository's name, then the table, columns aligned, user text escaped."""
        header = ["competition", *self.stages]
        body = [[comp, *(", ".join(e.text() for e in self.rows[comp].get(s, ())) or EMPTY
                         for s in self.stages)] for comp in sorted(self.rows)]
        return [printable(self.repo), *aligned([header, *body])]

    def documents(self) -> list[str]:
        """One JSON document per competition, every stage present (empty when no issue)."""
        return [json_document(orjson.dumps(self.document(comp)).decode())
                for comp in sorted(self.rows)]

    def document(self, comp: str) -> dict[str, Any]:
        stages = {s: [{"issue": e.issue, "status": e.status, "since": e.since}
                      for e in self.rows[comp].get(s, ())] for s in self.stages}
        return {"repo": self.repo, "comp": comp, "stages": stages}


def board(repo: str, order: Sequence[str], recalled: Mapping[int, Recalled]) -> Board:
    """The board of what is remembered of one repository's issues; issues remembered in no
    competition or stage are left out."""
    rows: dict[str, dict[str, list[Entry]]] = defaultdict(lambda: defaultdict(list))
    for number, memo in sorted(recalled.items()):
        if memo.comp and memo.stage:
            rows[memo.comp][memo.stage].append(Entry(number, memo.status, memo.since))
    extra = sorted({s for stages in rows.values() for s in stages} - set(order))
    frozen = {comp: {s: tuple(found) for s, found in stages.items()}
              for comp, stages in rows.items()}
    return Board(repo, (*order, *extra), frozen)


def aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows of cells as lines, each column as wide as its widest cell, indented by two."""
    shown = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in shown) for i in range(len(shown[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in shown]


async def _read(only: str | None, settings: Settings) -> list[Board]:
    """The boards of every repository (or the one named) the reactor remembers issues of."""
    from reactor.shell.reconciler import repositories

    async with app_context(settings) as ctx:
        progress("status: reading the repositories the App is installed on")
        found = [pair async for pair in repositories(ctx, only)]
        if only is not None and not found:
            raise ConfigError(f"the App is not installed on {only} (or it does not exist)")
        remembered = await _remembered(ctx.redis, found[0][1].id if only else None)
        _note_departed(remembered, {repo.id for _, repo in found}, only=only)
        return [await _board(ctx, installation_id, repo, remembered[repo.id])
                for installation_id, repo in sorted(found, key=lambda f: f[1].full_name)
                if remembered.get(repo.id)]


async def _board(ctx: Context, installation_id: int, repo: Repo,
                 recalled: Mapping[int, Recalled]) -> Board:
    from reactor.shell import repoconfig

    config, _ = await repoconfig.load(ctx.redis, ctx.github.for_installation(installation_id),
                                      repo)
    return board(repo.full_name, config.stages, recalled)


async def _remembered(client: redis.asyncio.Redis, repo_id: int | None
                      ) -> dict[int, dict[int, Recalled]]:
    """The reactor's memory of every issue, by repository id (of ``repo_id``'s only)."""
    from reactor.store import memory

    numbers = await memory.remembered(client, repo_id)
    return {rid: await memory.recall(client, rid, sorted(issues))
            for rid, issues in numbers.items()}


def _note_departed(remembered: Mapping[int, Mapping[int, Recalled]], installed: set[int], *,
                   only: str | None) -> None:
    """Say on stderr how many repositories are remembered that the App is not installed on
    any more (their memory expires by itself)."""
    departed = [rid for rid, issues in remembered.items() if rid not in installed and issues]
    if only is None and departed:
        progress(f"status: {len(departed)} repositories with remembered issues are not "
                 "shown: the App is no longer installed on them")
