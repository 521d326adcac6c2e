"""The sandbox GitHub: a local stand-in for GitHub's REST API and webhooks (SPEC section 5).

Public face: :func:`create_app` and :class:`SandboxConfig` to serve it, :func:`main` for the
command line, and :mod:`reactor.sandbox.testing` to run one in a background thread.
"""

from __future__ import annotations

from reactor.sandbox.app import create_app
from reactor.sandbox.config import SandboxConfig

__all__ = ["SandboxConfig", "create_app"]
