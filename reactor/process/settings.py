"""Settings, read once from the environment and a ``.env`` file into a frozen object.

The names are Probot's where Probot has one (``APP_ID``, ``PRIVATE_KEY``, ``PRIVATE_KEY_PATH``,
``WEBHOOK_SECRET``, ``WEBHOOK_PROXY_URL``, ``GITHUB_API_URL``, ``LOG_LEVEL``, ``PORT``), so a
GitHub App developer's existing ``.env`` works unchanged; ``DASHBOARD_TOKEN`` (SPEC §4) opens
the dashboard and ``/metrics`` beyond loopback; ``REDIS_SENTINELS``, ``REDIS_SENTINEL_MASTER``,
``REDIS_SENTINEL_PASSWORD`` and ``REDIS_TLS_CA_FILE`` say how to reach a replicated or managed
Redis (:mod:`reactor.store.connect` makes every client from them), ``REDIS_WAIT_REPLICAS`` how
many replicas must hold a delivery before its 202. Variables already in the environment win
over the file, as with Probot and python-dotenv's defaults.

A malformed value raises :class:`~reactor.core.errors.ConfigError` whose message is one line naming
the variable and what was expected; the command line prints it and exits non-zero. No secret
is ever part of such a message or of ``repr(settings)``: a URL's password reads ``***``
(:func:`mask_url`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from dotenv import dotenv_values

from reactor.core.errors import ConfigError

DEFAULT_API_URL = "https://api.github.com"
_HTTP = ("http", "https")
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)([^\s/?#]*)@")
_QUERY_PASSWORD = re.compile(r"(?i)([?&]pass(?:word)?=)[^&#]*")
_SENTINEL = re.compile(
    r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+))(?::(?P<port>\d{1,5}))?")
_MASTER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
MIN_DASHBOARD_TOKEN = 16
# Safety mechanisms UNSAFE_DISABLE may switch off, for bench/ and the chaos suite's negative
# control only: the per-competition lease, the fresh read before each issue's first write, the
# hand-off journal.
SAFETY_MECHANISMS = ("lease", "fresh", "journal")
LOG_LEVELS = ("trace", "debug", "info", "warn", "warning", "error", "fatal", "critical")


@dataclass(frozen=True, repr=False)
class Settings:
    """Everything the processes read from their environment; nothing else reads ``os.environ``."""

    app_id: int | None = None
    private_key: str | None = field(default=None, repr=False)
    webhook_secrets: tuple[bytes, ...] = field(default=(), repr=False)
    webhook_proxy_url: str | None = None
    github_api_url: str = DEFAULT_API_URL
    redis_url: str | None = None
    # Sentinel: the sentinels' addresses and the name of the master they watch; REDIS_URL then
    # gives the scheme, credentials and database only (see reactor/store/connect.py).
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_sentinel_master: str | None = None
    redis_sentinel_password: str | None = field(default=None, repr=False)
    redis_tls_ca_file: str | None = None  # the CA that signed a rediss:// server's certificate
    # Replicas that must have a delivery before its 202 (0: the master's word is enough).
    redis_wait_replicas: int = 0
    sentry_dsn: str | None = field(default=None, repr=False)
    # Opens the dashboard and /metrics to requests that do not come over loopback.
    dashboard_token: str | None = field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = 3000
    log_level: str = "info"
    # Content writes (issues, comments) each installation may make (GitHub: 80/min, 500/h).
    content_writes_per_minute: int = 70
    content_writes_per_hour: int = 450
    # Never in production: what bench/ and the chaos suite switch off to measure and to prove.
    unsafe_disable: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        """The dataclass's repr without the secrets, and with every URL's credentials masked."""
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        masked = {k: mask_url(v) if isinstance(v, str) else v for k, v in shown.items()}
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in masked.items())})"

    @property
    def has_app(self) -> bool:
        """True when App credentials are configured (otherwise ``reactor dev`` uses the sandbox)."""
        return self.app_id is not None and self.private_key is not None

    def require_app(self) -> tuple[int, str]:
        """The App id and private key, or a ConfigError saying which is missing."""
        if self.app_id is None:
            raise ConfigError("APP_ID is not set: give the GitHub App's numeric id")
        if self.private_key is None:
            raise ConfigError("PRIVATE_KEY or PRIVATE_KEY_PATH is not set: give the App's PEM key")
        return self.app_id, self.private_key

    def require_webhook_secrets(self) -> tuple[bytes, ...]:
        if not self.webhook_secrets:
            raise ConfigError("WEBHOOK_SECRET is not set: give the App's webhook secret")
        return self.webhook_secrets

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise ConfigError("REDIS_URL is not set: e.g. redis://127.0.0.1:6379/0")
        return self.redis_url

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env"
    ) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``) over the ``.env`` file."""
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        return cls.parse(values)

    @classmethod
    def parse(cls, values: Mapping[str, str]) -> Settings:
        """Validate raw string values; the first problem found is raised as a ConfigError."""

        def get(name: str) -> str | None:
            value = values.get(name, "").strip()
            return value or None

        sentinels = _sentinels(get("REDIS_SENTINELS"))
        master = get("REDIS_SENTINEL_MASTER")
        redis_url = _redis_url(get("REDIS_URL"), sentinels=sentinels, master=master)
        return cls(
            app_id=_app_id(get("APP_ID")),
            private_key=_private_key(get("PRIVATE_KEY"), get("PRIVATE_KEY_PATH")),
            webhook_secrets=_secrets(values.get("WEBHOOK_SECRET", "")),
            webhook_proxy_url=_url("WEBHOOK_PROXY_URL", get("WEBHOOK_PROXY_URL"), _HTTP),
            github_api_url=(
                _url("GITHUB_API_URL", get("GITHUB_API_URL"), _HTTP) or DEFAULT_API_URL
            ).rstrip("/"),
            redis_url=redis_url,
            redis_sentinels=sentinels,
            redis_sentinel_master=master,
            redis_sentinel_password=get("REDIS_SENTINEL_PASSWORD"),
            redis_tls_ca_file=_ca_file(get("REDIS_TLS_CA_FILE"), redis_url),
            redis_wait_replicas=_whole("REDIS_WAIT_REPLICAS", get("REDIS_WAIT_REPLICAS")),
            sentry_dsn=get("SENTRY_DSN"),
            dashboard_token=_dashboard_token(get("DASHBOARD_TOKEN")),
            host=get("HOST") or "127.0.0.1",
            port=_port(get("PORT")),
            log_level=_log_level(get("LOG_LEVEL")),
            content_writes_per_minute=_count("CONTENT_WRITES_PER_MINUTE",
                                             get("CONTENT_WRITES_PER_MINUTE"), 70),
            content_writes_per_hour=_count("CONTENT_WRITES_PER_HOUR",
                                           get("CONTENT_WRITES_PER_HOUR"), 450),
            unsafe_disable=_mechanisms(get("UNSAFE_DISABLE")),
        )

    def guards(self, mechanism: str) -> bool:
        """Whether the safety ``mechanism`` (one of SAFETY_MECHANISMS) is on."""
        return mechanism not in self.unsafe_disable


