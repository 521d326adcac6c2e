"""Every Redis key the reactor writes, in one place (as RQ keeps its own).

All keys share the ``reactor:`` prefix so an operator can see, count and, if ever needed,
drop the reactor's state without touching RQ's (``rq:``) or anything else in the database.
"""

from __future__ import annotations

PREFIX = "reactor:"

# Ingest: the raw delivery, whose existence marks its GUID accepted (GitHub keeps
# redelivering the same X-GitHub-Delivery for days: the record outlives the delivery log's
# window, and `reactor replay` reads it).
DELIVERY = PREFIX + "delivery:{guid}"
DELIVERY_TTL_S = 7 * 24 * 3600

# Audit log: one capped stream for the whole deployment.
AUDIT = PREFIX + "audit"
AUDIT_MAXLEN = 100_000

# What GET /metrics reports (reactor/ops/metrics.py), written by every process: the counters
# (hash fields "delivery <event> <outcome>", "violation <rule>", "handoff", "timeout",
# "cycle", "turn round", "turn delivery"), the outcomes already counted per delivery, the
# latency histogram (a field per bucket bound, plus "sum"), GitHub calls by route and status
# ("<method> <route> <status>" -> attempts) and the latest x-ratelimit-remaining per
# installation (or "app"). Each expires METRICS_TTL_S after its last write, as everything
# the reactor keeps: a reactor idle that long starts its counters afresh.
METRICS_COUNTERS = PREFIX + "metrics:counters"
METRICS_COUNTED = PREFIX + "metrics:counted:{guid}"
METRICS_LATENCY = PREFIX + "metrics:latency"
GITHUB_CALLS = PREFIX + "metrics:github-calls"
RATE_REMAINING = PREFIX + "metrics:rate-remaining"
METRICS_TTL_S = 90 * 24 * 3600

# GitHub access, shared by every worker process.
INSTALLATION_TOKEN = PREFIX + "token:{installation_id}"
INSTALLATION_TOKEN_LOCK = PREFIX + "token-lock:{installation_id}"
# "etag2": an entry is one string (reactor/github/cache.py); the hashes of before expire unread
ETAG = PREFIX + "etag2:{installation_id}:{digest}"
RATE_LIMITED_UNTIL = PREFIX + "ratelimit:{installation_id}"
CONTENT_WRITES = PREFIX + "content-writes:{installation_id}"  # paced issue/comment creation
# R11: when an actor did each thing of one kind (moves, issues, comments) lately, by delivery
BUDGET = PREFIX + "budget:{installation_id}:{kind}:{actor}"
PAUSED_BY = PREFIX + "paused-by:{repo_id}:{comp}"  # the actor whose overrun paused a competition

# Serialising work per competition ("scope": "<repo id>:comp:<name>" or "<repo id>:issue:<n>").
LEASE = PREFIX + "lease:{scope}"
FENCE = PREFIX + "fence:{scope}"
PENDING = PREFIX + "pending:{scope}"  # work waiting for the scope's turn (store/turns.py)
INFLIGHT = PREFIX + "inflight:{scope}"  # taken by a round, or waiting for a settle window
TURN = PREFIX + "turn:{scope}"  # present while a turn is queued or running: its owner
ROUNDS_RUNNING = PREFIX + "rounds-running"  # sorted set: scope → when its round is overdue
PAUSED = PREFIX + "paused-turns"  # sorted set: a paused turn → when its next round may read
PACE = PREFIX + "pace:{scope}"  # the scope's last read of GitHub and how many came in a row
JUDGED = PREFIX + "judged:{scope}"  # deliveries already judged (a retried job's change)
SAGAS = PREFIX + "sagas:{scope}"  # hand-off journals in progress (reactor/shell/saga.py)
# Everything kept per scope expires once the scope has been quiet this long.
SCOPE_TTL_S = 7 * 24 * 3600

# The reactor's memory between evaluations (reactor/store/memory.py), one hash per issue.
ISSUE = PREFIX + "issue:{repo_id}:{issue}"  # accepted status, competition, stage
REVERTS = PREFIX + "reverts:{repo_id}:{issue}"
DEPENDENCIES = PREFIX + "deps:{repo_id}:{issue}"  # issues GitHub lists as blocking it (R7)
MARKER = PREFIX + "marker:{marker}"
EXPECTATIONS = PREFIX + "expect:{repo_id}:{target}"  # an issue number, or create:<key>
OWN = PREFIX + "own:{guid}"  # a delivery recognised as the reactor's own echo (R10)
CREATED = PREFIX + "created:{repo_id}:{key}"

# Repository config: the cached text, its generation (raised by each push, so a read begun
# before one never caches what it read), the last text that parsed, problems reported.
CONFIG = PREFIX + "config:{repo_id}"
CONFIG_GEN = PREFIX + "config-gen:{repo_id}"
CONFIG_GOOD = PREFIX + "config-good:{repo_id}"
CONFIG_REPORTED = PREFIX + "config-reported:{repo_id}:{digest}"

# Catch-up of missed deliveries (reactor/shell/catchup.py): where the next run starts reading the
# App's delivery log, the lock that keeps runs one at a time, and per GUID the redeliveries
# asked for and the hold before the next may be.
CATCHUP_CURSOR = PREFIX + "catchup:since"
CATCHUP_LOCK = PREFIX + "catchup:lock"
REDELIVERIES = PREFIX + "redeliveries:{guid}"
REDELIVERY_HOLD = PREFIX + "redelivery-hold:{guid}"

