"""The demo's agents: sandbox users that react to ``issues`` webhooks, labels only.

An honest agent works an issue of its stage that the reactor moved to ``status:starting`` (a
hand-off) or that it started itself (a planner opening its competition, an agent starting
over after a timeout): it moves it to ``running`` in one request, works, and moves it to
``completed`` in two (add the new label, then remove the old one), reading the issue fresh
before each move as real agents do. The mistakes of :mod:`.script` are made on the way.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import httpx

from reactor.core.terminal import printable
from reactor.ops.demo.script import (
    AGENTS,
    COMPETITIONS,
    CONFIG,
    EXECUTOR_TIMEOUT_S,
    HANGS,
    INTRUDER,
    MAINTAINER,
    PING_PONG_GAP_S,
    PING_PONG_LABEL,
    PING_PONG_TURNS,
    RUNAWAY,
    RUNAWAY_LABEL,
    RUNAWAY_MOVES,
    STAGES,
    START_S,
    TRIGGERS,
    UNAUTHORISED_AFTER_S,
    WORK_S,
    Competition,
    Mistake,
    Moment,
    issue_title,
)

log = logging.getLogger(__name__)
EPISODES_S = 90.0  # how long the demo waits, once both competitions are done, for the rest


class Users:
    """The sandbox's REST API for one repository, acting as any user (``token user:<login>``)."""

    def __init__(self, http: httpx.AsyncClient, repo: str) -> None:
        self.http, self.path = http, f"/repos/{repo}"

    async def call(self, login: str, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(method, self.path + path, json=body,
                                           headers={"Authorization": f"token user:{login}"})
        response.raise_for_status()
        return response.json() if response.content else None

    async def labels(self, number: int) -> list[str]:
        issue = await self.call("reader", "GET", f"/issues/{number}")
        return [label["name"] for label in issue["labels"]]

    async def open_issue(self, login: str, title: str, labels: list[str]) -> int:
        issue = await self.call(login, "POST", "/issues", {"title": title, "labels": labels})
        return int(issue["number"])


def _value(labels: set[str], prefix: str) -> str:
    return next((name.removeprefix(prefix) for name in sorted(labels)
                 if name.startswith(prefix)), "")


class Agents:
    """Every demo agent at once: one webhook receiver, one task per piece of work."""

    def __init__(self, users: Users, *, app_login: str,
                 say: Callable[[str], None] = lambda line: print(line, flush=True)) -> None:
        self.users, self.app_login, self._say = users, app_login, say
        self.own_starts: set[int] = set()  # issues an agent started itself
        self.working: set[int] = set()
        self.hung: set[tuple[str, str]] = set()
        self.made: set[Mistake] = set()
        self.numbers: dict[tuple[str, str], int] = {}  # (comp, stage) -> first issue seen
        self.finished: dict[str, float] = {}  # competition -> seconds it took
        self.done = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._began = time.monotonic()

    # the script -------------------------------------------------------------------------------

    async def play(self) -> None:
        """Write the config, open both competitions, and wait until both have finished."""
        await self._write_config()
        for comp in COMPETITIONS:
            self._spawn(self._kick_off(comp))
        await self.done.wait()
        if self._tasks:  # a mistake still playing out (a pause its maintainer lifts)
            await asyncio.wait(set(self._tasks), timeout=EPISODES_S)
        took = ", ".join(f"{comp} in {seconds:.0f} s" for comp, seconds in self.finished.items())
        self.say("", "demo", 0, f"both competitions finished ({took}); every mistake was "
                 "undone. The sandbox stays up for your own agents; Ctrl-C stops everything.")

    async def _write_config(self) -> None:
        content = base64.b64encode(CONFIG.encode()).decode()
        await self.users.call(MAINTAINER, "PUT", "/contents/.github/reactor.yml",
                              {"message": "reactor config for the demo", "content": content})
        self.say("", MAINTAINER, 0, "wrote .github/reactor.yml (five stages, one agent each, "
                 f"executor timeout {EXECUTOR_TIMEOUT_S}s)")
        await asyncio.sleep(1.0)  # the reactor reads it on the push webhook

    async def _kick_off(self, comp: Competition) -> None:
        await asyncio.sleep(comp.delay_s)
        login = AGENTS["planner"]
        number = await self.users.open_issue(login, issue_title(comp.name, "planner", comp.task),
                                             ["agent:planner", f"comp:{comp.name}"])
        self.say(comp.name, login, number, "opened the planner issue")
        self.own_starts.add(number)
        await self._move(login, number, None, "starting")

    # webhooks ---------------------------------------------------------------------------------

    def on_webhook(self, event: str, payload: dict[str, Any]) -> None:
        """React to one delivery; the work is done in tasks, so the receiver answers at once."""
        issue = payload.get("issue")
        if event != "issues" or not isinstance(issue, dict) or issue.get("state") != "open":
            return
        labels = {label["name"] for label in issue.get("labels", [])}
        comp, stage = _value(labels, "comp:"), _value(labels, "agent:")
        if not comp or stage not in AGENTS:
            return
        number, status = int(issue["number"]), _value(labels, "status:")
        sender = str(payload.get("sender", {}).get("login", ""))
        self.numbers.setdefault((comp, stage), number)
        added = payload.get("label", {}).get("name") if payload.get("action") == "labeled" else None
        if added == f"status:{status}":
            self._on_status(Moment(comp, stage, status), number, sender)

    def _on_status(self, moment: Moment, number: int, sender: str) -> None:
        mistake = TRIGGERS.get(moment)
        if mistake is not None and mistake not in self.made:
            self.made.add(mistake)
            self._spawn(self._make(mistake, moment.comp))
        if moment.status == "starting" and number not in self.working and (
                sender == self.app_login or number in self.own_starts):
            self.own_starts.discard(number)
            self.working.add(number)
            self._spawn(self._work(moment.comp, moment.stage, number))
        elif moment.status == "timeout" and sender == self.app_login:
            self._spawn(self._start_over(moment.comp, moment.stage, number))

    # honest work ------------------------------------------------------------------------------

    async def _work(self, comp: str, stage: str, number: int) -> None:
        login = AGENTS[stage]
        try:
            await asyncio.sleep(START_S)
            if not await self._move(login, number, "starting", "running"):
                return
            if (comp, stage) in HANGS and (comp, stage) not in self.hung:
                self.hung.add((comp, stage))
                self.say(comp, login, number, "is stuck: it will never report back (mistake: "
                         "a hang, for R8)")
                self._spawn(self._unauthorised(comp, number))
                return
            await asyncio.sleep(WORK_S)
            if await self._move(login, number, "running", "completed", one_request=False):
                self._finish(comp, stage)
        finally:
            self.working.discard(number)

    async def _start_over(self, comp: str, stage: str, number: int) -> None:
        login = AGENTS[stage]
        await asyncio.sleep(START_S)
        self.own_starts.add(number)
        self.say(comp, login, number, "saw its timeout and starts over")
        await self._move(login, number, "timeout", "starting")

    def _finish(self, comp: str, stage: str) -> None:
        if stage == STAGES[-1]:
            self.finished[comp] = time.monotonic() - self._began
            if len(self.finished) == len(COMPETITIONS):
                self.done.set()

    async def _move(self, login: str, number: int, old: str | None, new: str, *,
                    one_request: bool = True) -> bool:
        """Move ``number`` from ``old`` (``None``: no status) to ``new``, if it still is there."""
        labels = await self.users.labels(number)
        statuses = [name for name in labels if name.startswith("status:")]
        if statuses != ([f"status:{old}"] if old else []):
            return False
        comp = _value(set(labels), "comp:")
        self.say(comp, login, number, f"{old or 'idle'} → {new}")
        if one_request or old is None:
            kept = [name for name in labels if not name.startswith("status:")]
            await self.users.call(login, "PUT", f"/issues/{number}/labels",
                                  {"labels": [*kept, f"status:{new}"]})
        else:
            await self.users.call(login, "POST", f"/issues/{number}/labels",
                                  {"labels": [f"status:{new}"]})
            await self.users.call(login, "DELETE", f"/issues/{number}/labels/status:{old}")
        return True

    # mistakes ---------------------------------------------------------------------------------

    async def _make(self, mistake: Mistake, comp: str) -> None:
        await asyncio.sleep(START_S / 2)
        if mistake is Mistake.DUPLICATE:
            login, task = AGENTS["planner"], _task(comp)
            number = await self.users.open_issue(login, issue_title(comp, "planner", task),
                                                 ["agent:planner", f"comp:{comp}"])
            self.say(comp, login, number, "opened the planner issue again (mistake: a "
                     "duplicate, for R5)")
        elif mistake is Mistake.CROSS_COMPETITION:
            login, number = AGENTS["analyzer"], self.numbers[(comp, "planner")]
            self.say(comp, login, number, "adds comp:house to it (mistake: another "
                     "competition's label, for R3)")
            await self.users.call(login, "POST", f"/issues/{number}/labels",
                                  {"labels": ["comp:house"]})
        elif mistake is Mistake.EARLY_START:
            login = AGENTS["monitor"]
            number = await self.users.open_issue(login, issue_title(comp, "monitor", _task(comp)),
                                                 ["agent:monitor", f"comp:{comp}"])
            self.say(comp, login, number, "opened the monitor issue and starts it before "
                     "the executor completed (mistake: out of order, for R2)")
            await self.users.call(login, "POST", f"/issues/{number}/labels",
                                  {"labels": ["status:starting"]})
        elif mistake is Mistake.PING_PONG:
            await self._ping_pong(comp)
        elif mistake is Mistake.RUNAWAY:
            await self._runaway(comp)

    async def _ping_pong(self, comp: str) -> None:
        number, label = self.numbers[(comp, "planner")], PING_PONG_LABEL
        players = (AGENTS["executor"], AGENTS["monitor"])
        self.say(comp, players[0], number, f"and {players[1]} take turns adding and removing "
                 f"{label} (mistake: a ping-pong, for R12)")
        for turn in range(PING_PONG_TURNS):
            login = players[turn % 2]
            if label in await self.users.labels(number):
                await self.users.call(login, "DELETE", f"/issues/{number}/labels/{label}")
            else:
                await self.users.call(login, "POST", f"/issues/{number}/labels",
                                      {"labels": [label]})
            await asyncio.sleep(PING_PONG_GAP_S)
        for _ in range(240):  # then the maintainer settles it and hands it back
            await asyncio.sleep(0.25)
            if "reactor:needs-human" in await self.users.labels(number):
                self.say(comp, MAINTAINER, number, "settles the label and hands the issue back")
                await self.users.call(MAINTAINER, "DELETE",
                                      f"/issues/{number}/labels/reactor:needs-human")
                return

    async def _runaway(self, comp: str) -> None:
        login, number = RUNAWAY, self.numbers[(comp, "retrospective")]
        self.say(comp, login, number, f"goes haywire, flipping {RUNAWAY_LABEL} as fast as it "
                 "can (mistake: a runaway agent, for R11)")
        for move in range(RUNAWAY_MOVES):
            if move % 4 == 3 and "reactor:paused" in await self.users.labels(number):
                self.say(comp, login, number, "sees reactor:paused and stops")
                break
            if move % 2:
                await self.users.call(login, "DELETE", f"/issues/{number}/labels/{RUNAWAY_LABEL}")
            else:
                await self.users.call(login, "POST", f"/issues/{number}/labels",
                                      {"labels": [RUNAWAY_LABEL]})
        for _ in range(240):  # the maintainer looks, and resumes the competition
            await asyncio.sleep(0.25)
            if "reactor:paused" in await self.users.labels(number):
                await asyncio.sleep(1.0)
                self.say(comp, MAINTAINER, number, "fixed the agent; resumes the competition")
                await self.users.call(MAINTAINER, "DELETE",
                                      f"/issues/{number}/labels/reactor:paused")
                await self._resumed(comp)
                return

    async def _resumed(self, comp: str) -> None:
        """Wait until the reactor has taken the pause off every issue of ``comp``: the
        runaway's flips still queued then are forgiven, so it stays off."""
        for _ in range(240):
            issues = await self.users.call("reader", "GET", "/issues?state=all&per_page=100")
            if not any({"reactor:paused", f"comp:{comp}"} <= {label["name"] for label in
                                                               issue["labels"]}
                       for issue in issues):
                return
            await asyncio.sleep(0.25)

    async def _unauthorised(self, comp: str, number: int) -> None:
        await asyncio.sleep(UNAUTHORISED_AFTER_S)
        self.say(comp, INTRUDER, number, "marks it completed (mistake: not the stage's agent, "
                 "for R4)")
        labels = await self.users.labels(number)
        kept = [name for name in labels if not name.startswith("status:")]
        await self.users.call(INTRUDER, "PUT", f"/issues/{number}/labels",
                              {"labels": [*kept, "status:completed"]})

    # plumbing ---------------------------------------------------------------------------------

    def say(self, comp: str, who: str, number: int, text: str) -> None:
        issue = f"#{number}" if number else ""
        self._say(printable(f"{time.strftime('%H:%M:%S')}  {comp:<8} {who:<14} {issue:<4} "
                            f"{text}"))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.warning("a demo agent's request failed: %s", exc)


def _task(comp: str) -> str:
    return next(c.task for c in COMPETITIONS if c.name == comp)