def _app_id(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) <= 0:
        raise ConfigError(f"APP_ID must be the App's numeric id, got {raw!r}")
    return int(raw)


def _private_key(inline: str | None, path: str | None) -> str | None:
    if inline is not None:
        source, pem = "PRIVATE_KEY", inline.replace("\\n", "\n")
    elif path is not None:
        source = "PRIVATE_KEY_PATH"
        try:
            pem = Path(path).expanduser().read_text()
        except OSError as exc:
            raise ConfigError(f"PRIVATE_KEY_PATH: cannot read {path}: {exc.strerror}") from None
    else:
        return None
    check_private_key(pem, source=source)
    return pem


def check_private_key(pem: str, *, source: str = "PRIVATE_KEY") -> None:
    """Raise ConfigError unless ``pem`` is an unencrypted PEM RSA private key."""
    if "-----BEGIN" not in pem:
        raise ConfigError(f"{source} is not a PEM key (expected '-----BEGIN RSA PRIVATE KEY-----')")
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{source} is not a readable, unencrypted PEM private key") from None
    except Exception:  # cryptography raises its own UnsupportedAlgorithm
        raise ConfigError(f"{source} uses a key type this reactor cannot read") from None
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError(f"{source} must be an RSA key (GitHub Apps sign JWTs with RS256)")


def _secrets(raw: str) -> tuple[bytes, ...]:
    return tuple(s.strip().encode() for s in raw.split(",") if s.strip())


def mask_url(text: str) -> str:
    """``text`` (a URL, or a line with URLs in it) with every URL's credentials hidden, for
    printing: ``redis://:***@host:6379/0``.

    A user name alone (``https://<token>@host``) may be the credential, so it is hidden too,
    as is a password given as a query parameter (``unix:///redis.sock?password=…``).
    """
    return _QUERY_PASSWORD.sub(r"\1***", _USERINFO.sub(_mask_userinfo, text))


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, _ = match[2].partition(":")
    return f"{match[1]}{user if colon else ''}:***@"


