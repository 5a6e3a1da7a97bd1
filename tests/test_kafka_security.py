"""Kafka TLS/SASL settings: validation, the one place that builds client options, and every client using it.

The embedded broker speaks PLAINTEXT only, so SSL/SASL are checked as options (and TLS with a real
handshake against a local TLS listener); the PLAINTEXT options are checked against the real broker.
"""

from __future__ import annotations

import ast
import asyncio
import logging
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import SecretStr, ValidationError

from crisiswatch.kafka import client_options, ensure_topics, faust_credentials, new_producer
from crisiswatch.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "pa55-w0rd-never-logged"
CLUSTER = "kafka-1.example:9093"
SASL_USER = {"kafka_sasl_username": "u", "kafka_sasl_password": "p"}


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (CA, server and client certificate at once) and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    folder = tmp_path_factory.mktemp("kafka-tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def secure(**values: Any) -> Settings:
    return Settings(bootstrap_servers=CLUSTER, **values)


def sasl(protocol: str = "SASL_SSL", mechanism: str = "SCRAM-SHA-512", **values: Any) -> Settings:
    return secure(
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="crisiswatch",
        kafka_sasl_password=SecretStr(PASSWORD),
        **values,
    )


# --- client_options, per protocol ------------------------------------------------------------------------
def test_plaintext_is_the_default_and_changes_nothing() -> None:
    settings = Settings()
    assert settings.kafka.kafka_security_protocol == "PLAINTEXT"
    assert client_options(settings) == {"security_protocol": "PLAINTEXT"}  # aiokafka's own default
    assert faust_credentials(settings) is None


def test_ssl_options_verify_the_brokers_and_present_the_client_certificate(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    options = client_options(
        secure(kafka_security_protocol="SSL", kafka_ssl_cafile=cert, kafka_ssl_certfile=cert, kafka_ssl_keyfile=key)
    )
    assert set(options) == {"security_protocol", "ssl_context"}
    assert options["security_protocol"] == "SSL"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext_options(mechanism: str) -> None:
    options = client_options(sasl("SASL_PLAINTEXT", mechanism))
    assert set(options) == {"security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password"}
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == mechanism
    assert options["sasl_plain_username"] == "crisiswatch"
    assert options["sasl_plain_password"] == PASSWORD  # a str, as aiokafka needs ...
    assert PASSWORD not in repr(options)  # ... that does not show in a repr of the options


def test_sasl_ssl_options_use_the_system_cas_without_a_cafile(tls_files: tuple[Path, Path]) -> None:
    options = client_options(sasl("SASL_SSL", "PLAIN"))
    assert set(options) == {
        "security_protocol", "ssl_context", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password",
    }  # fmt: skip
    assert options["security_protocol"] == "SASL_SSL"
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert options["ssl_context"].cert_store_stats()["x509_ca"] > 0 or ssl.get_default_verify_paths().cafile is None
    with_ca = client_options(sasl("SASL_SSL", kafka_ssl_cafile=tls_files[0]))
    assert with_ca["ssl_context"].cert_store_stats()["x509_ca"] == 1


async def test_the_password_never_shows(caplog: pytest.LogCaptureFixture) -> None:
    settings = sasl()
    assert isinstance(settings.kafka.kafka_sasl_password, SecretStr)
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)
    assert PASSWORD not in settings.model_dump_json()
    caplog.set_level(logging.DEBUG)
    options = client_options(settings)
    logging.getLogger("crisiswatch.test").info("kafka options: %s / %r", options, options)
    AIOKafkaProducer(bootstrap_servers=CLUSTER, **options)  # built, not started: nothing connects
    credentials = faust_credentials(settings)
    logging.getLogger("crisiswatch.test").info("faust credentials: %s / %r", credentials, credentials)
    assert "kafka options" in caplog.text
    assert PASSWORD not in caplog.text
    # A refused configuration does not print the inputs either (pydantic would, for a model-level error).
    with pytest.raises(ValidationError) as info:
        Settings(bootstrap_servers=CLUSTER, kafka_sasl_username="u", kafka_sasl_password=PASSWORD)
    assert PASSWORD not in str(info.value) and "does not use SASL" in str(info.value)


# --- validation -----------------------------------------------------------------------------------------
def test_security_settings_are_validated(tls_files: tuple[Path, Path], tmp_path: Path) -> None:
    cert, key = tls_files
    refused: list[tuple[dict[str, Any], str]] = [
        ({"kafka_security_protocol": "SASL_SSL"}, "needs CRISISWATCH_KAFKA_SASL_USERNAME"),
        ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "u"}, "_SASL_PASSWORD"),
        ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol"),
        ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "GSSAPI"}, "kafka_sasl_mechanism"),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": tmp_path / "missing.pem"}, "no such file"),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_certfile": tmp_path}, "no such file"),
        ({"kafka_ssl_cafile": cert}, "does not use TLS"),
        ({**SASL_USER, "kafka_security_protocol": "SASL_PLAINTEXT", "kafka_ssl_cafile": cert}, "does not use TLS"),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_keyfile": key}, "needs CRISISWATCH_KAFKA_SSL_CERTFILE"),
    ]
    for values, message in refused:
        with pytest.raises(ValidationError, match=message):
            secure(**values)
    with pytest.raises(ValidationError, match="embedded broker speaks PLAINTEXT only"):
        Settings(kafka_security_protocol="SSL")


