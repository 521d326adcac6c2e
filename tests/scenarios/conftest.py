"""Black-box scenarios: sandbox users play the agents, the reactor runs as real processes.

Everything here looks at the reactor from outside, as GitHub users would: issues, labels,
comments and the App's writes in the sandbox, the sandbox's request and webhook logs, and the
audit log for evidence. The only peek inside is :meth:`Scenario.idle`, which waits for the
RQ queues and the reactor's leases to empty so that an agent's next move is made after the
reactor has judged the previous one, as a real agent (which works between moves) would.

- ``stack4``: the ``stack`` of ``tests/conftest.py`` with four worker processes.
- ``scenario``: a fresh repository with the App installed and ``.github/reactor.yml``
  written by a maintainer, plus helpers to act as users and to wait for the reactor.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
import orjson
import pytest
import redis
from rq import Queue
from rq.registry import (
    DeferredJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)

from ghsandbox.config import SandboxConfig
from ghsandbox.testing import SandboxClient
from reactor.ops.demo.script import AGENTS, MAINTAINER, STAGES  # the demo's agents, the same users
from reactor.shell import repoconfig
from reactor.store import keys
from reactor.store.accept import JOB_RETRY
from tests.conftest import Stack, running_stack, webhook_headers

T = TypeVar("T")

# Plain logins (no [bot] suffix) keep the YAML unquoted; the sandbox users are these logins.
SECOND_PLANNER = "planner-helper"  # a second planner agent, for racing creations (R5)
# The team with the product's defaults for how a hand-off shows: its native "blocked by" link
# (and its comment only where GitHub refuses the link).
LINKED = f"""\
stages: [{", ".join(STAGES)}]
settle: 1s
agents:
  planner: [planner-bot, {SECOND_PLANNER}]
{chr(10).join(f"  {stage}: [{login}]" for stage, login in AGENTS.items() if stage != "planner")}
maintainers: [{MAINTAINER}]
# The scripted agents here move faster than any real one: R11's budget is tested on its own.
limits: {{moves_per_minute: 100000, issues_per_hour: 100000, comments_per_hour: 100000}}
"""
# Most scenarios read a hand-off's comment as its record (one comment, posted once, however
# workers race or die), so they switch the link off and the comment is always posted; the
# link is tested with LINKED (test_handoff.py, test_sub_issues.py and the chaos run).
CONFIG = LINKED + "chain: []\n"
SETTLE_S = 1.0
TIMEOUT_S = 20.0


# -- waiting ---------------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], T | None], *, timeout: float = TIMEOUT_S, interval: float = 0.1,
    what: str = "the condition", describe: Callable[[], object] | None = None,
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail with the last state."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            state = describe() if describe is not None else value
            raise AssertionError(f"after {timeout}s still not {what}; last state: {state!r}")
        time.sleep(interval)


def stays(predicate: Callable[[], bool], *, for_s: float = SETTLE_S + 0.5,
          what: str = "the state", describe: Callable[[], object] | None = None) -> None:
    """``predicate`` holds now and keeps holding for ``for_s`` (no late flip after settle)."""
    deadline = time.monotonic() + for_s
    while True:
        if not predicate():
            state = describe() if describe is not None else None
            raise AssertionError(f"{what} did not hold for {for_s}s; state: {state!r}")
        if time.monotonic() > deadline:
            return
        time.sleep(0.1)


# -- processes ---------------------------------------------------------------------------------


# ``request.node.rep_call`` (whether the test failed) is kept by tests/conftest.py, which
# also checks, for every test that ran workers and passed, that RQ's failed registry is empty.


@pytest.fixture
def stack4(redis_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """web + 4 RQ worker processes (their output shown when the test fails)."""
    with running_stack(redis_url, workers=4, log_dir=tmp_path) as stack:
        yield stack
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(stack.log_tails())


# -- the scenario ------------------------------------------------------------------------------


def app_jwt(config: SandboxConfig) -> str:
    now = int(time.time())
    claims = {"iat": now - 30, "exp": now + 500, "iss": str(config.app_id)}
    return jwt.encode(claims, config.private_key_pem, algorithm="RS256")


def names(issue: dict[str, Any]) -> set[str]:
    return {label["name"] for label in issue["labels"]}


@dataclass
class Scenario:
    """One repository with the App installed, its config written, acted on by users."""

    stack: Stack
    client: SandboxClient
    owner: str
    name: str
    installation_id: int
    _rq: redis.Redis = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rq = redis.Redis.from_url(self.stack.redis_url)

    @property
    def path(self) -> str:
        return f"/repos/{self.owner}/{self.name}"

    @property
    def bot(self) -> str:
        return f"{self.stack.sandbox.config.app_slug}[bot]"

    # acting as users -------------------------------------------------------------------------

    def call(self, login: str, method: str, path: str, *, expect: int | tuple[int, ...] = (
             200, 201, 204), **kwargs: Any) -> Any:
        response = self.client.as_user(login, method, self.path + path, **kwargs)
        wanted = (expect,) if isinstance(expect, int) else expect
        assert response.status_code in wanted, (login, method, path, response.status_code,
                                                response.text)
        return response.json() if response.content else None

    def write_config(self, text: str = CONFIG, *, login: str = MAINTAINER) -> None:
        url = "/contents/.github/reactor.yml"
        body: dict[str, Any] = {"message": "reactor config",
                                "content": base64.b64encode(text.encode()).decode()}
        existing = self.client.as_user(login, "GET", self.path + url)
        if existing.status_code == 200:
            body["sha"] = existing.json()["sha"]
        self.call(login, "PUT", url, json=body)
        # The push drops the cached text; a worker that read it just before keeps its own
        # copy for LOCAL_TTL_S more (README: a push is seen within a second).
        self.idle()
        time.sleep(repoconfig.LOCAL_TTL_S)

    def open_issue(self, login: str, title: str, labels: list[str], body: str = "") -> int:
        created = self.call(login, "POST", "/issues",
                            json={"title": title, "body": body, "labels": labels})
        return int(created["number"])

    def add_labels(self, login: str, number: int, *labels: str) -> None:
        self.call(login, "POST", f"/issues/{number}/labels", json={"labels": list(labels)})

    def remove_label(self, login: str, number: int, label: str) -> None:
        self.call(login, "DELETE", f"/issues/{number}/labels/{label}")

    def set_labels(self, login: str, number: int, *labels: str) -> None:
        self.call(login, "PUT", f"/issues/{number}/labels", json={"labels": list(labels)})

    # reading ---------------------------------------------------------------------------------

    def issue(self, number: int) -> dict[str, Any]:
        result: dict[str, Any] = self.call("reader", "GET", f"/issues/{number}")
        return result

    def labels(self, number: int) -> set[str]:
        return names(self.issue(number))

    def issues(self) -> list[dict[str, Any]]:
        """Every issue of the repository, open and closed, by number."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            batch = self.call("reader", "GET", "/issues",
                              params={"state": "all", "per_page": 100, "page": page})
            found += batch
            if len(batch) < 100:
                return sorted(found, key=lambda i: i["number"])
            page += 1

    def agent_issues(self, comp: str, stage: str) -> list[dict[str, Any]]:
        return [i for i in self.issues()
                if {f"agent:{stage}", f"comp:{comp}"} <= names(i)]

    def comments(self, number: int) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call(
            "reader", "GET", f"/issues/{number}/comments", params={"per_page": 100})
        return result

    def app_comments(self, number: int) -> list[str]:
        return [c["body"] for c in self.comments(number) if c["user"]["login"] == self.bot]

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.client.control("GET", f"requests?since={since}")
        return result

    def request_count(self) -> int:
        return len(self.requests())

    def app_calls(self, since: int) -> list[dict[str, Any]]:
        """The calls the App's installation made (as ``<slug>[bot]``) after the ``since``-th."""
        return [r for r in self.requests(since) if r["actor"] == self.bot]

    def state(self, number: int) -> dict[str, Any]:
        """A compact view of one issue for failure messages."""
        issue = self.issue(number)
        return {"number": number, "state": issue["state"], "reason": issue["state_reason"],
                "labels": sorted(names(issue)), "app_comments": len(self.app_comments(number))}

    # the reactor -----------------------------------------------------------------------------

    def busy(self) -> dict[str, int]:
        """Work the reactor still has: queued, taken and running jobs (the sweep's too),
        scheduled checks due soon (a settle re-read; not the far-off safety checks), held
        leases, turns queued or running, and changes pending, in flight or parked for the
        settle window."""
        queue = Queue(keys.QUEUE_EVENTS, connection=self._rq)
        sweep = Queue(keys.QUEUE_SWEEP, connection=self._rq)
        scheduled = ScheduledJobRegistry(queue=queue)  # type: ignore[no-untyped-call]
        now = int(time.time())
        soon = set(scheduled.get_jobs_to_schedule(now + int(SETTLE_S) + 2))
        # A job retried after a failure (or after its worker was killed) is due within
        # JOB_RETRY's longest interval; R8's timeout checks are not waited for.
        soon |= {job for job in scheduled.get_jobs_to_schedule(now + max(JOB_RETRY.intervals))
                 if not job.startswith("timeout-")}
        found = {
            "queued": queue.count,
            # taken by a worker that died before RQ registered the job as started; RQ's
            # maintenance hands it back after a minute (rq.intermediate_queue)
            "taken": self._rq.llen(queue.intermediate_queue_key),
            # running, or held by a dead worker until RQ's maintenance hands it back (read
            # as it stands: RQ's own count would clean the registry up from here)
            "started": self._rq.zcard(StartedJobRegistry(queue=queue).key),
            "scheduled-soon": len(soon),
            "deferred": DeferredJobRegistry(queue=queue).count,
            # the sweep (every 10 minutes, and at start): its reads are no webhook's
            "sweeping": sweep.count + self._rq.zcard(StartedJobRegistry(queue=sweep).key),
            "leases": sum(1 for _ in self._rq.scan_iter("reactor:lease:*", count=1000)),
            "turns": sum(1 for _ in self._rq.scan_iter("reactor:turn:*", count=1000)),
        }
        for kind in ("pending", "inflight"):
            found[kind] = sum(self._rq.llen(k) for k in self._rq.scan_iter(
                f"reactor:{kind}:*", count=1000) if self._rq.type(k) == b"list")
        return {k: v for k, v in found.items() if v}

    def failed_jobs(self) -> list[tuple[str, str]]:
        """(queue/job id, last lines of the traceback) of every job in RQ's failed registries."""
        return self.stack.failed_jobs()

    def idle(self, *, timeout: float = TIMEOUT_S, quiet_polls: int = 4) -> None:
        """Wait until every webhook was delivered, the reactor has no work left, and neither
        the sandbox's webhook log nor its request log moves for a few polls."""
        deadline = time.monotonic() + timeout
        last: tuple[int, int] | None = None
        quiet = 0
        while quiet < quiet_polls:
            if time.monotonic() > deadline:
                raise AssertionError(f"the reactor did not go idle in {timeout}s "
                                     f"(busy: {self.busy()})")
            for process in self.stack.processes:
                assert process.poll() is None, f"{process.args!r} exited with {process.returncode}"
            self.client.drain(timeout=timeout)
            marks = (len(self.client.webhooks()), self.request_count())
            quiet = quiet + 1 if marks == last and not self.busy() else 0
            last = marks
            time.sleep(0.05)

    def settle(self) -> None:
        """Idle, then past the settle window, then idle again (a deferred re-read ran)."""
        self.idle()
        time.sleep(SETTLE_S + 0.2)
        self.idle()

    # deliveries ------------------------------------------------------------------------------

    def jwt_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {app_jwt(self.stack.sandbox.config)}",
                "Accept": "application/vnd.github+json"}

    def deliveries(self) -> list[dict[str, Any]]:
        """The App's delivery log (newest first), every page."""
        found: list[dict[str, Any]] = []
        url: str | None = "/app/hook/deliveries?per_page=100"
        while url:
            response = self.client.http.get(url, headers=self.jwt_headers())
            assert response.status_code == 200, response.text
            found += response.json()
            url = response.links.get("next", {}).get("url")
        return found

    def delivery(self, delivery_id: int) -> dict[str, Any]:
        response = self.client.http.get(f"/app/hook/deliveries/{delivery_id}",
                                        headers=self.jwt_headers())
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def find_delivery(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first original (not redelivered) ``issues`` delivery whose payload matches."""
        for item in reversed(self.deliveries()):
            if item["event"] != "issues" or item["redelivery"]:
                continue
            detail = self.delivery(item["id"])
            if predicate(detail["request"]["payload"]):
                return detail
        raise AssertionError("no such delivery in the App's delivery log")

    def post_delivery(self, payload: dict[str, Any], *, guid: str | None = None,
                      event: str = "issues") -> httpx.Response:
        """Send a signed delivery straight to the reactor's webhook URL."""
        body = orjson.dumps(payload)
        headers = webhook_headers(body, self.stack.sandbox.config.webhook_secret, event=event,
                                  guid=guid or str(uuid.uuid4()))
        return httpx.post(self.stack.webhook_url, content=body, headers=headers, timeout=15)


def make_scenario(stack: Stack, request: pytest.FixtureRequest, *,
                  config: str | None = CONFIG) -> Iterator[Scenario]:
    """A fresh repository with ``config`` written; on failure, prints the evidence."""
    name = _repo_name(request)
    with stack.sandbox.client() as client:
        created = client.create_repo("acme", name)
        scenario = Scenario(stack, client, "acme", name, int(created["installation_id"]))
        if config is not None:
            scenario.write_config(config)
        scenario.idle()
        try:
            yield scenario
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is not None and report.failed:
                _print_evidence(scenario)
            scenario._rq.close()


def _print_evidence(s: Scenario) -> None:
    """The audit log, the App's calls and the webhooks, for the failure report."""
    print("--- audit (oldest first) ---")
    for r in s.stack.audit()[-80:]:
        print(f"{r.at} {r.delivery[:13]:13} {r.event}.{r.action} #{r.issue} {r.label!r} "
              f"@{r.actor} {r.outcome} {r.rule} {r.detail}")
    print("--- App calls ---")
    for c in s.app_calls(0)[-60:]:
        print(f"{c['at']} {c['method']} {c['path']} -> {c['status']}")
    print("--- webhooks ---")
    for w in s.client.webhooks()[-60:]:
        print(f"{w['at']} {w['guid'][:13]} {w['event']}.{w['action']} -> {w['status_code']}")
    print(f"--- reactor busy: {s.busy()} ---")
    for job_id, reason in s.failed_jobs():
        print(f"--- failed job {job_id} ---\n{reason[-1500:]}")


@pytest.fixture
def scenario(stack4: Stack, request: pytest.FixtureRequest) -> Iterator[Scenario]:
    """Every scenario runs against four worker processes racing on the same queue."""
    yield from make_scenario(stack4, request)


def _repo_name(request: pytest.FixtureRequest) -> str:
    name: str = request.node.name
    return name.removeprefix("test_")[:60].replace("[", "-").replace("]", "")


# -- playing the agents ------------------------------------------------------------------------


def title(comp: str, stage: str, task: str = "win") -> str:
    return f"[{comp}] {stage}: {task}"


def agent_labels(comp: str, stage: str, *extra: str) -> set[str]:
    return {f"agent:{stage}", f"comp:{comp}", *extra}


def move_two_requests(s: Scenario, login: str, number: int, old: str, new: str) -> None:
    """Change status the two-request way: add the new ``status:`` label, remove the old one."""
    s.add_labels(login, number, f"status:{new}")
    s.remove_label(login, number, f"status:{old}")


def move_one_request(s: Scenario, login: str, number: int, comp: str, stage: str,
                     new: str) -> None:
    """Change status in one request: PUT the issue's full label set."""
    s.set_labels(login, number, *sorted(agent_labels(comp, stage, f"status:{new}")))


def has_labels(s: Scenario, number: int, expected: set[str]) -> Callable[[], bool]:
    return lambda: s.labels(number) == expected


def run_planner(s: Scenario, comp: str, *, task: str = "win") -> int:
    """The planner agent opens its issue and drives it idle → starting → running →
    completed, waiting for the reactor after each move. Returns the planner issue."""
    login = AGENTS["planner"]
    number = s.open_issue(login, title(comp, "planner", task),
                          sorted(agent_labels(comp, "planner")))
    s.idle()
    s.add_labels(login, number, "status:starting")
    s.idle()
    move_two_requests(s, login, number, "starting", "running")
    s.idle()
    move_one_request(s, login, number, comp, "planner", "completed")
    return number


def next_issue(s: Scenario, comp: str, stage: str) -> dict[str, Any]:
    """Wait for the reactor's hand-off issue of ``stage`` (labelled starting) and return it."""
    def found() -> dict[str, Any] | None:
        issues = [i for i in s.agent_issues(comp, stage) if "status:starting" in names(i)]
        return issues[0] if issues else None

    return wait_until(found, what=f"the {stage} issue of {comp} in status:starting",
                      describe=lambda: [(i["number"], i["title"], sorted(names(i)))
                                        for i in s.issues()])


# -- many agents at once (test_concurrency.py, test_race.py) -----------------------------------


def is_handoff(body: str) -> bool:
    """An App comment of the R9 hand-off (the only kind a valid flow may show)."""
    return body.startswith("**R9 ")


def open_planners(s: Scenario, comps: list[str]) -> dict[str, int]:
    """The planner agent opens one planner issue per competition; then the reactor is idle."""
    numbers = {comp: s.open_issue(AGENTS["planner"], title(comp, "planner"),
                                  sorted(agent_labels(comp, "planner"))) for comp in comps}
    s.idle()
    return numbers


def start_planners(s: Scenario, comps: list[str]) -> dict[str, int]:
    """One planner issue per competition, each moved idle → starting and accepted."""
    numbers = open_planners(s, comps)
    for number in numbers.values():
        s.add_labels(AGENTS["planner"], number, "status:starting")
    s.idle()
    for comp, number in numbers.items():
        assert s.labels(number) == agent_labels(comp, "planner", "status:starting"), \
            s.state(number)
    return numbers


def move_fast(s: Scenario, login: str, number: int, comp: str, stage: str, *,
              gap_s: float = 0.0) -> None:
    """An agent quicker than the reactor: ``starting → running`` in one ``PUT``, then
    ``running → completed`` as add-then-remove, ``gap_s`` apart, never waiting for the reactor."""
    move_one_request(s, login, number, comp, stage, "running")
    time.sleep(gap_s)
    s.add_labels(login, number, "status:completed")
    time.sleep(gap_s)
    s.remove_label(login, number, "status:running")


def drive_to_completed(s: Scenario, number: int, comp: str, stage: str, *,
                       login: str | None = None) -> None:
    """The stage's agent drives its issue idle → starting → running → completed, waiting for
    the reactor after each move (as a real agent, which works between moves, would)."""
    who = login or AGENTS[stage]
    s.add_labels(who, number, "status:starting")
    s.idle()
    move_two_requests(s, who, number, "starting", "running")
    s.idle()
    move_one_request(s, who, number, comp, stage, "completed")


def repo_id(s: Scenario) -> int:
    """The repository's id, as the App's webhooks name it."""
    for item in s.deliveries():
        payload = s.delivery(item["id"])["request"]["payload"]
        if payload.get("repository", {}).get("full_name") == f"{s.owner}/{s.name}":
            return int(payload["repository"]["id"])
    raise AssertionError("no delivery names the repository")
