"""``reactor doctor [--manifest FILE]``: check the deployment and say in plain words what is
wrong and how to fix it.

One line per check, printed as it completes — ``ok <what>: <found>``, ``problem <what>: <what
is wrong>: <what to do>``, or ``skip <what>: <why>`` when an earlier problem (or the host)
leaves nothing to check — then a summary. The exit status is 0 when nothing is a problem, 1
otherwise. In order:

- Redis: reachable; its append-only file on with ``appendfsync`` ``everysec`` or ``always``
  (SPEC §6: an accepted delivery is durably stored); the events queue's depth and the workers
  listening to it; RQ's failed registry;
- the webhook secret is set; the private key parses;
- a JWT round trip (``GET /app``): the App id and the key belong together;
- the App's permissions and events (``GET /app``), and each installation's
  (``GET /app/installations``), against ``default_permissions`` and ``default_events`` of
  ``app-manifest.yml`` (https://docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reactor.core.errors import ConfigError
from reactor.core.terminal import printable
from reactor.process.settings import Settings, mask_url

if TYPE_CHECKING:  # clients are imported when the command runs, not with `reactor --help`
    import redis

    from reactor.core.errors import GitHubError
    from reactor.github import AppInfo, GitHubClient, Installation

MANIFEST = "app-manifest.yml"
LEVELS = {"read": 1, "write": 2, "admin": 3}
DURABLE_FSYNC = ("everysec", "always")
SHOWN_ACCOUNTS = 5
APP_SETTINGS = ("the App's settings on GitHub (Developer settings → GitHub Apps → "
                "Permissions & events)")


class Verdict(StrEnum):
    OK = "ok"
    PROBLEM = "problem"
    SKIP = "skip"


@dataclass(frozen=True)
class Finding:
    """The outcome of one check, as one line for a person."""

    verdict: Verdict
    subject: str
    text: str

    def line(self) -> str:
        return printable(f"{self.verdict} {self.subject}: {self.text}")


def ok(subject: str, found: str) -> Finding:
    return Finding(Verdict.OK, subject, found)


def problem(subject: str, wrong: str, fix: str) -> Finding:
    return Finding(Verdict.PROBLEM, subject, f"{wrong}: {fix}")


def skip(subject: str, why: str) -> Finding:
    return Finding(Verdict.SKIP, subject, why)


@dataclass(frozen=True)
class Manifest:
    """What ``app-manifest.yml`` asks GitHub for."""

    path: Path
    permissions: Mapping[str, str]
    events: tuple[str, ...]


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``doctor`` to ``reactor``'s subcommands."""
    about = ("check Redis, the App's key and JWT, its installations, permissions and events, "
             "the webhook secret and the queue; say what is wrong and how to fix it")
    parser = subparsers.add_parser("doctor", help=about, description=about)
    parser.add_argument("--manifest", type=Path, metavar="FILE",
                        help=f"the App manifest to compare with (default: ./{MANIFEST}, else "
                             "the one beside the reactor's source)")
    parser.set_defaults(run=doctor)
    return parser


