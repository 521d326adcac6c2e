"""Who may read the operator routes (``/``, ``/metrics``, ``/setup``), and what they send back.

SPEC §6: the routes beyond the webhook are closed unless ``DASHBOARD_TOKEN`` is presented or
the request is local. Local takes two things:

- a loopback connection that no proxy relayed: both ends of the connection are loopback
  addresses, and no ``Forwarded``, ``X-Forwarded-For`` or ``X-Real-IP`` says whom a proxy on
  this machine relays for;
- a loopback ``Host``: ``127.0.0.1``, ``localhost`` or ``[::1]``, with or without a port.
  A page elsewhere can rebind its own name to 127.0.0.1 (DNS rebinding); the browser then
  connects over loopback but still sends the page's name as ``Host``, so the name tells such
  a request from one the operator typed.

:data:`PAGE_HEADERS` are the security headers every operator page carries: nothing is
loaded from elsewhere, nothing frames it, nothing is cached, no address leaves with a link.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Scope

_FORWARDED = (b"forwarded", b"x-forwarded-for", b"x-real-ip")
# The whole Host header: a loopback name, then at most a port. Anything else (another name,
# "127.0.0.1.attacker.example", "localhost.evil", userinfo, a path) is not local.
_LOOPBACK_HOST = re.compile(rb"(?:127\.0\.0\.1|localhost|\[::1\])(?::[0-9]{1,5})?", re.IGNORECASE)

PAGE_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "referrer-policy": "no-referrer",  # a ?token= in the address must not leave with a link
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",  # frame-ancestors, for browsers that predate it
}


def page_headers(*, form_action: str = "'none'") -> dict[str, str]:
    """:data:`PAGE_HEADERS`, with the one origin a page's form may post to (the setup page
    posts the App's manifest to GitHub)."""
    policy = PAGE_HEADERS["content-security-policy"]
    return {**PAGE_HEADERS, "content-security-policy":
            policy.replace("form-action 'none'", f"form-action {form_action}")}


def _loopback(host: Any) -> bool:
    try:
        address = ipaddress.ip_address(str(host))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def loopback_peer(scope: Scope) -> bool:
    """Whether both ends of the connection are loopback addresses and no proxy relayed it.

    A web process that listens on loopback only answers nothing else; a proxy on the same
    machine says whom it relays for (``Forwarded``, ``X-Forwarded-For``, ``X-Real-IP``)."""
    server, client = scope.get("server"), scope.get("client")
    if not server or not client or not _loopback(server[0]) or not _loopback(client[0]):
        return False
    return not any(name in _FORWARDED for name, _ in scope.get("headers", ()))


def loopback_host(scope: Scope) -> bool:
    """Whether the request has exactly one ``Host`` header and it names loopback."""
    hosts = [value for name, value in scope.get("headers", ()) if name == b"host"]
    return len(hosts) == 1 and _LOOPBACK_HOST.fullmatch(hosts[0].strip()) is not None


def is_local(scope: Scope) -> bool:
    """Whether the request came from this machine to a loopback name (module docstring)."""
    return loopback_peer(scope) and loopback_host(scope)


def presented_token(request: Request) -> str | None:
    """The token the request carries: ``Authorization: Bearer <token>``, else ``?token=``."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.query_params.get("token") or None


@dataclass(frozen=True)
class Access:
    """The operator routes' door (SPEC §6): open to local requests, else only with the token."""

    token: str | None

    def refusal(self, request: Request) -> Response | None:
        """None when ``request`` may be answered; else the 401 or 403 that says why."""
        if is_local(request.scope):
            return None
        given = presented_token(request)
        if self.token is None:
            return _refuse(403, "This route answers requests over loopback only; set "
                           "DASHBOARD_TOKEN to open it to others. (Over loopback, it answers "
                           "requests addressed to 127.0.0.1, localhost or [::1].)")
        if given is None:
            return _refuse(401, "Give the DASHBOARD_TOKEN as 'Authorization: Bearer <token>' "
                           "or as ?token=<token>.")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return _refuse(403, "The token given is not the DASHBOARD_TOKEN.")
        return None


def _refuse(status: int, reason: str) -> Response:
    headers = {"cache-control": "no-store", "x-content-type-options": "nosniff"}
    if status == 401:
        headers["www-authenticate"] = 'Bearer realm="issue-safety-reactor"'
    return PlainTextResponse(reason + "\n", status_code=status, headers=headers)