def test_security_settings_come_from_the_environment(
    tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = tls_files
    for name, value in {
        "KAFKA_BOOTSTRAP_SERVERS": CLUSTER,
        "CRISISWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "CRISISWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "CRISISWATCH_KAFKA_SASL_USERNAME": "crisiswatch",
        "CRISISWATCH_KAFKA_SASL_PASSWORD": PASSWORD,
        "CRISISWATCH_KAFKA_SSL_CAFILE": str(cert),
        "CRISISWATCH_KAFKA_SSL_CERTFILE": str(cert),
        "CRISISWATCH_KAFKA_SSL_KEYFILE": str(key),
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.kafka.kafka_sasl_password == SecretStr(PASSWORD)
    assert (settings.kafka.kafka_ssl_cafile, settings.kafka.kafka_ssl_keyfile) == (cert, key)
    options = client_options(settings)
    assert options["sasl_mechanism"] == "SCRAM-SHA-256" and options["security_protocol"] == "SASL_SSL"


# --- faust ------------------------------------------------------------------------------------------------
def test_faust_credentials_match_the_client_options(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    cases = [
        secure(kafka_security_protocol="SSL", kafka_ssl_cafile=cert, kafka_ssl_certfile=cert, kafka_ssl_keyfile=key),
        sasl("SASL_PLAINTEXT", "SCRAM-SHA-256"),
        sasl("SASL_SSL", "PLAIN", kafka_ssl_cafile=cert),
    ]
    for settings in cases:
        options = client_options(settings)
        credentials = faust_credentials(settings)
        assert credentials is not None
        assert PASSWORD not in repr(credentials)
        # What faust's aiokafka driver hands its producer and consumers, from these credentials:
        derived = credentials_to_aiokafka_auth(credentials)
        assert derived.keys() - {"ssl_context"} == options.keys() - {"ssl_context"}
        for name in options.keys() - {"ssl_context"}:
            assert derived[name] == options[name], name
        assert (derived.get("ssl_context") is None) == ("ssl_context" not in options)


def test_the_worker_app_gets_the_credentials(tls_files: tuple[Path, Path], tmp_path: Path) -> None:
    from crisiswatch.stream.app import create_app

    settings = sasl("SASL_SSL", "SCRAM-SHA-512", kafka_ssl_cafile=tls_files[0])
    app = create_app(settings, settings.kafka.bootstrap_servers or "", str(tmp_path))
    credentials = app.conf.broker_credentials
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.username == "crisiswatch" and credentials.password == PASSWORD
    assert isinstance(credentials.ssl_context, ssl.SSLContext)

    plain = create_app(Settings(bootstrap_servers=CLUSTER), CLUSTER, str(tmp_path / "plain"))
    assert plain.conf.broker_credentials is None
    assert credentials_to_aiokafka_auth(plain.conf.broker_credentials) == {"security_protocol": "PLAINTEXT"}


# --- every client goes through client_options ----------------------------------------------------------
CLIENTS = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient"}
FACTORIES = {"new_producer", "new_consumer", "new_admin"}


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def test_every_kafka_client_in_the_code_uses_the_security_options() -> None:
    """Static check: a new client that forgets the options would talk plaintext to a TLS/SASL cluster."""
    found = []
    for folder in ("crisiswatch", "stream", "connectors", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]:
                for call in [n for n in ast.walk(function) if isinstance(n, ast.Call)]:
                    name, where = _name(call.func), f"{path.relative_to(ROOT)}:{call.lineno}"
                    keywords = {k.arg: k.value for k in call.keywords}
                    if name in CLIENTS:
                        found.append(where)
                        # Only the factories of crisiswatch/kafka.py build clients, from client_options.
                        assert path == ROOT / "crisiswatch" / "kafka.py", f"{where}: use crisiswatch.kafka.new_*"
                        assert function.name in FACTORIES, where
                        assert "client_options(settings)" in ast.unparse(function), where
                    elif name in FACTORIES:
                        found.append(where)
                        assert "settings" in keywords, f"{where}: pass settings= to {name}"
                    elif name == "App" and ast.unparse(call.func) == "faust.App":
                        found.append(where)
                        assert ast.unparse(keywords.get("broker_credentials", ast.Constant(None))).startswith(
                            "faust_credentials("
                        ), where
    assert len(found) >= 20, found  # the walk did find the clients


# --- against the real (PLAINTEXT) broker ---------------------------------------------------------------
async def test_clients_built_from_the_options_talk_to_the_broker(kafka_bootstrap: str, settings: Settings) -> None:
    assert client_options(settings) == {"security_protocol": "PLAINTEXT"}
    await ensure_topics(kafka_bootstrap, settings)  # the admin client, with the options
    topic = settings.topic("mentions.dlq")  # created just now (topics are never auto-created: another test may
    # have switched auto-creation off in this process, as every crisiswatch command does)
    producer = new_producer(kafka_bootstrap, settings=settings)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello over PLAINTEXT", key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", **client_options(settings)
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 15)
    finally:
        await consumer.stop()
    assert record.value == b"hello over PLAINTEXT"


async def test_ssl_options_make_a_verified_mutual_tls_connection(tls_files: tuple[Path, Path]) -> None:
    """No Kafka here speaks TLS: a TLS listener checks the handshake (server verified, client cert sent)."""
    cert, key = tls_files
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(cert))
    server_context.load_cert_chain(cert, key)
    server_context.verify_mode = ssl.CERT_REQUIRED
    peers: list[dict[str, Any]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peercert"))
        await reader.read(4)  # the first Kafka request arrives inside TLS; answer nothing
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    settings = Settings(
        bootstrap_servers=f"127.0.0.1:{port}",
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=cert,
        kafka_ssl_certfile=cert,
        kafka_ssl_keyfile=key,
    )
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka.bootstrap_servers, request_timeout_ms=3000, **client_options(settings)
    )
    try:
        with pytest.raises(KafkaError):  # not a Kafka broker
            await admin.start()
    finally:
        await admin.close()
        server.close()
        await server.wait_closed()
    assert peers, "no TLS connection was completed"
    assert dict(x[0] for x in peers[0]["subject"])["commonName"] == "localhost"
