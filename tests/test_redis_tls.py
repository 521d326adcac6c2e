"""TLS: the reactor on a Redis that speaks only TLS (``rediss://``), its certificate checked
against ``REDIS_TLS_CA_FILE``, as a managed Redis requires.

A throwaway CA and a server certificate for 127.0.0.1 are made with ``cryptography``;
Debian's ``redis-server`` (built with TLS) listens on a TLS port only.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from reactor.core.errors import ConfigError
from reactor.process.settings import Settings
from reactor.store import connect, keys
from reactor.store.ingest import Ingest
from tests.conftest import free_port, running_stack, stop_group, wait_for_port
from tests.prerequisites import missing
from tests.test_cli import clean_env, reactor
from tests.test_recovery import DEADLINE_S
from tests.test_redis_outage import delivery


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA, and a server certificate it signs for 127.0.0.1 and localhost: the
    CA's file, the certificate's and its key's."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("reactor test CA"))
          .issuer_name(_name("reactor test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (x509.CertificateBuilder().subject_name(_name("127.0.0.1"))
                   .issuer_name(ca.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName(names), critical=False)
                   .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]),
                                  critical=False)
                   .sign(ca_key, hashes.SHA256()))
    ca_file, cert_file, key_file = (directory / n for n in ("ca.pem", "redis.pem", "redis.key"))
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_file)
    return ca_file, cert_file, key_file


@dataclass
class TlsRedis:
    port: int
    ca_file: Path

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"

    @property
    def env(self) -> dict[str, str]:
        """The reactor's settings: the URL and the CA file."""
        return {"REDIS_URL": self.url, "REDIS_TLS_CA_FILE": str(self.ca_file)}


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    """redis-server with a TLS port only (no plain one), append-only, as in production."""
    binary = shutil.which("redis-server")
    if binary is None:
        missing("Debian's redis-server is not installed (apt-get install redis-server)")
    directory = tmp_path_factory.mktemp("tls-redis")
    ca_file, cert_file, key_file = make_certificates(directory)
    port = free_port()
    log = directory / "redis.log"
    with log.open("wb") as out:
        process = subprocess.Popen([
            binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
            "--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file),
            "--tls-ca-cert-file", str(ca_file), "--tls-auth-clients", "no",
            "--dir", str(directory), "--appendonly", "yes", "--save", "",
            "--daemonize", "no",
        ], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        try:
            wait_for_port(port, timeout=15)
        except TimeoutError:
            missing(f"redis-server did not listen with TLS (built without it?):\n"
                    f"{log.read_text(errors='replace')[-1000:]}")
        yield TlsRedis(port, ca_file)
    finally:
        stop_group(process)


def test_a_ca_file_needs_a_rediss_url(tls_redis: TlsRedis) -> None:
    with pytest.raises(ConfigError, match="REDIS_TLS_CA_FILE is set but REDIS_URL is not"):
        Settings.parse({"REDIS_URL": "redis://127.0.0.1:6379/0",
                        "REDIS_TLS_CA_FILE": str(tls_redis.ca_file)})
    with pytest.raises(ConfigError, match="REDIS_TLS_CA_FILE: cannot read"):
        Settings.parse({"REDIS_URL": tls_redis.url, "REDIS_TLS_CA_FILE": "/nonexistent/ca.pem"})


async def test_every_client_speaks_tls_and_checks_the_servers_certificate(
    tls_redis: TlsRedis,
) -> None:
    settings = Settings.parse(tls_redis.env)
    sync_client = connect.sync_client(settings)
    async_client = connect.async_client(settings)
    try:
        assert sync_client.ping() and await async_client.ping()
        async with Ingest(async_client) as ingest:
            sent = delivery()
            assert await ingest.accept(sent) is True
        assert sync_client.exists(keys.delivery(sent.guid)) == 1
    finally:
        sync_client.close()
        await async_client.aclose()
    unverified = connect.sync_client(Settings.parse({"REDIS_URL": tls_redis.url}),
                                     socket_connect_timeout=5)
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        unverified.ping()  # the throwaway CA is no system CA: verification is on
    unverified.close()


@pytest.mark.timeout(300)
def test_the_reactor_runs_on_a_tls_redis(tls_redis: TlsRedis, tmp_path: Path) -> None:
    """web, two workers and the scheduler on the TLS Redis: a webhook is accepted and
    handled, and ``reactor audit`` reads its record over TLS."""
    # The test's own looks at Redis give the CA in the URL (redis-py's ssl_ca_certs option);
    # the reactor's processes get REDIS_TLS_CA_FILE.
    own_url = f"{tls_redis.url}?ssl_ca_certs={tls_redis.ca_file}"
    redis.Redis.from_url(own_url).flushall()
    with running_stack(own_url, workers=2, log_dir=tmp_path, env=tls_redis.env) as stack:
        sandbox = stack.sandbox.client()
        sandbox.create_repo("acme", "widgets")
        created = sandbox.as_user("alice", "POST", "/repos/acme/widgets/issues",
                                  json={"title": "over TLS"})
        assert created.status_code == 201, created.text
        sandbox.drain(timeout=30)
        hooks = [h for h in sandbox.webhooks() if h["event"] == "issues"]
        assert [h["status_code"] for h in hooks] == [202]
        stack.wait_for_audit(lambda record: hooks[0]["guid"] in record.guids(),
                             timeout=DEADLINE_S)
    done = reactor("audit", "--delivery", hooks[0]["guid"], "--json",
                   env={**clean_env(), **tls_redis.env})
    assert done.returncode == 0 and hooks[0]["guid"] in done.stdout, done
