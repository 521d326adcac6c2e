"""The API's own description: its root (``GET /``) and ``GET /meta``, served to anyone.

https://docs.github.com/rest/meta/meta — tools probe the root to check that a base URL is a
GitHub API and read its URL templates, and read ``/meta`` to tell github.com from GitHub
Enterprise Server (which adds ``installed_version``; the sandbox, like github.com, has
none). The addresses ``/meta`` lists are the loopback range the sandbox serves and sends from.
"""

from __future__ import annotations

from ghsandbox.pipeline import Auth, Endpoint
from ghsandbox.protocol import Call, Reply

SEARCH = "{&page,per_page,sort,order}"
# (key, path under the API root) of each URL template GitHub's root lists
ROOT_URLS = (
    ("current_user_url", "/user"),
    ("authorizations_url", "/authorizations"),
    ("code_search_url", "/search/code?q={query}" + SEARCH),
    ("commit_search_url", "/search/commits?q={query}" + SEARCH),
    ("emails_url", "/user/emails"),
    ("emojis_url", "/emojis"),
    ("events_url", "/events"),
    ("feeds_url", "/feeds"),
    ("followers_url", "/user/followers"),
    ("following_url", "/user/following{/target}"),
    ("gists_url", "/gists{/gist_id}"),
    ("issue_search_url", "/search/issues?q={query}" + SEARCH),
    ("issues_url", "/issues"),
    ("keys_url", "/user/keys"),
    ("label_search_url", "/search/labels?q={query}&repository_id={repository_id}{&page,per_page}"),
    ("notifications_url", "/notifications"),
    ("organization_url", "/orgs/{org}"),
    ("organization_repositories_url", "/orgs/{org}/repos{?type,page,per_page,sort}"),
    ("organization_teams_url", "/orgs/{org}/teams"),
    ("public_gists_url", "/gists/public"),
    ("rate_limit_url", "/rate_limit"),
    ("repository_url", "/repos/{owner}/{repo}"),
    ("repository_search_url", "/search/repositories?q={query}" + SEARCH),
    ("current_user_repositories_url", "/user/repos{?type,page,per_page,sort}"),
    ("starred_url", "/user/starred{/owner}{/repo}"),
    ("starred_gists_url", "/gists/starred"),
    ("topic_search_url", "/search/topics?q={query}{&page,per_page}"),
    ("user_url", "/users/{user}"),
    ("user_organizations_url", "/user/orgs"),
    ("user_repositories_url", "/users/{user}/repos{?type,page,per_page,sort}"),
    ("user_search_url", "/search/users?q={query}" + SEARCH),
)
LOOPBACK = ["127.0.0.0/8"]


def root(call: Call) -> Reply:
    base = call.view.base
    body = {key: base + path for key, path in ROOT_URLS}
    body["current_user_authorizations_html_url"] = (
        f"{base}/settings/connections/applications{{/client_id}}"
    )
    return Reply(body=body)


def meta(call: Call) -> Reply:
    return Reply(
        body={
            "verifiable_password_authentication": False,
            "hooks": LOOPBACK,
            "web": LOOPBACK,
            "api": LOOPBACK,
            "git": LOOPBACK,
        }
    )


ENDPOINTS = [
    Endpoint("GET", "/", root, Auth.OPTIONAL),
    Endpoint("GET", "/meta", meta, Auth.OPTIONAL),
]