def _url(name: str, raw: str | None, schemes: tuple[str, ...]) -> str | None:
    if raw is None:
        return None
    try:
        parts = urlsplit(raw)
    except ValueError:  # e.g. an unclosed '[' in the host
        parts = urlsplit("")
    if parts.scheme not in schemes or not (parts.netloc or parts.scheme == "unix"):
        raise ConfigError(f"{name} must be a {'/'.join(schemes)} URL, got {mask_url(raw)!r}")
    return raw


def _redis_url(raw: str | None, *, sentinels: tuple[tuple[str, int], ...],
               master: str | None) -> str | None:
    """``REDIS_URL``; with Sentinel, where the master's scheme, credentials and database come
    from (``redis://<master>/0`` when unset)."""
    if bool(sentinels) != bool(master):
        raise ConfigError("REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together: give the "
                          "sentinels' addresses and the name of the master they watch")
    if not sentinels:
        return _url("REDIS_URL", raw, ("redis", "rediss", "unix"))
    if master is None or not _MASTER_NAME.fullmatch(master):
        raise ConfigError(f"REDIS_SENTINEL_MASTER must be a master's name as the sentinels "
                          f"know it (letters, digits, '.', '_', '-'), got {master!r}")
    url = _url("REDIS_URL", raw, ("redis", "rediss"))
    return url or f"redis://{master}/0"


def _sentinels(raw: str | None) -> tuple[tuple[str, int], ...]:
    """``REDIS_SENTINELS``: comma-separated ``host:port`` (``[v6 address]:port``; the port
    defaults to Sentinel's 26379)."""
    if raw is None:
        return ()
    found = []
    for item in (part.strip() for part in raw.split(",")):
        match = _SENTINEL.fullmatch(item)
        port = int(match["port"] or 26379) if match else 0
        if match is None or not 0 < port < 65536:
            raise ConfigError(f"REDIS_SENTINELS must be comma-separated host:port addresses, "
                              f"got {item!r}")
        found.append((match["v6"] or match["host"], port))
    return tuple(found)


def _ca_file(raw: str | None, redis_url: str | None) -> str | None:
    """``REDIS_TLS_CA_FILE``: a readable file, and only with TLS (a ``rediss://`` URL)."""
    if raw is None:
        return None
    if redis_url is None or urlsplit(redis_url).scheme != "rediss":
        raise ConfigError("REDIS_TLS_CA_FILE is set but REDIS_URL is not a rediss:// URL: "
                          "the connection would not use TLS")
    try:
        Path(raw).expanduser().read_bytes()
    except OSError as exc:
        raise ConfigError(f"REDIS_TLS_CA_FILE: cannot read {raw}: {exc.strerror}") from None
    return str(Path(raw).expanduser())


def _dashboard_token(raw: str | None) -> str | None:
    """The token, or ConfigError when it is short enough to guess or cannot travel in an
    ``Authorization`` header: it opens the dashboard and /metrics to whoever presents it."""
    if raw is None:
        return None
    if len(raw) < MIN_DASHBOARD_TOKEN or not raw.isascii() or not raw.isprintable() or " " in raw:
        raise ConfigError(
            f"DASHBOARD_TOKEN must be at least {MIN_DASHBOARD_TOKEN} printable ASCII characters "
            "without spaces (e.g. the output of `openssl rand -hex 32`)"
        )
    return raw


def _count(name: str, raw: str | None, default: int) -> int:
    """A positive whole number, or ConfigError naming the variable."""
    if raw is None:
        return default
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ConfigError(f"{name} must be a positive whole number, not {raw!r}")
    return int(raw)


def _whole(name: str, raw: str | None) -> int:
    """A whole number, 0 or more (0 when unset), or ConfigError naming the variable."""
    if raw is None:
        return 0
    if not raw.isdigit() or int(raw) > 64:
        raise ConfigError(f"{name} must be a whole number from 0 to 64, not {raw!r}")
    return int(raw)


def _mechanisms(raw: str | None) -> frozenset[str]:
    """``UNSAFE_DISABLE``: a comma-separated subset of SAFETY_MECHANISMS."""
    names = frozenset(n.strip() for n in (raw or "").split(",") if n.strip())
    unknown = sorted(names - set(SAFETY_MECHANISMS))
    if unknown:
        raise ConfigError(f"UNSAFE_DISABLE names unknown mechanisms {', '.join(unknown)}; "
                          f"it takes a comma-separated subset of {', '.join(SAFETY_MECHANISMS)}")
    return names


def _port(raw: str | None) -> int:
    if raw is None:
        return 3000
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"PORT must be a number from 1 to 65535, got {raw!r}")
    return int(raw)


def _log_level(raw: str | None) -> str:
    level = (raw or "info").lower()
    if level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {raw!r}")
    return level
