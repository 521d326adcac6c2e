"""Issue comments: list, create, get, update, delete.

https://docs.github.com/rest/issues/comments
"""

from __future__ import annotations

from ghsandbox.model import Comment, Repo
from ghsandbox.pipeline import Endpoint
from ghsandbox.protocol import Call, Reply, not_found
from ghsandbox.rest.common import by_app, issue_of, require_text
from ghsandbox.rest.limits import COMMENTS_DOCS, check_comment_body


def list_comments(call: Call) -> Reply:
    repo = call.repo()
    issue = issue_of(call, repo)
    found = [
        c
        for c in call.view.world.comments.values()
        if c.repo_id == repo.id and c.issue_number == issue.number
    ]
    since = call.query.get("since")
    if since:
        found = [c for c in found if c.updated_at >= since]
    page, link = call.page_of([call.view.comment(repo, c) for c in found])
    return Reply(body=page, headers=link)


def create(call: Call) -> Reply:
    repo = call.repo()
    issue = issue_of(call, repo)
    text = require_text(call.json_object(), "body", "IssueComment")
    check_comment_body(text, docs=COMMENTS_DOCS + "#create-an-issue-comment")
    world = call.view.world
    now = world.now()
    comment = Comment(
        world.next_id("comment"),
        repo.id,
        issue.number,
        text,
        call.actor.login,
        now,
        now,
        via_app=by_app(call),
    )
    world.comments[comment.id] = comment
    issue.comments += 1
    issue.updated_at = now
    world.touch()
    call.events.comment(repo, issue, comment, "created")
    return Reply(201, call.view.comment(repo, comment))


def _comment(call: Call, repo: Repo) -> Comment:
    comment = call.view.world.comments.get(call.int_param("comment_id"))
    if comment is None or comment.repo_id != repo.id:
        raise not_found()
    return comment


def get(call: Call) -> Reply:
    repo = call.repo()
    return Reply(body=call.view.comment(repo, _comment(call, repo)))


def update(call: Call) -> Reply:
    repo = call.repo()
    comment = _comment(call, repo)
    text = require_text(call.json_object(), "body", "IssueComment")
    check_comment_body(text, docs=COMMENTS_DOCS + "#update-an-issue-comment")
    old = comment.body
    comment.body, comment.updated_at = text, call.view.world.now()
    call.view.world.touch()
    if old != text:
        issue = repo.issues[comment.issue_number]
        call.events.comment(repo, issue, comment, "edited", changes={"body": {"from": old}})
    return Reply(body=call.view.comment(repo, comment))


def delete(call: Call) -> Reply:
    repo = call.repo()
    comment = _comment(call, repo)
    issue = repo.issues[comment.issue_number]
    del call.view.world.comments[comment.id]
    issue.comments -= 1
    call.view.world.touch()
    call.events.comment(repo, issue, comment, "deleted")
    return Reply(204)


_COMMENTS = "/repos/{owner}/{repo}/issues/comments/{comment_id}"
ENDPOINTS = [
    Endpoint("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments", list_comments),
    Endpoint("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments", create),
    Endpoint("GET", _COMMENTS, get),
    Endpoint("PATCH", _COMMENTS, update),
    Endpoint("DELETE", _COMMENTS, delete),
]
