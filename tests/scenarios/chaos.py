"""The chaos suite's players and faults (issue 10; see ``test_chaos.py``).

Players are sandbox users acting through the REST API like careful bots: a 5xx, a
secondary rate limit or a 429 is tried again after a pause (``Retry-After`` when given), a
label already gone counts as removed, and an issue creation that answered 5xx is looked for
before it is tried again (GitHub may have created it).

Each competition is one thread. Honest agents play every stage as fast as real bots: the
planner opens its issue and drives it to ``completed`` at once; every later agent starts the
moment the App hands it its issue (``status:starting`` labelled by the App) and moves on
without waiting for the reactor. Right after the hand-off from the planner (or a few seconds
later when nothing hands off), one adversary makes the competition's mistake, cycling
through :data:`MISTAKES` so that every kind the rules cover is made in every run.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis

from ghsandbox.testing import SandboxClient
from reactor.ops.demo.script import AGENTS, INTRUDER, MAINTAINER, STAGES
from reactor.store import audit
from tests.conftest import RedisServer, Stack
from tests.scenarios.chaos_checks import Event, History, Issue, Mistake
from tests.scenarios.conftest import SECOND_PLANNER, Scenario, agent_labels, names, title

AUTHORISED = {stage: frozenset({login, MAINTAINER} | ({SECOND_PLANNER} if stage == "planner"
                                                      else set()))
              for stage, login in AGENTS.items()}
MISTAKES = ("R1 second status", "R1 invalid move", "R2 early start", "R3 other competition",
            "R4 unauthorised", "R5 duplicate", "R6 reverse stage")
HONEST_STYLES = 3
RETRY_FOR_S = 60.0  # a player gives up on one call after this long (then the run has failed)


class GaveUp(Exception):
    """A call kept failing past RETRY_FOR_S."""


class Players:
    """The agents, the adversaries and a reader, on one repository of the sandbox."""

    def __init__(self, client: SandboxClient, owner: str, name: str, bot: str) -> None:
        self.client, self.path, self.bot = client, f"/repos/{owner}/{name}", bot
        self.made: list[Mistake] = []
        self._lock = threading.Lock()

    def call(self, login: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        deadline = time.monotonic() + RETRY_FOR_S
        while True:
            response = self._send(login, method, path, **kwargs)
            if response is not None and not _try_again(response):
                return response
            if time.monotonic() > deadline:
                raise GaveUp(f"{login} {method} {path}: {response and response.status_code}")
            time.sleep(_pause(response))

    def _send(self, login: str, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        """One request; None when the connection failed (a reset keep-alive connection)."""
        try:
            return self.client.as_user(login, method, self.path + path, **kwargs)
        except httpx.TransportError:
            return None

    def ok(self, login: str, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(login, method, path, **kwargs)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def open_issue(self, login: str, text: str, labels: list[str]) -> int:
        """Open an issue; after a 5xx or a failed connection, look for it (GitHub may have
        made it) before trying again."""
        deadline = time.monotonic() + RETRY_FOR_S
        while True:
            response = self._send(login, "POST", "/issues",
                                  json={"title": text, "labels": labels})
            if response is not None and response.status_code == 201:
                return int(response.json()["number"])
            if response is not None and not _try_again(response):
                raise AssertionError(f"{login} could not open {text!r}: {response.text}")
            if time.monotonic() > deadline:
                raise GaveUp(f"{login} could not open {text!r}")
            time.sleep(_pause(response))
            mine = self.ok("reader", "GET", "/issues", params={
                "creator": login, "state": "all", "per_page": 100})
            found = [i["number"] for i in mine if i["title"] == text]
            if found:
                return int(min(found))

    def add(self, login: str, number: int, *labels: str) -> None:
        self.ok(login, "POST", f"/issues/{number}/labels", json={"labels": list(labels)})

    def remove(self, login: str, number: int, label: str) -> None:
        response = self.call(login, "DELETE", f"/issues/{number}/labels/{label}")
        assert response.status_code in (200, 404), response.text  # 404: gone already

    def put(self, login: str, number: int, *labels: str) -> None:
        self.ok(login, "PUT", f"/issues/{number}/labels", json={"labels": sorted(labels)})

    def labels(self, number: int) -> set[str]:
        return names(self.ok("reader", "GET", f"/issues/{number}"))

    def last_event(self, number: int) -> int:
        events = self.ok("reader", "GET", f"/issues/{number}/events", params={"per_page": 100})
        return int(events[-1]["id"]) if events else 0

    def handed_off(self, number: int) -> bool:
        """Whether the App labelled the issue ``status:starting`` last (an agent starts only
        when the reactor hands it its issue, not when someone else labels it)."""
        events = self.ok("reader", "GET", f"/issues/{number}/events", params={"per_page": 100})
        starts = [e for e in events if e["event"] == "labeled"
                  and e["label"]["name"] == "status:starting"]
        return bool(starts) and starts[-1]["actor"]["login"] == self.bot

    def mistake(self, kind: str, comp: str, issue: int, actor: str,
                act: Callable[[], None] | None = None) -> None:
        """Make a mistake (``act``) and note which of ``actor``'s changes it was; without
        ``act``, the issue ``actor`` opened is the mistake."""
        if act is None:
            made = Mistake(kind, comp, issue, actor, whole=True)
        else:
            after = self.last_event(issue)
            act()
            made = Mistake(kind, comp, issue, actor, after, self.last_event(issue))
        with self._lock:
            self.made.append(made)


def _pause(response: httpx.Response | None) -> float:
    """How long to wait before trying again: ``Retry-After`` when given, else a moment."""
    wait = float(response.headers.get("retry-after", 0)) if response is not None else 0.0
    return wait or random.uniform(0.05, 0.3)


def _try_again(response: httpx.Response) -> bool:
    limited = response.status_code == 403 and "retry-after" in response.headers
    return response.status_code >= 500 or response.status_code == 429 or limited


class Board:
    """Which issues are in ``status:starting``, polled by one thread for every player."""

    def __init__(self, players: Players) -> None:
        self.players = players
        self.seen: dict[tuple[str, str], tuple[int, float]] = {}
        self.changed = threading.Condition()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self.stop.is_set():
            response = self.players.call("reader", "GET", "/issues", params={
                "state": "open", "labels": "status:starting", "per_page": 100})
            now = time.monotonic()
            with self.changed:
                for issue in response.json() if response.status_code == 200 else []:
                    labels = names(issue)
                    comps = [n[5:] for n in labels if n.startswith("comp:")]
                    stages = [n[6:] for n in labels if n.startswith("agent:")]
                    if len(comps) == 1 and len(stages) == 1:
                        self.seen[(comps[0], stages[0])] = (issue["number"], now)
                self.changed.notify_all()
            time.sleep(0.2)

    def wait_for(self, comp: str, stage: str, *, after: float, until: float) -> int | None:
        """The stage's issue once the App has handed it off (seen after ``after``), or None."""
        while time.monotonic() < until and not self.stop.is_set():
            with self.changed:
                number, at = self.seen.get((comp, stage), (0, 0.0))
                if not number or at <= after:
                    self.changed.wait(0.5)
                    continue
            if self.players.handed_off(number):
                return number
            after = at
        return None


