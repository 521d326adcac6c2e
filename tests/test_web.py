"""The webhook route table (SPEC §4) against a real redis-server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import orjson
import pytest
import redis
from rq.job import Job
from starlette.testclient import TestClient

from reactor.entrypoints.web import create_app
from reactor.entrypoints.webhook import MAX_BODY, WEBHOOK_PATH, Reject, SignatureCheck, hmac_keys
from reactor.process.settings import Settings
from reactor.store import deliveries, keys
from reactor.store.accept import JOB_FUNC
from tests.conftest import RedisServer, sign, webhook_headers
from tests.octokit import webhook_example

SECRET = "It's a Secret to Everybody"
OLD_SECRET = "the previous secret"


@pytest.fixture
def client(redis_url: str) -> Iterator[TestClient]:
    settings = Settings(redis_url=redis_url, webhook_secrets=(SECRET.encode(), OLD_SECRET.encode()))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def post(
    client: TestClient, body: bytes, *, secret: str = SECRET, **headers: str
) -> tuple[int, dict[str, object]]:
    sent = webhook_headers(body, secret, guid=headers.pop("guid", str(uuid.uuid4())))
    sent.update(headers)
    response = client.post(WEBHOOK_PATH, content=body, headers={k: v for k, v in sent.items() if v})
    return response.status_code, response.json() if response.content else {}


PAYLOAD = orjson.dumps({"action": "labeled", "issue": {"number": 1}})


def verify_signature(body: bytes, signature: str, secrets: tuple[str, ...]) -> bool:
    """The route's check of ``body``, fed in two chunks as a streamed body would be."""
    keys = hmac_keys(tuple(s.encode() for s in secrets))
    try:
        check = SignatureCheck.from_header(signature.encode(), keys)
    except Reject:
        return False
    check.update(body[:5])
    check.update(body[5:])
    return check.matches()


def test_githubs_published_test_vector_verifies() -> None:
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign(b"Hello, World!", SECRET) == expected
    assert verify_signature(b"Hello, World!", expected, (SECRET,))
    assert verify_signature(b"Hello, World!", expected, ("another secret", SECRET))
    assert not verify_signature(b"Hello, World!", expected, ("another secret",))
    assert not verify_signature(b"Hello, World!", expected.replace("sha256", "sha1"), (SECRET,))
    assert not verify_signature(b"Hello, World", expected, (SECRET,))


def test_signature_from_a_wrong_secret_is_401(client: TestClient) -> None:
    status, body = post(client, PAYLOAD, secret="wrong")
    assert status == 401 and "secret" in body["message"]


def test_missing_signature_is_401(client: TestClient) -> None:
    assert post(client, PAYLOAD, **{"X-Hub-Signature-256": ""})[0] == 401


def test_every_configured_secret_is_accepted_for_rotation(client: TestClient) -> None:
    assert post(client, PAYLOAD, secret=SECRET)[0] == 202
    assert post(client, PAYLOAD, secret=OLD_SECRET)[0] == 202


@pytest.mark.parametrize("header", ["X-GitHub-Event", "X-GitHub-Delivery"])
def test_missing_github_headers_are_400(client: TestClient, header: str) -> None:
    status, body = post(client, PAYLOAD, **{header: ""})
    assert status == 400 and header.lower() in body["message"]


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b"Hello, World!"])
def test_a_signed_body_that_is_not_a_json_object_is_400(client: TestClient, payload: bytes) -> None:
    assert post(client, payload)[0] == 400


def test_a_body_over_25_mib_is_413(client: TestClient) -> None:
    status, body = post(client, b" " * (MAX_BODY + 1))
    assert status == 413 and "25 MiB" in body["message"]


def test_ping_answers_200_without_storing(client: TestClient, redis_url: str) -> None:
    status, body = post(client, orjson.dumps({"zen": "Keep it logically awesome."}),
                        **{"X-GitHub-Event": "ping"})
    assert (status, body) == (200, {"pong": True})
    assert redis.Redis.from_url(redis_url).llen(f"rq:queue:{keys.QUEUE_EVENTS}") == 0


