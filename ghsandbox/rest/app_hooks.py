"""The App's webhook: its configuration and its delivery log.

https://docs.github.com/rest/apps/webhooks — ``GET /app/hook/config`` shows where the App's
webhook goes: the sandbox's first hook receiver (``--webhook-url``, or the first added), its
secret masked as GitHub masks it. ``PATCH`` changes ``insecure_ssl`` and the URL: the
receiver that was first is replaced by the new one, as GitHub moves the App's one webhook (a
``--webhook-url`` given at start is a receiver again after ``POST /_sandbox/reset`` or a
restart). The sandbox sends JSON only and signs with the secret it was started with, so it
refuses ``content_type: form`` and a different ``secret`` with a 422 that says so, rather
than accept a change it would not make. The delivery log lists, shows and redelivers what
the hub sent (:mod:`ghsandbox.deliveries`).
"""

from __future__ import annotations

from typing import Any

from ghsandbox.pipeline import Auth, Endpoint
from ghsandbox.protocol import ApiError, Call, Reply, not_found, validation_failed
from ghsandbox.runtime import Sandbox

DELIVERY_CURSOR = "v1_"
CONFIG_DOCS = "https://docs.github.com/rest/apps/webhooks#update-a-webhook-configuration-for-an-app"
MASKED_SECRET = "********"  # noqa: S105 - how GitHub shows a set secret


def get_config(call: Call) -> Reply:
    return Reply(body=_config(call.sandbox))


def update_config(call: Call) -> Reply:
    """``PATCH /app/hook/config``: every field is checked before anything changes."""
    body = call.json_object()
    url, insecure_ssl = body.get("url"), body.get("insecure_ssl")
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise validation_failed("Hook", "url", "invalid", docs=CONFIG_DOCS)
    if body.get("content_type", "json") != "json":
        raise _refused("content_type", "the sandbox sends JSON payloads only")
    if body.get("secret", MASKED_SECRET) not in (MASKED_SECRET, call.sandbox.hub.secret):
        raise _refused("secret", "the sandbox signs with the secret it was started with "
                       "(--webhook-secret); restart it to change the secret")
    if insecure_ssl is not None and str(insecure_ssl) not in ("0", "1"):
        raise validation_failed("Hook", "insecure_ssl", "invalid", docs=CONFIG_DOCS)
    if insecure_ssl is not None:
        call.sandbox.hook_insecure_ssl = str(insecure_ssl)
    if url is not None:
        _point_app_hook(call.sandbox, url)
    return Reply(body=_config(call.sandbox))


def _config(sandbox: Sandbox) -> dict[str, Any]:
    out: dict[str, Any] = {
        "content_type": "json",
        "insecure_ssl": sandbox.hook_insecure_ssl,
        "secret": MASKED_SECRET,
    }
    if sandbox.world.hook_urls:
        out["url"] = sandbox.world.hook_urls[0]
    return out


def _refused(field_name: str, why: str) -> ApiError:
    return validation_failed("Hook", field_name, "custom", docs=CONFIG_DOCS, message=why)


def _point_app_hook(sandbox: Sandbox, url: str) -> None:
    """Make ``url`` the App's webhook: it replaces the first receiver (kept if it is ``url``)."""
    urls = sandbox.world.hook_urls
    if urls and urls[0] == url:
        return
    if urls:
        urls.pop(0)
    if url in urls:
        urls.remove(url)
    urls.insert(0, url)
    sandbox.hub.keep_only(list(urls))
    sandbox.hub.add_hook(url)
    sandbox.world.touch()


def list_deliveries(call: Call) -> Reply:
    """Newest first, ``per_page`` at a time, with a ``cursor`` for the next page as on GitHub."""
    per_page = min(100, max(1, int(call.query.get("per_page", "30") or 30)))
    cursor = call.query.get("cursor")
    before = None
    if cursor:
        if not cursor.startswith(DELIVERY_CURSOR) or not cursor[3:].isdigit():
            raise ApiError(400, "Invalid cursor")
        before = int(cursor[3:])
    status = call.query.get("status")
    found = call.sandbox.hub.log.newest_first(before=before, status=status)
    page = found[:per_page]
    headers = {}
    if len(found) > per_page:
        headers["link"] = (
            f'<{call.url}?per_page={per_page}&cursor={DELIVERY_CURSOR}{page[-1].id}>; rel="next"'
        )
    return Reply(body=[d.item() for d in page], headers=headers)


def get_delivery(call: Call) -> Reply:
    delivery = call.sandbox.hub.log.listed(call.int_param("delivery_id"))
    if delivery is None:
        raise not_found()
    return Reply(body=delivery.detail())


def redeliver(call: Call) -> Reply:
    if call.sandbox.hub.redeliver(call.int_param("delivery_id")) is None:
        raise not_found()
    return Reply(202, {})


ENDPOINTS = [
    Endpoint("GET", "/app/hook/config", get_config, Auth.APP),
    Endpoint("PATCH", "/app/hook/config", update_config, Auth.APP),
    Endpoint("GET", "/app/hook/deliveries", list_deliveries, Auth.APP),
    Endpoint("GET", "/app/hook/deliveries/{delivery_id}", get_delivery, Auth.APP),
    Endpoint("POST", "/app/hook/deliveries/{delivery_id}/attempts", redeliver, Auth.APP),
]