@dataclass
class Workload:
    players: Players
    comps: list[str]
    until: float  # monotonic deadline for every wait
    handoff_wait_s: float = 10.0  # how long the adversary waits for the planner's hand-off
    stagger_s: float = 0.0  # competition i starts i × this after the first, so that a
    # competition is in flight whenever a fault strikes
    style: int | None = None  # every move in this style (default: each competition its own)
    failures: list[str] = field(default_factory=list)  # players that gave up, described

    def play(self, index: int, board: Board) -> None:
        comp, p = self.comps[index], self.players
        planner = p.open_issue(AGENTS["planner"], title(comp, "planner"),
                               sorted(agent_labels(comp, "planner")))
        p.add(AGENTS["planner"], planner, "status:starting")
        self._moves(planner, comp, "planner", index)
        done_at = time.monotonic()
        adversary = threading.Thread(target=self._caught, daemon=True,
                                     args=(index, planner, board, done_at))
        adversary.start()
        for k, stage in enumerate(STAGES[1:], start=1):
            number = board.wait_for(comp, stage, after=done_at, until=self.until)
            if number is None:
                break  # nothing handed off: the checkers will say so
            self._moves(number, comp, stage, index + k)
            done_at = time.monotonic()
        adversary.join(max(0.0, self.until - time.monotonic()))

    def _moves(self, number: int, comp: str, stage: str, style: int) -> None:
        """starting → running → completed, back to back, in one of three styles."""
        login, p = AGENTS[stage], self.players
        style = style if self.style is None else self.style
        running, completed = (agent_labels(comp, stage, f"status:{s}")
                              for s in ("running", "completed"))
        if style % HONEST_STYLES == 0:  # one request each
            p.put(login, number, *running)
            p.put(login, number, *completed)
        elif style % HONEST_STYLES == 1:  # one request, then add-then-remove
            p.put(login, number, *running)
            p.add(login, number, "status:completed")
            p.remove(login, number, "status:running")
        else:  # add-then-remove twice
            p.add(login, number, "status:running")
            p.remove(login, number, "status:starting")
            p.add(login, number, "status:completed")
            p.remove(login, number, "status:running")

    def _caught(self, index: int, planner: int, board: Board, done_at: float) -> None:
        """The adversary's thread: its failure is reported with the players'."""
        try:
            self._mistake(index, planner, board, done_at)
        except Exception as exc:
            self.failures.append(f"{self.comps[index]} adversary: {type(exc).__name__}: {exc}")

    def _mistake(self, index: int, planner: int, board: Board, done_at: float) -> None:
        comp, p = self.comps[index], self.players
        board.wait_for(comp, "analyzer", after=done_at,
                       until=min(self.until, time.monotonic() + self.handoff_wait_s))
        kind = MISTAKES[index % len(MISTAKES)]
        other = self.comps[(index + 1) % len(self.comps)]
        planner_bot, analyzer_bot, monitor_bot = (AGENTS[s] for s in
                                                  ("planner", "analyzer", "monitor"))
        if kind == "R1 second status":  # completed, then running added as well
            p.mistake(kind, comp, planner, planner_bot,
                      act=lambda: p.add(planner_bot, planner, "status:running"))
        elif kind == "R1 invalid move":  # completed → starting in one request
            p.mistake(kind, comp, planner, planner_bot, act=lambda: p.put(
                planner_bot, planner, *agent_labels(comp, "planner", "status:starting")))
        elif kind == "R2 early start":  # the monitor starts before the analyzer completed
            number = p.open_issue(monitor_bot, title(comp, "monitor"),
                                  sorted(agent_labels(comp, "monitor")))
            p.mistake(kind, comp, number, monitor_bot,
                      act=lambda: p.add(monitor_bot, number, "status:starting"))
        elif kind == "R3 other competition":
            p.mistake(kind, comp, planner, analyzer_bot,
                      act=lambda: p.add(analyzer_bot, planner, f"comp:{other}"))
        elif kind == "R4 unauthorised":  # completed → idle, by someone no agent of the stage
            p.mistake(kind, comp, planner, INTRUDER,
                      act=lambda: p.remove(INTRUDER, planner, "status:completed"))
        elif kind == "R5 duplicate":
            number = p.open_issue(SECOND_PLANNER, title(comp, "planner"),
                                  sorted(agent_labels(comp, "planner")))
            p.mistake(kind, comp, number, SECOND_PLANNER)
        else:  # R6: the analyzer opens an issue for the planner stage
            number = p.open_issue(analyzer_bot, title(comp, "planner", "redo"),
                                  sorted(agent_labels(comp, "planner")))
            p.mistake(kind, comp, number, analyzer_bot)

    def run(self) -> list[str]:
        """Play every competition at once; the failures (a player that gave up), described."""
        board = Board(self.players)
        board.thread.start()

        def one(index: int) -> None:
            time.sleep(index * self.stagger_s)
            try:
                self.play(index, board)
            except Exception as exc:  # reported by the test, with the checkers' findings
                self.failures.append(f"{self.comps[index]}: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=one, args=(i,), daemon=True)
                   for i in range(len(self.comps))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, self.until - time.monotonic()) + 5)
        board.stop.set()
        board.thread.join(5)
        return self.failures + [f"{t.name} still playing" for t in threads if t.is_alive()]