# The sweep (reactor/shell/sweep.py), per installation: where its next run starts, held while
# a run of it goes on, and present once its job of a period is queued.
SWEEP_CURSOR = PREFIX + "sweep:cursor:{installation_id}"
SWEEP_RUNNING = PREFIX + "sweep:running:{installation_id}"
SWEEP_QUEUED = PREFIX + "sweep:queued:{installation_id}:{period}"

# Periodic jobs (reactor/entrypoints/worker.py): present while a job's period has not yet run out.
PERIODIC = PREFIX + "periodic:{name}"

# RQ queue names.
QUEUE_EVENTS = "reactor-events"
QUEUE_SWEEP = "reactor-sweep"  # the periodic reconcile: taken only when no webhook waits

# RQ rate-limit names (RQ keeps each under rq:rl:<name>): an installation's deliveries queued
# or running at once are bounded by one, so a flood of one installation waits its turns.
INSTALLATION_TURNS = "reactor-installation:{installation_id}"


def delivery(guid: str) -> str:
    return DELIVERY.format(guid=guid)


def installation_token(installation_id: int) -> str:
    return INSTALLATION_TOKEN.format(installation_id=installation_id)


def installation_token_lock(installation_id: int) -> str:
    return INSTALLATION_TOKEN_LOCK.format(installation_id=installation_id)


def etag(installation_id: int | str, digest: str) -> str:
    return ETAG.format(installation_id=installation_id, digest=digest)


def rate_limited_until(installation_id: int | str) -> str:
    return RATE_LIMITED_UNTIL.format(installation_id=installation_id)


def content_writes(installation_id: int) -> str:
    return CONTENT_WRITES.format(installation_id=installation_id)


def budget(installation_id: int, kind: str, actor: str) -> str:
    return BUDGET.format(installation_id=installation_id, kind=kind, actor=actor)


def paused_by(repo_id: int, comp: str) -> str:
    return PAUSED_BY.format(repo_id=repo_id, comp=comp)


def budget_floor(installation_id: int, actor: str) -> str:
    """R11: when a maintainer last resumed a competition ``actor`` paused; what the actor did
    before then no longer counts (:mod:`reactor.store.budgets`)."""
    return f"{PREFIX}budget-floor:{installation_id}:{actor}"


def installation_turns(installation_id: int) -> str:
    return INSTALLATION_TURNS.format(installation_id=installation_id)


def lease(scope: str) -> str:
    return LEASE.format(scope=scope)


def fence(scope: str) -> str:
    return FENCE.format(scope=scope)


def pending(scope: str) -> str:
    return PENDING.format(scope=scope)


def inflight(scope: str) -> str:
    return INFLIGHT.format(scope=scope)


def issue(repo_id: int, number: int) -> str:
    return ISSUE.format(repo_id=repo_id, issue=number)


def dependencies(repo_id: int, issue: int) -> str:
    return DEPENDENCIES.format(repo_id=repo_id, issue=issue)


def judged(scope: str) -> str:
    return JUDGED.format(scope=scope)


def sagas(scope: str) -> str:
    return SAGAS.format(scope=scope)


def own(guid: str) -> str:
    return OWN.format(guid=guid)


def reverts(repo_id: int, issue: int) -> str:
    return REVERTS.format(repo_id=repo_id, issue=issue)


def marker(name: str) -> str:
    return MARKER.format(marker=name)


def expectations(repo_id: int, target: int | str) -> str:
    return EXPECTATIONS.format(repo_id=repo_id, target=target)


def created(repo_id: int, key: str) -> str:
    return CREATED.format(repo_id=repo_id, key=key)


def config(repo_id: int) -> str:
    return CONFIG.format(repo_id=repo_id)


def config_gen(repo_id: int) -> str:
    return CONFIG_GEN.format(repo_id=repo_id)


def config_good(repo_id: int) -> str:
    return CONFIG_GOOD.format(repo_id=repo_id)


def config_reported(repo_id: int, digest: str) -> str:
    return CONFIG_REPORTED.format(repo_id=repo_id, digest=digest)


def turn(scope: str) -> str:
    return TURN.format(scope=scope)


def pace(scope: str) -> str:
    return PACE.format(scope=scope)


def redeliveries(guid: str) -> str:
    return REDELIVERIES.format(guid=guid)


def redelivery_hold(guid: str) -> str:
    return REDELIVERY_HOLD.format(guid=guid)


def periodic(name: str) -> str:
    return PERIODIC.format(name=name)


def sweep_cursor(installation_id: int) -> str:
    return SWEEP_CURSOR.format(installation_id=installation_id)


def sweep_running(installation_id: int) -> str:
    return SWEEP_RUNNING.format(installation_id=installation_id)


def sweep_queued(installation_id: int, period: int) -> str:
    return SWEEP_QUEUED.format(installation_id=installation_id, period=period)


# Tenants (reactor/store/tenants.py): the repositories seen with each installation (a hash:
# repository id → full name) and the installation each repository was last seen with, so an
# uninstall whose payload lists none still forgets them; and the repositories forgotten (a
# sorted set: "<id> <full name>" → when), which the dashboard leaves out.
INSTALLATION_REPOS = PREFIX + "installation-repos:{installation_id}"
REPO_INSTALLATION = PREFIX + "repo-installation:{repo_id}"
FORGOTTEN_REPOS = PREFIX + "forgotten-repos"


def installation_repos(installation_id: int) -> str:
    return INSTALLATION_REPOS.format(installation_id=installation_id)


def repo_installation(repo_id: int) -> str:
    return REPO_INSTALLATION.format(repo_id=repo_id)