def doctor(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``reactor doctor`` (the parser's ``run``): 0 when all is well, 1 otherwise."""
    if args.manifest is not None and not args.manifest.is_file():
        raise ConfigError(f"--manifest {args.manifest}: no such file")
    findings: list[Finding] = []

    def report(finding: Finding) -> None:
        findings.append(finding)
        print(finding.line(), flush=True)

    asyncio.run(examine(settings, manifest_at=args.manifest, report=report))
    problems = sum(f.verdict is Verdict.PROBLEM for f in findings)
    print("all good" if not problems else
          f"{problems} problem{'s' if problems > 1 else ''} to fix")
    return 1 if problems else 0


async def examine(settings: Settings, *, manifest_at: Path | None,
                  report: Callable[[Finding], None]) -> None:
    """Run every check, reporting each finding as soon as it is known."""
    client = _check_redis(settings, report)
    if client is not None:
        client.close()
    report(check_secret(settings))
    report(check_key(settings))
    if settings.unsafe_disable:
        report(check_safety(settings))
    manifest = read_manifest(manifest_at, report)
    if not settings.has_app or client is None:
        # The GitHub client keeps tokens, answers and rate limits in Redis.
        why = "no App is configured" if not settings.has_app else "Redis is not usable"
        for subject in ("App", "installations"):
            report(skip(subject, f"{why} (see above)"))
        return
    await _check_github(settings, manifest, report)


def _check_redis(settings: Settings, report: Callable[[Finding], None]) -> redis.Redis | None:
    """Redis's checks; the client when Redis answered."""
    from reactor.store import connect

    if not settings.redis_url:
        report(problem("Redis", "REDIS_URL is not set",
                       "set it to the Redis the web process and the workers share, e.g. "
                       "redis://127.0.0.1:6379/0"))
        return None
    client = connect.sync_client(settings, socket_connect_timeout=2, socket_timeout=10)
    reached = check_reachable(client, connect.describe(settings))
    report(reached)
    if reached.verdict is not Verdict.OK:
        return None
    for check in (check_persistence, check_queue, check_failed):
        report(check(client))
    return client


def check_reachable(client: redis.Redis, url: str) -> Finding:
    import redis

    where = mask_url(url)
    try:
        version = client.info("server").get("redis_version", "?")
    except redis.AuthenticationError:
        return problem("Redis", f"{where} refused the credentials",
                       "put the right user and password in REDIS_URL")
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        return problem("Redis", f"cannot reach {where} ({exc})",
                       "start Redis, or point REDIS_URL at the one that runs")
    except redis.ResponseError as exc:
        return problem("Redis", f"{where} refused a plain INFO ({exc})",
                       "give REDIS_URL a user allowed INFO, CONFIG GET and the reactor's keys")
    return ok("Redis", f"reachable at {where} (Redis {version})")


def check_persistence(client: redis.Redis) -> Finding:
    """SPEC §6: accepted deliveries survive a crash only with the append-only file on."""
    import redis

    subject = "Redis persistence"
    try:
        config = {**client.config_get("appendonly"), **client.config_get("appendfsync")}
    except redis.ResponseError:
        return skip(subject, "CONFIG GET is not allowed here (a managed Redis?): make sure in "
                             "its settings that append-only persistence is on, with fsync "
                             "every second")
    if config.get("appendonly") != "yes":
        return problem(subject, "the append-only file is off, so a crash or restart loses "
                                "accepted deliveries and the reactor's memory",
                       "run CONFIG SET appendonly yes now, and set appendonly yes in "
                       "redis.conf (or start redis-server with --appendonly yes)")
    fsync = config.get("appendfsync", "?")
    if fsync not in DURABLE_FSYNC:
        return problem(subject, f"appendfsync is {fsync}: a crash can lose the last "
                                "seconds of accepted deliveries",
                       "set appendfsync everysec (CONFIG SET and redis.conf)")
    return ok(subject, f"append-only file on, fsync {fsync}")


def check_queue(client: redis.Redis) -> Finding:
    from rq import Queue, Worker

    from reactor.store.keys import QUEUE_EVENTS

    queue = Queue(QUEUE_EVENTS, connection=client)
    waiting, workers = queue.count, Worker.count(queue=queue)
    if workers == 0:
        return problem("queue", f"no worker listens to {QUEUE_EVENTS} ({waiting} jobs wait)",
                       "start `reactor worker` (the Procfile's worker process) on this Redis")
    return ok("queue", f"{waiting} jobs wait in {QUEUE_EVENTS}; {workers} workers listen")


def check_failed(client: redis.Redis) -> Finding:
    from rq import Queue
    from rq.registry import FailedJobRegistry

    from reactor.store.keys import QUEUE_EVENTS

    registry = FailedJobRegistry(queue=Queue(QUEUE_EVENTS, connection=client))
    failed = registry.count
    if not failed:
        return ok("failed jobs", "RQ's failed registry is empty")
    return problem("failed jobs", f"RQ's failed registry holds {failed} jobs",
                   "find why in the workers' log (`rq info` lists them); once fixed, "
                   f"`rq requeue --all --queue {QUEUE_EVENTS} -u \"$REDIS_URL\"` runs them "
                   "again")


def check_safety(settings: Settings) -> Finding:
    """``UNSAFE_DISABLE`` is for bench/ and the chaos suite, never for a real installation."""
    off = ", ".join(sorted(settings.unsafe_disable))
    return problem("safety", f"UNSAFE_DISABLE switches off {off}: racing workers can undo "
                             "valid moves", "unset UNSAFE_DISABLE (a benchmark switch)")


def check_secret(settings: Settings) -> Finding:
    count = len(settings.webhook_secrets)
    if not count:
        return problem("webhook secret", "WEBHOOK_SECRET is not set, so no delivery can be "
                                         "verified", "copy the App's webhook secret (App "
                                         "settings → Webhook secret) into WEBHOOK_SECRET")
    return ok("webhook secret", "set" if count == 1 else f"{count} set (rotation)")


def check_key(settings: Settings) -> Finding:
    """Which key is in use. One that does not parse stops every command, this one included,
    with one line naming the variable (:mod:`reactor.process.settings`), before any check runs."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    if settings.app_id is None or settings.private_key is None:
        missing = "APP_ID" if settings.app_id is None else "PRIVATE_KEY (or PRIVATE_KEY_PATH)"
        return problem("private key", f"no App is configured: {missing} is not set",
                       "copy the App's id and a private key from its settings page into "
                       "APP_ID and PRIVATE_KEY, or create an App from app-manifest.yml")
    key: Any = load_pem_private_key(settings.private_key.encode(), password=None)
    return ok("private key", f"an RSA key of {key.key_size} bits for App {settings.app_id}")


def read_manifest(given: Path | None, report: Callable[[Finding], None]) -> Manifest | None:
    """The manifest to compare with, reported; None when there is none or it is malformed."""
    from reactor.ops.setup import manifest_path

    path = manifest_path(given)
    if path is None:
        report(skip("manifest", f"no {MANIFEST} here or beside the reactor's source: "
                                "permissions and events are not compared (--manifest FILE)"))
        return None
    try:
        manifest = parse_manifest(path)
    except ConfigError as exc:
        report(problem("manifest", str(exc), f"fix {path} or give another with --manifest"))
        return None
    report(ok("manifest", f"{path}: {_levels(manifest.permissions)}; "
                          f"events {', '.join(manifest.events)}"))
    return manifest


def parse_manifest(path: Path) -> Manifest:
    """``default_permissions`` and ``default_events`` of a manifest (ConfigError if malformed)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path} does not read as YAML ({type(exc).__name__})") from None
    data = data if isinstance(data, dict) else {}
    permissions, events = data.get("default_permissions"), data.get("default_events")
    if not isinstance(permissions, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v in LEVELS
            for k, v in permissions.items()):
        raise ConfigError(f"{path}: default_permissions must map permissions to read or write")
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise ConfigError(f"{path}: default_events must be a list of event names")
    return Manifest(path, dict(permissions), tuple(events))


def lacking(granted: Mapping[str, str], wanted: Mapping[str, str]) -> dict[str, str]:
    """The permissions of ``wanted`` that ``granted`` lacks or grants at a lower level."""
    return {name: level for name, level in wanted.items()
            if LEVELS.get(granted.get(name, ""), 0) < LEVELS[level]}


def unsubscribed(subscribed: Iterable[str], wanted: Iterable[str]) -> list[str]:
    """The events of ``wanted`` missing from ``subscribed``, in the manifest's order."""
    have = set(subscribed)
    return [event for event in wanted if event not in have]


async def _check_github(settings: Settings, manifest: Manifest | None,
                        report: Callable[[Finding], None]) -> None:
    """The JWT round trip, then what GitHub says of the App and its installations."""
    from reactor.github import GitHubClient, RetryPolicy
    from reactor.store import connect

    client = connect.async_client(settings, socket_connect_timeout=2, socket_timeout=10)
    try:
        async with GitHubClient.from_settings(settings, redis=client,
                                              retry=RetryPolicy(attempts=2)) as github:
            app = await _check_app(github, settings, report)
            if app is None:
                report(skip("installations", "the App's JWT does not work (see above)"))
                return
            if manifest is not None:
                report(check_app_grants(app, manifest))
            for finding in await check_installations(github, app, manifest, settings):
                report(finding)
    finally:
        await client.aclose()


async def _check_app(github: GitHubClient, settings: Settings,
                     report: Callable[[Finding], None]) -> AppInfo | None:
    from reactor.core.errors import GitHubError
    from reactor.github import get_app

    try:
        app = await get_app(github.app)
    except GitHubError as exc:
        report(_jwt_problem(exc, settings))
        return None
    report(ok("App", f"GET /app with the App's JWT answers {app.name} ({app.slug}, "
                     f"id {app.id})"))
    return app


def _jwt_problem(exc: GitHubError, settings: Settings) -> Finding:
    if exc.status == 401:
        return problem("App", f"GitHub refused the App's JWT ({exc})",
                       f"check that APP_ID ({settings.app_id}) is the App's id and PRIVATE_KEY "
                       "one of its keys (App settings → Private keys → Generate), and that "
                       "this machine's clock is right")
    if exc.status == 0:
        return problem("App", f"cannot reach GitHub at {settings.github_api_url} ({exc})",
                       "check the network and GITHUB_API_URL")
    return problem("App", str(exc), "check APP_ID, PRIVATE_KEY and GITHUB_API_URL")


def check_app_grants(app: AppInfo, manifest: Manifest) -> Finding:
    """The App's own permissions and events against the manifest's."""
    short = lacking(app.permissions, manifest.permissions)
    missing = unsubscribed(app.events, manifest.events)
    if short or missing:
        return problem("App permissions and events", _shortfall(short, missing),
                       f"change them in {APP_SETTINGS}; installations follow, their owners "
                       "asked to accept any new permission")
    return ok("App permissions and events", f"{_levels(app.permissions)}; "
                                            f"{len(app.events)} events, the manifest's included")


async def check_installations(github: GitHubClient, app: AppInfo, manifest: Manifest | None,
                              settings: Settings) -> list[Finding]:
    """One problem per installation that is suspended or lags behind the App, or one ``ok``
    for all of them."""
    from reactor.core.errors import GitHubError
    from reactor.github import list_installations

    try:
        installations = [i async for i in list_installations(github.app)]
    except GitHubError as exc:
        return [problem("installations", f"GET /app/installations failed ({exc})",
                        "run doctor again; if it persists, check the App's settings")]
    if not installations:
        return [problem("installations", "the App is installed nowhere",
                        f"install it from {_web_url(settings)}/apps/{app.slug}/installations/new")]
    found = [f for i in installations if (f := check_installation(i, app, manifest))]
    return found or [ok("installations", _accounts(installations))]


def check_installation(installation: Installation, app: AppInfo,
                       manifest: Manifest | None) -> Finding | None:
    """A problem with one installation, or None."""
    subject = f"installation {installation.id} ({installation.account})"
    where = "in the account's settings (GitHub Apps → Configure)"
    if installation.suspended:
        return problem(subject, "suspended: GitHub sends it no webhooks", f"unsuspend it {where}")
    short, missing = installation_shortfall(installation, app, manifest)
    if not short and not missing:
        return None
    return problem(subject, _shortfall(short, missing),
                   f"the owner of {installation.account} accepts the App's new permissions "
                   f"{where}; GitHub has asked them to review the request")


def installation_shortfall(installation: Installation, app: AppInfo, manifest: Manifest | None
                           ) -> tuple[dict[str, str], list[str]]:
    """What the installation lacks of what the App has and the manifest asks for (without a
    manifest: of what the App has). What the App lacks itself is the App's problem, reported
    once for all installations."""
    wanted = manifest.permissions if manifest is not None else app.permissions
    events = manifest.events if manifest is not None else app.events
    short_app = lacking(app.permissions, wanted)
    asked = {name: level for name, level in wanted.items() if name not in short_app}
    subscribed = [event for event in events if event in app.events]
    return lacking(installation.permissions, asked), unsubscribed(installation.events, subscribed)


def _shortfall(short: Mapping[str, str], missing: Iterable[str]) -> str:
    parts = [f"lacks {_levels(short)}"] if short else []
    events = ", ".join(missing)
    return "; ".join([*parts, *([f"not subscribed to {events}"] if events else [])])


def _levels(permissions: Mapping[str, str]) -> str:
    return ", ".join(f"{name} {level}" for name, level in sorted(permissions.items()))


def _accounts(installations: list[Installation]) -> str:
    names = [i.account for i in installations]
    more = len(names) - SHOWN_ACCOUNTS
    shown = ", ".join(names[:SHOWN_ACCOUNTS]) + (f" and {more} more" if more > 0 else "")
    return f"{len(names)} ({shown}), none suspended, none behind the App's permissions and events"


def _web_url(settings: Settings) -> str:
    """GitHub's web address for the API in use (github.com, or an Enterprise server's)."""
    api = settings.github_api_url
    return "https://github.com" if api == "https://api.github.com" else api.removesuffix("/api/v3")