def test_accepted_delivery_is_stored_and_enqueued_then_duplicate_is_200(
    client: TestClient, redis_url: str
) -> None:
    payload = orjson.dumps(webhook_example("issues", "labeled"))
    guid = str(uuid.uuid4())
    assert post(client, payload, guid=guid) == (202, {})
    assert post(client, payload, guid=guid) == (200, {"duplicate": True})
    store = redis.Redis.from_url(redis_url)
    stored = deliveries.decode(guid, store.get(keys.delivery(guid)))
    assert (stored.body, stored.event) == (payload, "issues")
    assert store.ttl(keys.delivery(guid)) > keys.DELIVERY_TTL_S - 60
    assert store.lrange(f"rq:queue:{keys.QUEUE_EVENTS}", 0, -1) == [guid.encode()]
    job = Job.fetch(guid, connection=store)
    assert (job.func_name, job.args, job.kwargs) == (JOB_FUNC, (guid,), {})
    assert (job.get_status(), job.origin, job.retries_left) == ("queued", keys.QUEUE_EVENTS, 3)
    assert job.description == f"{JOB_FUNC}({guid!r})"


def test_202_has_no_body_and_a_duplicate_says_so_in_json(client: TestClient) -> None:
    headers = webhook_headers(PAYLOAD, SECRET, guid=str(uuid.uuid4()))
    accepted = client.post(WEBHOOK_PATH, content=PAYLOAD, headers=headers)
    assert (accepted.status_code, accepted.content) == (202, b"")
    assert accepted.headers["content-length"] == "0"
    duplicate = client.post(WEBHOOK_PATH, content=PAYLOAD, headers=headers)
    assert duplicate.headers["content-type"] == "application/json"
    assert (duplicate.status_code, duplicate.json()) == (200, {"duplicate": True})


def test_form_encoded_deliveries_are_accepted(client: TestClient, redis_url: str) -> None:
    body = urlencode({"payload": PAYLOAD.decode()}).encode()
    guid = str(uuid.uuid4())
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _ = post(client, body, guid=guid, **form)
    assert status == 202
    record = redis.Redis.from_url(redis_url).get(keys.delivery(guid))
    assert deliveries.decode(guid, record).body == PAYLOAD


def test_503_while_redis_is_down_then_the_redelivery_is_accepted_once(
    client: TestClient, redis_server: RedisServer
) -> None:
    """(How promptly the 503 comes is the ingest's: tests/test_ingest.py checks that a
    refused connection fails at once and a hung Redis within the store's timeout.)"""
    guid = str(uuid.uuid4())
    assert post(client, PAYLOAD)[0] == 202  # the ingest connection is open when Redis stops
    redis_server.stop()
    try:
        status, body = post(client, PAYLOAD, guid=guid)
        assert status == 503 and "redeliver" in body["message"]
        assert client.get("/readyz").status_code == 503
    finally:
        redis_server.start()
    assert post(client, PAYLOAD, guid=guid)[0] == 202
    assert post(client, PAYLOAD, guid=guid)[0] == 200
    assert client.get("/readyz").status_code == 200


def test_health_routes(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_only_post_reaches_the_webhook_route(client: TestClient) -> None:
    assert client.get(WEBHOOK_PATH).status_code == 405


def test_a_redis_restart_without_its_script_cache_loses_nothing(
    client: TestClient, redis_url: str
) -> None:
    assert post(client, PAYLOAD)[0] == 202
    redis.Redis.from_url(redis_url).script_flush()
    guid = str(uuid.uuid4())
    assert post(client, PAYLOAD, guid=guid) == (202, {})
    assert post(client, PAYLOAD, guid=guid) == (200, {"duplicate": True})


def test_an_unexpected_error_is_a_json_500_naming_no_internals(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> bool:
        raise RuntimeError("a bug")

    monkeypatch.setattr("reactor.entrypoints.webhook.SignatureCheck.matches", broken)
    status, body = post(client, PAYLOAD)
    assert status == 500 and "a bug" not in body["message"]
