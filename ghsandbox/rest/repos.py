"""A repository itself: ``GET /repos/{owner}/{repo}``.

https://docs.github.com/rest/repos/repos#get-a-repository — the ``full-repository`` object:
the ``repository`` of webhook payloads plus the counts only this route gives. An installation
token reads only its installation's repositories (403 otherwise, like every repository route
here; GitHub answers 404 for a private repository it cannot see).
"""

from __future__ import annotations

from ghsandbox.pipeline import Endpoint
from ghsandbox.protocol import Call, Reply


def get_repo(call: Call) -> Reply:
    repo = call.repo()
    return Reply(body={**call.view.repository(repo), "network_count": 0, "subscribers_count": 0})


ENDPOINTS = [Endpoint("GET", "/repos/{owner}/{repo}", get_repo)]
