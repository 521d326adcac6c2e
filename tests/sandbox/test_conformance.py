"""Every REST route's answers and every webhook payload match GitHub's own descriptions.

A scenario drives each sandbox route (successes and the documented errors) as the App, as
an installation and as users, recording every exchange and every webhook; the tests then
validate statuses, headers and bodies against ``@octokit/openapi`` and payloads against
``@octokit/openapi-webhooks`` (see :mod:`tests.sandbox.openapi`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from ghsandbox.config import SandboxConfig
from ghsandbox.rest import ENDPOINTS
from ghsandbox.testing import ReceivedWebhook, run_receiver, run_sandbox
from tests.prerequisites import missing
from tests.sandbox import openapi
from tests.sandbox.scenario import Driver, Exchange, Recording, run_scenario

JSON_POINTER_BODY = "/content/application~1json/schema"
NOT_IN_GITHUB = {("GET", "/repos/{owner}/{repo}/contents")}  # the root listing, a sandbox extra
# Where the description itself cannot be met by any answer (so GitHub's own answers fail it
# too), the body is checked against the component schema the operation means instead:
DESCRIPTION_DEFECTS: dict[tuple[str, str, int], dict[str, Any]] = {
    # inlined items render ``account: anyOf[simple-user, enterprise]`` as ``allOf``
    ("GET", "/app/installations", 200): {
        "type": "array",
        "items": {"$ref": "urn:github:rest#/components/schemas/installation"},
    },
    # ``oneOf[basic-error, repository-rule-violation-error]``: every basic error matches both
    ("PUT", "/repos/{owner}/{repo}/contents/{path}", 409): {
        "$ref": "urn:github:rest#/components/schemas/basic-error"
    },
}


@pytest.fixture(scope="module")
def recording() -> Iterator[Recording]:
    try:
        openapi.rest()
        openapi.webhooks()
    except openapi.Unavailable as exc:
        missing(str(exc))
    config = SandboxConfig.generate(app_id=7, app_slug="conformance")
    with (
        run_receiver() as receiver,
        run_sandbox(replace(config, webhook_urls=(receiver.url,))) as sandbox,
    ):
        recorded = Recording()
        with sandbox.client() as client:
            run_scenario(Driver(client, recorded), client, config)
        recorded.webhooks = list(receiver.received)
        yield recorded


def test_the_scenario_exercises_every_rest_route(recording: Recording) -> None:
    routes = {(e.method, e.path.replace(":path}", "}")) for e in ENDPOINTS} - NOT_IN_GITHUB
    covered = {(x.method, x.template) for x in recording.exchanges}
    assert routes - covered == set()


def _response_schema(method: str, template: str, status: int) -> tuple[str, bool] | None:
    """(JSON pointer of the body schema, whether the status is documented) or None for no body."""
    description = openapi.rest()
    operation = description.document["paths"][template][method.lower()]
    documented = operation["responses"].get(str(status))
    if documented is None:
        return "/components/schemas/basic-error", False
    node, pointer = description.resolve(documented)
    if "content" not in node:
        return None
    if not pointer:
        pointer = f"/paths/{openapi.escape(template)}/{method.lower()}/responses/{status}"
    return pointer + JSON_POINTER_BODY, True


def test_every_answer_matches_the_openapi_description(recording: Recording) -> None:
    problems = []
    for x in recording.exchanges:
        where = f"{x.method} {x.template} -> {x.status}"
        override = DESCRIPTION_DEFECTS.get((x.method, x.template, x.status))
        if override is not None:
            problems += [
                f"{where}: {e.json_path}: {e.message[:200]}"
                for e in openapi.rest().validator_for(override).iter_errors(x.body)
            ]
            continue
        found = _response_schema(x.method, x.template, x.status)
        if found is not None and not found[1] and x.status < 400:
            problems.append(f"{where}: status not documented")
        if found is None:
            if x.body is not None:
                problems.append(f"{where}: body where none is documented")
            continue
        for error in openapi.rest().validator(found[0]).iter_errors(x.body):
            problems.append(f"{where}: {error.json_path}: {error.message[:200]}")
        problems += [f"{where}: {p}" for p in _header_problems(x)]
    assert not problems, "\n".join(problems)


def _header_problems(x: Exchange) -> list[str]:
    problems = []
    if x.headers.get("content-type") != "application/json; charset=utf-8":
        problems.append(f"content-type {x.headers.get('content-type')!r}")
    needed = [
        "x-github-request-id",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-used",
        "x-ratelimit-resource",
    ]
    if x.method == "GET" and x.status == 200:
        needed.append("etag")
    problems += [f"missing header {name}" for name in needed if name not in x.headers]
    return problems


def _webhook_key(hook: ReceivedWebhook) -> str:
    if hook.event == "repository_dispatch":
        return "repository-dispatch-sample.collected"
    action = hook.payload.get("action")
    return f"{hook.event}-{action}".replace("_", "-") if action else hook.event


def test_every_webhook_matches_its_schema(recording: Recording) -> None:
    description = openapi.webhooks()
    problems, seen = [], set()
    for hook in recording.webhooks:
        key = _webhook_key(hook)
        seen.add(key)
        post = description.document["webhooks"].get(key, {}).get("post")
        if post is None:
            problems.append(f"{key}: no such webhook in the description")
            continue
        for header in (p["name"] for p in post.get("parameters", []) if p.get("required")):
            if header.lower() not in hook.headers:
                problems.append(f"{key}: missing header {header}")
        schema = post["requestBody"]["content"]["application/json"]["schema"]["$ref"].removeprefix(
            "#"
        )
        for error in description.validator(schema).iter_errors(hook.payload):
            problems.append(f"{key}: {error.json_path}: {error.message[:200]}")
    assert not problems, "\n".join(problems)
    assert {
        "issues-opened",
        "issues-labeled",
        "issues-unlabeled",
        "issues-edited",
        "issues-closed",
        "issues-reopened",
        "issue-comment-created",
        "issue-comment-edited",
        "issue-comment-deleted",
        "label-created",
        "label-edited",
        "label-deleted",
        "issue-dependencies-blocked-by-added",
        "issue-dependencies-blocking-removed",
        "sub-issues-sub-issue-added",
        "sub-issues-parent-issue-added",
        "sub-issues-sub-issue-removed",
        "sub-issues-parent-issue-removed",
        "installation-created",
        "installation-repositories-added",
        "push",
        "repository-dispatch-sample.collected",
    } <= seen
