"""The dashboard on the real stack does not stall webhook intake (issue 17, finding 3).

One tenant holds one competition of 1,000 agent issues spread over the five stages, made
through the sandbox's API by each stage's agent and judged by the reactor's workers as
GitHub's webhooks arrive. ``GET /`` then answers within the issue's bounds with a page
under 2 MB, and a signed webhook posted while the page is drawn is answered 202 in time.

The bounds are the issue's own (5 s, 2 MB, 1 s): about 8, 15 and 13 times what
``python -m bench.dashboard`` measures on a quiet machine, whose figures are the precise
ones (bench/README.md); a machine busy with other tests must not fail this one.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest
import redis

from reactor.ops.demo.script import AGENTS, STAGES
from reactor.store import keys
from tests.conftest import Stack, webhook_headers
from tests.scenarios.conftest import CONFIG, Scenario, wait_until

ISSUES = 1000
GET_S = 5.0  # the issue's bound on GET /
WEBHOOK_S = 1.0  # the issue's bound on a webhook answered while the page is drawn
PAGE_BYTES = 2_000_000
CREATORS = 8  # issues made at once through the sandbox's API
JUDGED_S = 240.0  # how long the workers may take to judge 1,000 new issues on a busy machine


def remembered(client: redis.Redis, repo_id: int) -> int:
    """How many issues of the repository the reactor remembers."""
    match = keys.ISSUE.format(repo_id=repo_id, issue="*")
    return sum(1 for _ in client.scan_iter(match=match, count=1000))


def thousand_issues(s: Scenario) -> None:
    """1,000 agent issues of one competition, 200 per stage, each opened by its stage's
    agent with a title of its own (R5 sees no duplicate)."""
    per_stage = ISSUES // len(STAGES)

    def open_one(i: int) -> int:
        stage = STAGES[i // per_stage]
        return s.open_issue(AGENTS[stage], f"[big] {stage}: part {i}",
                            [f"agent:{stage}", "comp:big", "status:idle"])

    with ThreadPoolExecutor(CREATORS) as pool:
        numbers = list(pool.map(open_one, range(ISSUES)))
    assert len(set(numbers)) == ISSUES


def signed(stack: Stack, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """``payload`` as an ``issues`` delivery GitHub signed, with a GUID of its own."""
    body = orjson.dumps(payload)
    secret = stack.sandbox.config.webhook_secret
    return body, webhook_headers(body, secret, event="issues", guid=str(uuid.uuid4()))


def tenant_with_a_thousand_issues(stack: Stack) -> dict[str, Any]:
    """The tenant's repository once the reactor remembers its 1,000 issues; the payload of
    one of GitHub's ``issues.opened`` deliveries to it."""
    with stack.sandbox.client(timeout=60) as client:
        created = client.create_repo("acme", "big")
        s = Scenario(stack, client, "acme", "big", int(created["installation_id"]))
        s.write_config(CONFIG)
        thousand_issues(s)
        repo_id = int(created["repository"]["id"])
        rq = redis.Redis.from_url(stack.redis_url)
        try:
            wait_until(lambda: remembered(rq, repo_id) >= ISSUES, timeout=JUDGED_S,
                       interval=1.0, what="1,000 issues remembered",
                       describe=lambda: remembered(rq, repo_id))
        finally:
            rq.close()
        opened = s.find_delivery(lambda payload: payload.get("action") == "opened")
    payload: dict[str, Any] = opened["request"]["payload"]
    return payload


def page_while_posting(stack: Stack, payload: dict[str, Any]
                       ) -> tuple[dict[str, float], list[tuple[int, float]]]:
    """``GET /`` (its time, status and size) and, while it is unanswered, ``payload``
    posted as a new delivery every 50 ms (each answer's status and time)."""
    page: dict[str, float] = {}

    def draw() -> None:
        start = time.perf_counter()
        answer = httpx.get(f"{stack.web_url}/", timeout=60)
        page.update(seconds=time.perf_counter() - start, status=answer.status_code,
                    size=len(answer.content))

    reader = threading.Thread(target=draw)
    reader.start()
    time.sleep(0.01)
    answers = []
    while reader.is_alive() or not answers:
        body, headers = signed(stack, payload)
        start = time.perf_counter()
        status = httpx.post(stack.webhook_url, content=body, headers=headers,
                            timeout=30).status_code
        answers.append((status, time.perf_counter() - start))
        time.sleep(0.05)
    reader.join()
    return page, answers


@pytest.mark.timeout(600)
def test_a_thousand_issue_competition_draws_a_bounded_page_while_webhooks_are_answered(
    stack: Stack,
) -> None:
    page, answers = page_while_posting(stack, tenant_with_a_thousand_issues(stack))
    slowest = max(seconds for _, seconds in answers)
    assert page["status"] == 200 and {status for status, _ in answers} == {202}, (page, answers)
    assert page["seconds"] < GET_S and page["size"] < PAGE_BYTES and slowest < WEBHOOK_S, (
        f"GET / took {page['seconds']:.2f} s for {page['size']:,.0f} bytes; the slowest of "
        f"{len(answers)} webhooks meanwhile took {slowest:.2f} s")
