"""The dashboard's cost to everyone else (issue 17, finding 3): ``GET /`` while one tenant has
many issues, and how long a signed webhook waits meanwhile, one JSON line per figure.

``reactor serve`` runs as a process of its own against a private redis-server, which is
seeded in the form the dashboard reads (what :func:`reactor.store.memory.remember` writes,
the repository's last good config, and a stored delivery naming the repository, so every
issue is drawn as a link). Two layouts, each at several sizes:

- ``one``: one competition, its issues spread evenly over five stages (so each stage waits
  on the whole previous one: R7's graph has ``4 × (n/5)²`` stage edges);
- ``own``: each issue in a competition and a stage of its own (stages the config does not
  name: each is a column of its own, so a grid drawn in full is issues × issues cells).

Both also hold an hour of audit records (``--records``, 3,000 by default: as many as the page
reads), as a busy repository writes them — deliveries accepted and noted, reverts with their
actions, hand-offs with the completions they answered, and each delivery stored — so the
"Stuck", "Last hour" and "Recent decisions" panels are drawn from a full read.

Each round waits out the page's refresh period (so nothing cached answers it), sends
``GET /`` and, while it is unanswered, posts a signed ``issues`` delivery every 50 ms (the
first 10 ms after the GET) and times each answer; then a second ``GET /`` that a cache may
answer. Lines:

    {"figure": "dashboard", "layout", "issues", "records", "rounds", "get_ms_p50", "get_ms_max",
     "page_bytes", "cached_get_ms", "webhooks", "webhook_ms_p50", "webhook_ms_max",
     "target_get_ms": 5000, "target_page_bytes": 2000000, "target_webhook_ms": 1000}

    python -m bench.dashboard [--sizes 400 1000] [--layouts one own] [--rounds 3]
                              [--records 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis
import redis.asyncio

from bench._processes import serving
from reactor.ops.processes import free_port, private_redis
from reactor.store import keys, memory
from reactor.store.audit import AuditRecord
from reactor.store.deliveries import Delivery

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "bench"
SECRET = "bench-dashboard-secret"  # noqa: S105 - signs benchmark traffic only
REPO_ID = 4242
STAGES = ("planner", "analyzer", "executor", "monitor", "retrospective")
STATUSES = ("idle", "starting", "running", "completed", "error")
REFRESH_WAIT_S = 5.5  # the page's refresh period (5 s) and a little: no cache is fresh
WEBHOOK_EVERY_S = 0.05
TARGETS = {"target_get_ms": 5000, "target_page_bytes": 2_000_000, "target_webhook_ms": 1000}


def emit(figure: str, **values: Any) -> None:
    """One figure as a JSON line (floats to 0.1 ms), with the machine's core count."""
    shown = {k: round(v, 1) if isinstance(v, float) else v for k, v in values.items()}
    print(json.dumps({"figure": figure, **shown, "cores": os.cpu_count()}), flush=True)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def identities(layout: str, n: int) -> dict[int, tuple[str, str]]:
    """Issue number → (competition, stage) for ``n`` issues in ``layout``."""
    per_stage = -(-n // len(STAGES))
    if layout == "one":
        return {i: ("big", STAGES[(i - 1) // per_stage]) for i in range(1, n + 1)}
    return {i: (f"comp-{i:05d}", f"stage-{i:05d}") for i in range(1, n + 1)}


async def seed(url: str, layout: str, n: int, records: int) -> None:
    """Forget everything, then remember ``n`` issues as the reactor would have, and an hour
    of ``records`` audit records."""
    client = redis.asyncio.Redis.from_url(url)
    try:
        await client.flushdb()
        ids = identities(layout, n)
        await memory.remember(client, REPO_ID, identities=ids,
                              statuses={i: STATUSES[i % len(STATUSES)] for i in ids})
        await client.set(keys.config_good(REPO_ID), f"stages: [{', '.join(STAGES)}]\n")
        payload = {"repository": {"id": REPO_ID, "full_name": "bench/dashboard",
                                  "html_url": "https://github.com/bench/dashboard"}}
        named = Delivery(guid="bench-named", event="issues", body=orjson.dumps(payload),
                         received_at=time.time())
        await client.set(keys.delivery(named.guid), named.header() + named.body)
        await seed_records(client, ids, records, body=orjson.dumps(payload))
    finally:
        await client.aclose()


def hour_of_records(ids: dict[int, tuple[str, str]], count: int, *, now: float
                    ) -> Iterator[tuple[AuditRecord, float]]:
    """``count`` records spread over the hour before ``now``, oldest first, each with its
    delivery's arrival: mostly notes, a revert (two actions and the delivery's own record)
    every tenth, a hand-off (its comment and the completion's record) every twentieth."""
    numbers = sorted(ids)
    for i in range(count):
        at = now - 3600 + 3600 * (i + 1) / (count + 1)
        number = numbers[i % len(numbers)]
        comp, _stage = ids[number]
        base = {"at": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds"),
                "delivery": f"bench-{i}", "event": "issues", "repo": "bench/dashboard",
                "issue": str(number), "actor": "agent-bot"}
        if i % 20 == 19:
            yield AuditRecord(**base, outcome="applied", rule="R9",
                              detail=f"comp:{comp} Comment: R9 hand-off from #{number}"), at
            yield AuditRecord(**base, outcome="applied", rule="R9", action="labeled",
                              label="status:completed",
                              detail=f"comp:{comp} R9 hand-off from #{number}"), at - 0.4
        elif i % 10 == 9:
            for action in ("RemoveLabel: revert: status:running was not allowed",
                           "Comment: R2 revert: started before the stage before completed"):
                yield AuditRecord(**base, outcome="applied", rule="R2",
                                  detail=f"comp:{comp} {action}"), at
        else:
            yield AuditRecord(**base, outcome="noted", rule="R1", action="labeled",
                              detail=f"comp:{comp} accepted idle → starting by @bot-{i}"), at


async def seed_records(client: redis.asyncio.Redis, ids: dict[int, tuple[str, str]],
                       count: int, *, body: bytes) -> None:
    async with client.pipeline(transaction=False) as pipe:
        for record, arrived in hour_of_records(ids, count, now=time.time()):
            pipe.xadd(keys.AUDIT, record.to_fields())  # type: ignore[arg-type]
            stored = Delivery(guid=record.delivery, event="issues", body=body,
                              received_at=arrived)
            pipe.set(keys.delivery(stored.guid), stored.header() + stored.body)
        await pipe.execute()


def webhook() -> tuple[bytes, dict[str, str]]:
    """A signed ``issues.labeled`` delivery with a fresh GUID."""
    body = orjson.dumps({"action": "labeled", "issue": {"number": 1},
                         "repository": {"id": REPO_ID, "full_name": "bench/dashboard"},
                         "installation": {"id": 1}})
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-GitHub-Event": "issues", "X-GitHub-Delivery": str(uuid.uuid4()),
                  "X-Hub-Signature-256": signature, "Content-Type": "application/json"}


class Round:
    """One cold ``GET /`` with webhooks posted while it is unanswered."""

    def __init__(self, base: str, http: httpx.Client) -> None:
        self.base = base
        self.http = http
        self.get_s = 0.0
        self.page_bytes = 0
        self.webhook_s: list[float] = []
        self._done = threading.Event()

    def run(self) -> None:
        reader = threading.Thread(target=self._get)
        reader.start()
        time.sleep(0.01)
        with httpx.Client(timeout=30) as poster:
            while True:
                body, headers = webhook()
                start = time.perf_counter()
                answer = poster.post(f"{self.base}/api/github/webhooks", content=body,
                                     headers=headers)
                self.webhook_s.append(time.perf_counter() - start)
                if answer.status_code != 202:
                    raise RuntimeError(f"the webhook was answered {answer.status_code}")
                if self._done.wait(WEBHOOK_EVERY_S):
                    break
        reader.join()

    def _get(self) -> None:
        try:
            start = time.perf_counter()
            page = self.http.get(f"{self.base}/")
            self.get_s = time.perf_counter() - start
            page.raise_for_status()
            self.page_bytes = len(page.content)
        finally:
            self._done.set()


def measure(base: str, url: str, layout: str, n: int, rounds: int, records: int) -> None:
    asyncio.run(seed(url, layout, n, records))
    done: list[Round] = []
    cached: list[float] = []
    with httpx.Client(timeout=120) as http:  # one connection: no client set-up in the figures
        for _ in range(rounds):
            time.sleep(REFRESH_WAIT_S)
            one = Round(base, http)
            one.run()
            done.append(one)
            start = time.perf_counter()
            http.get(f"{base}/").raise_for_status()
            cached.append(time.perf_counter() - start)
    gets = [r.get_s * 1000 for r in done]
    hooks = [s * 1000 for r in done for s in r.webhook_s]
    emit("dashboard", layout=layout, issues=n, records=records, rounds=rounds,
         get_ms_p50=statistics.median(gets), get_ms_max=max(gets),
         page_bytes=max(r.page_bytes for r in done),
         cached_get_ms=statistics.median(cached) * 1000, webhooks=len(hooks),
         webhook_ms_p50=statistics.median(hooks), webhook_ms_max=max(hooks), **TARGETS)


@contextmanager
def reactor(workdir: Path) -> Iterator[tuple[str, str]]:
    """A private redis-server and ``reactor serve`` on it; yields (web URL, Redis URL)."""
    with private_redis(workdir / "redis") as url:
        port = free_port()
        env = {"REDIS_URL": url, "WEBHOOK_SECRET": SECRET, "LOG_LEVEL": "warning",
               "SENTRY_DSN": ""}
        argv = [sys.executable, "-m", "reactor", "serve", "--port", str(port)]
        with serving(argv, port=port, env=env, cwd=ROOT, log=workdir / "web.log"):
            yield f"http://127.0.0.1:{port}", url


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as data, reactor(Path(data)) as (base, url):
        for layout in args.layouts:
            for n in args.sizes:
                say(f"bench: dashboard, layout {layout}, {n} issues")
                measure(base, url, layout, n, args.rounds, args.records)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[400, 1000],
                        help="issues per run (400 1000)")
    parser.add_argument("--layouts", nargs="+", choices=("one", "own"), default=["one", "own"],
                        help="one competition, or a competition and stage each (both)")
    parser.add_argument("--rounds", type=int, default=3, help="cold GETs per size (3)")
    parser.add_argument("--records", type=int, default=3000,
                        help="audit records in the last hour (3000)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
