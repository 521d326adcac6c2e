"""``--state-dir``: the world as one JSON file, so a restarted sandbox carries on.

``state.json`` holds every account, installation, repository (labels, issues, files),
comment, token and id counter, plus the hook URLs added at run time. It is written
atomically (temporary file, then rename) at most every :data:`SAVE_EVERY_S` seconds while the
world changes, and once more at shutdown. ``app.json`` beside it keeps the App's generated
credentials, so the reactor's configuration stays valid across restarts.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import orjson

from ghsandbox.model import (
    Account,
    AccountType,
    Comment,
    File,
    Installation,
    Issue,
    Label,
    Repo,
    Token,
)
from ghsandbox.state import World

STATE_FILE = "state.json"
APP_FILE = "app.json"
SAVE_EVERY_S = 0.5
FORMAT = 1


def dump(world: World) -> bytes:
    """The world as JSON bytes (file contents base64)."""
    return orjson.dumps(
        {
            "format": FORMAT,
            "accounts": [asdict(a) for a in world.accounts.values()],
            "installations": [asdict(i) for i in world.installations.values()],
            "repos": [_repo(r) for r in world.repos.values()],
            "comments": [asdict(c) for c in world.comments.values()],
            "tokens": {value: asdict(t) for value, t in world.tokens.items()},
            "counters": world.counters,
            "hook_urls": world.hook_urls,
        }
    )


def _repo(repo: Repo) -> dict[str, Any]:
    out = {
        f.name: getattr(repo, f.name)
        for f in fields(repo)
        if f.name not in ("labels", "issues", "files")
    }
    out["labels"] = [asdict(lab) for lab in repo.labels.values()]
    out["issues"] = [asdict(i) for i in repo.issues.values()]
    out["files"] = [
        {"path": f.path, "content": base64.b64encode(f.content).decode()}
        for f in repo.files.values()
    ]
    return out


def load(raw: bytes, world: World) -> None:
    """Fill ``world`` from :func:`dump`'s output (ValueError when it is not that)."""
    data = orjson.loads(raw)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError("not a sandbox state file of a known format")
    for item in data["accounts"]:
        account = Account(item["login"], item["id"], AccountType(item["type"]))
        world.accounts[account.login.lower()] = account
    for item in data["installations"]:
        world.installations[item["id"]] = Installation(**item)
    for item in data["repos"]:
        repo = _load_repo(item)
        world.repos[repo.full_name.lower()] = repo
    for item in data["comments"]:
        world.comments[item["id"]] = Comment(**item)
    world.tokens = {value: Token(**item) for value, item in data["tokens"].items()}
    world.counters = {k: int(v) for k, v in data["counters"].items()}
    world.hook_urls = list(data["hook_urls"])
    world.reindex()


def _load_repo(item: dict[str, Any]) -> Repo:
    labels = [Label(**lab) for lab in item.pop("labels")]
    issues = [Issue(**i) for i in item.pop("issues")]
    files = [File.of(f["path"], base64.b64decode(f["content"])) for f in item.pop("files")]
    repo = Repo(**item)
    repo.labels = {lab.name.lower(): lab for lab in labels}
    repo.issues = {i.number: i for i in issues}
    repo.files = {f.path: f for f in files}
    return repo


def read_state(directory: Path, world: World) -> bool:
    """Load ``state.json`` from ``directory`` into ``world``; False when there is none."""
    path = directory / STATE_FILE
    if not path.is_file():
        return False
    load(path.read_bytes(), world)
    return True


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Saver:
    """Writes the world to ``state.json`` shortly after it changes, and at stop."""

    def __init__(self, directory: Path, world: World) -> None:
        self.path = directory / STATE_FILE
        self.world = world
        self.saved_version = world.version
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.save()

    def save(self) -> None:
        """Write now if anything changed since the last write."""
        if self.world.version != self.saved_version:
            version = self.world.version
            write_atomically(self.path, dump(self.world))
            self.saved_version = version

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(SAVE_EVERY_S)
            self.save()