# -- faults -------------------------------------------------------------------------------------


# 2 % of writes fail with 502 unapplied, and 2 % of POSTs (labels, comments, issues) fail
# with 502 after GitHub applied them.
FAULTS = {
    "routes": {r"(POST|PUT|PATCH|DELETE) /repos/[^/]+/[^/]+/issues.*": {"status": 502,
                                                                       "rate": 0.02},
               r"POST /repos/[^/]+/[^/]+/issues.*": {"status": 502, "rate": 0.02,
                                                     "after": True}},
    "webhooks": {"duplicate": 0.1, "reorder": 0.1, "delay_ms": 5},
}


@dataclass
class Chaos:
    """Every fault at once while the workload plays (SPEC §8): deliveries duplicated,
    reordered and delayed; writes failing with 502 before or after they are applied; workers
    SIGKILLed and replaced; one secondary-rate-limit window; one Redis restart."""

    stack: Stack
    redis_server: RedisServer
    sandbox: SandboxClient
    kill_every_s: float
    limit_at_s: float
    restart_at_s: float
    log: list[str]

    def __post_init__(self) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.killed = 0

    def start(self) -> None:
        self.sandbox.control("POST", "faults", FAULTS)
        self.started = time.monotonic()
        self.thread.start()

    def end(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.sandbox.control("POST", "faults", {})

    def _run(self) -> None:
        events = sorted([(self.limit_at_s, self._limit), (self.restart_at_s, self._restart)])
        next_kill = self.started + self.kill_every_s
        while not self.stop.wait(0.2):
            now = time.monotonic()
            while events and now - self.started >= events[0][0]:
                events.pop(0)[1]()
            if now >= next_kill:
                self._kill_a_worker()
                next_kill = now + self.kill_every_s * random.uniform(0.5, 1.5)

    def _kill_a_worker(self) -> None:
        workers = [p for p in self.stack.processes if "worker" in p.args and p.poll() is None]
        victim = random.choice(workers)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        self.stack.processes.remove(victim)
        self.killed += 1
        self.stack.start("worker", "--name", f"chaos{self.killed}-{victim.pid}")
        self.log.append(f"{self._at()} SIGKILL worker {victim.pid}, started another")

    def _limit(self) -> None:
        self.sandbox.control("POST", "faults", {**FAULTS, "secondary_limit": {
            "retry_after": 3, "for_s": 4}})
        self.log.append(f"{self._at()} secondary rate limit for 4 s")

    def _restart(self) -> None:
        self.redis_server.stop()
        self.redis_server.start()
        self.log.append(f"{self._at()} Redis restarted")

    def _at(self) -> str:
        return f"t+{time.monotonic() - self.started:5.1f}s"


# -- what the run left ---------------------------------------------------------------------------


def history(players: Players, comps: list[str], *, webhook_url: str | None,
            redis_url: str | None, failed: list[str]) -> History:
    """The repository as the sandbox shows it, and the deliveries the reactor accounted for."""
    p = players
    issues: dict[int, Issue] = {}
    page = 1
    while True:
        batch = p.ok("reader", "GET", "/issues", params={"state": "all", "per_page": 100,
                                                        "page": page})
        for item in batch:
            number = item["number"]
            comments = p.ok("reader", "GET", f"/issues/{number}/comments",
                            params={"per_page": 100})
            issues[number] = Issue(
                number=number, title=item["title"], author=item["user"]["login"],
                state=item["state"], labels=names(item),
                comments=[c["body"] for c in comments if c["user"]["login"] == p.bot],
                events=_events(p, number),
                # no player links issues: every link is a hand-off's
                linked_from=[b["number"] for b in p.ok(
                    "reader", "GET", f"/issues/{number}/dependencies/blocked_by")])
        if len(batch) < 100:
            break
        page += 1
    answered: set[str] = set()
    accounted: set[str] = set()
    if webhook_url is not None and redis_url is not None:
        answered = {w["guid"] for w in p.client.webhooks() if w["url"] == webhook_url
                    and w["status_code"] is not None and 200 <= w["status_code"] < 300}
        client = redis.Redis.from_url(redis_url)
        try:
            accounted = {guid for r in audit.read(client, limit=None) for guid in r.guids()}
        finally:
            client.close()
        accounted |= {job.removesuffix("-slot") for job in failed}
    return History(issues=issues, bot=p.bot, stages=STAGES, authorised=AUTHORISED,
                   comps=comps, mistakes=list(p.made), answered=answered, accounted=accounted)


def _events(p: Players, number: int) -> list[Event]:
    found: list[Event] = []
    page = 1
    while True:
        batch = p.ok("reader", "GET", f"/issues/{number}/events",
                     params={"per_page": 100, "page": page})
        found += [Event(e["id"], e["event"], e["actor"]["login"],
                        e.get("label", {}).get("name")) for e in batch]
        if len(batch) < 100:
            return found
        page += 1


def scenario_players(s: Scenario) -> Players:
    return Players(s.client, s.owner, s.name, s.bot)
