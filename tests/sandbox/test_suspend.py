"""``POST /_sandbox/suspend``: an installation suspended as its owner would on GitHub."""

from __future__ import annotations

from ghsandbox.testing import RunningSandbox, SandboxClient
from tests.sandbox.conftest import Repo, app_jwt, bearer


def test_a_suspended_installation_shows_it_and_its_tokens_are_refused_until_lifted(
    sandbox: RunningSandbox, client: SandboxClient, repo: Repo
) -> None:
    app = bearer(app_jwt(sandbox.config))
    answer = client.control("POST", "suspend", {"installation_id": repo.installation_id})
    assert answer["suspended_at"].endswith("Z")
    shown = client.http.get(f"/app/installations/{repo.installation_id}", headers=app).json()
    assert shown["suspended_at"] == answer["suspended_at"]
    assert shown["suspended_by"]["login"] == "acme"
    listed = client.as_token(repo.token, "GET", "/installation/repositories")
    assert listed.status_code == 403
    assert listed.json()["message"] == "This installation has been suspended"
    minted = client.http.post(f"/app/installations/{repo.installation_id}/access_tokens",
                              headers=app)
    assert minted.status_code == 403

    client.control("POST", "suspend", {"installation_id": repo.installation_id,
                                       "suspended": False})
    shown = client.http.get(f"/app/installations/{repo.installation_id}", headers=app).json()
    assert shown["suspended_at"] is None and shown["suspended_by"] is None
    assert client.as_token(repo.token, "GET", "/installation/repositories").status_code == 200


def test_suspending_an_unknown_installation_is_a_404(client: SandboxClient) -> None:
    response = client.http.post("/_sandbox/suspend", json={"installation_id": 999})
    assert response.status_code == 404
    bad = client.http.post("/_sandbox/suspend", json={"installation_id": 999,
                                                      "suspended": "yes"})
    assert bad.status_code in (400, 404)
