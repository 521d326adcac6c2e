"""The sandbox GitHub: a local stand-in for GitHub's REST API and webhooks (SPEC section 5).

Public face: :func:`create_app` and :class:`SandboxConfig` to serve it, :func:`main` for the
command line, and :mod:`ghsandbox.testing` to run one in a background thread.
"""

from __future__ import annotations

from ghsandbox.app import create_app
from ghsandbox.config import SandboxConfig

__all__ = ["SandboxConfig", "create_app"]
