"""The one place where crisiswatch builds its Kafka clients and turns the security settings into options.

Every aiokafka client of crisiswatch is built by a factory here: `new_producer`, `new_consumer` and
`new_admin` (and the faust app gets ``broker_credentials=faust_credentials(settings)``), so TLS and SASL
(``CRISISWATCH_KAFKA_*`` in `crisiswatch.settings`) and the shared producer defaults are configured once.
A call site passes only what is special about it (acks, linger, client id, group id...) as overrides:

    consumer = new_consumer(topic, settings=settings, group_id=None, client_id="crisiswatch-tail")

Reading a topic from the start (until caught up, or following it) lives next door in `crisiswatch.follow`.

With the defaults (``PLAINTEXT``) the options are ``{"security_protocol": "PLAINTEXT"}``, which is
aiokafka's own default. The SASL password is only unwrapped from its ``SecretStr`` here, into a `str`
whose ``repr`` is masked, so logging the options never prints it.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context

from crisiswatch.contracts.topics import ALL_TOPICS, TopicSpec
from crisiswatch.settings import KafkaSettings, Settings, get_settings

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # faust is imported lazily: publishing services that embed a gate do not need it
    from faust.types.auth import CredentialsT


class _Password(str):
    """The SASL password as aiokafka needs it (a `str`), with a masked ``repr``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'**********'"


KafkaConfig = Settings | KafkaSettings
"""What the kit reads its options from: the ``kafka`` section, or whole settings (it reads only their ``kafka``)."""


def kafka_section(settings: KafkaConfig | None = None) -> KafkaSettings:
    """The ``kafka`` section of ``settings`` (default: of the process-wide `get_settings()`)."""
    if settings is None:
        settings = get_settings()
    return settings.kafka if isinstance(settings, Settings) else settings


def ssl_context(settings: KafkaConfig) -> ssl.SSLContext | None:
    """The TLS context of the SSL and SASL_SSL protocols (server certificate and host name verified)."""
    kafka = kafka_section(settings)
    if kafka.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    return create_ssl_context(
        cafile=kafka.kafka_ssl_cafile,
        certfile=kafka.kafka_ssl_certfile,
        keyfile=kafka.kafka_ssl_keyfile,
    )


def client_options(settings: KafkaConfig | None = None) -> dict[str, Any]:
    """Security keyword arguments for `AIOKafkaProducer`, `AIOKafkaConsumer` and `AIOKafkaAdminClient`.

    ``settings`` defaults to the process-wide `get_settings()`. Bootstrap servers are not included:
    callers pass them (they may come from the embedded broker).
    """
    kafka = kafka_section(settings)
    options: dict[str, Any] = {"security_protocol": kafka.kafka_security_protocol}
    context = ssl_context(kafka)
    if context is not None:
        options["ssl_context"] = context
    if kafka.kafka_security_protocol.startswith("SASL_"):
        assert kafka.kafka_sasl_password is not None  # KafkaSettings validates it
        options["sasl_mechanism"] = kafka.kafka_sasl_mechanism
        options["sasl_plain_username"] = kafka.kafka_sasl_username
        options["sasl_plain_password"] = _Password(kafka.kafka_sasl_password.get_secret_value())
    return options


PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable_idempotence": False,  # at-least-once, with idempotent keys downstream
    "acks": "all",
    "linger_ms": 5,
    "max_batch_size": 1 << 20,
    "max_request_size": 4 << 20,
    "compression_type": None,
}
"""What every crisiswatch producer starts from (a site overrides what it needs, e.g. ``linger_ms=0``)."""

CONSUMER_DEFAULTS: dict[str, Any] = {"enable_auto_commit": False}
"""crisiswatch never auto-commits: consumer groups commit explicitly, readers without a group commit nothing."""


def _servers(bootstrap_servers: str | None, settings: KafkaConfig) -> str | None:
    """The servers a caller passed (e.g. the embedded broker's), else the configured ones."""
    return bootstrap_servers if bootstrap_servers is not None else kafka_section(settings).bootstrap_servers


def new_producer(
    bootstrap_servers: str | None = None, *, settings: KafkaConfig | None = None, **overrides: Any
) -> AIOKafkaProducer:
    """A producer with `PRODUCER_DEFAULTS` and the security options, then ``overrides``.

    ``settings`` defaults to the process-wide settings; ``bootstrap_servers`` to ``settings.kafka.bootstrap_servers``.
    """
    settings = settings if settings is not None else get_settings()
    options: dict[str, Any] = {
        "bootstrap_servers": _servers(bootstrap_servers, settings),
        **client_options(settings),
        **PRODUCER_DEFAULTS,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def new_consumer(
    *topics: str, bootstrap_servers: str | None = None, settings: KafkaConfig | None = None, **overrides: Any
) -> AIOKafkaConsumer:
    """A consumer (subscribed to ``topics`` if any) with `CONSUMER_DEFAULTS` and the security options."""
    settings = settings if settings is not None else get_settings()
    options: dict[str, Any] = {
        "bootstrap_servers": _servers(bootstrap_servers, settings),
        **client_options(settings),
        **CONSUMER_DEFAULTS,
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


def new_admin(
    bootstrap_servers: str | None = None, *, settings: KafkaConfig | None = None, **overrides: Any
) -> AIOKafkaAdminClient:
    """An admin client with the security options, then ``overrides`` (e.g. ``request_timeout_ms``)."""
    settings = settings if settings is not None else get_settings()
    options: dict[str, Any] = {"bootstrap_servers": _servers(bootstrap_servers, settings), **client_options(settings)}
    options.update(overrides)
    return AIOKafkaAdminClient(**options)


def faust_credentials(settings: KafkaConfig | None = None) -> CredentialsT | None:
    """``broker_credentials`` of the faust app, matching `client_options` (None for PLAINTEXT)."""
    import faust

    options = client_options(settings)
    protocol = options["security_protocol"]
    if protocol == "SSL":
        return faust.SSLCredentials(options["ssl_context"])
    if protocol.startswith("SASL_"):
        # faust derives the protocol from the context: SASL_SSL with one, SASL_PLAINTEXT without.
        return faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            ssl_context=options.get("ssl_context"),
            mechanism=options["sasl_mechanism"],
        )
    return None


def forbid_topic_auto_creation() -> None:
    """Make every aiokafka client of this process ask the broker NOT to create a topic it looks up.

    crisiswatch creates its topics itself (`ensure_topics`: partition counts, compaction,
    single-partition topics). A broker with auto-creation on (Apache Kafka's default, and the embedded
    broker) would otherwise re-create a topic that vanished (deleted, or a memory-only broker restarted
    empty) the moment a client asked for its metadata, with the broker's default partition count and
    no compaction, and the worker's own start-up check would then accept it. With this, a missing topic
    stays missing until `ensure_topics` creates it properly (the worker does so when the broker is back).
    aiokafka has no option for it, so the metadata request's default is changed; idempotent.
    """
    import aiokafka.admin.client
    import aiokafka.client
    from aiokafka.protocol.metadata import MetadataRequest

    if getattr(aiokafka.client.MetadataRequest, "crisiswatch_no_auto_create", False):
        return

    class _NoAutoCreate(MetadataRequest):
        crisiswatch_no_auto_create = True

        def __init__(self, topics: list[str] | None = None, allow_auto_topic_creation: bool | None = False):
            super().__init__(topics, allow_auto_topic_creation)

    aiokafka.client.MetadataRequest = _NoAutoCreate  # type: ignore[misc]
    aiokafka.admin.client.MetadataRequest = _NoAutoCreate  # type: ignore[misc]


def partitions_for(spec: TopicSpec, settings: KafkaConfig) -> int:
    """Partitions of ``spec``'s topic: 1 for single-partition topics, else ``CRISISWATCH_PARTITIONS``."""
    return 1 if spec.single_partition else kafka_section(settings).partitions


async def ensure_topics(bootstrap_servers: str, settings: KafkaConfig) -> list[str]:
    """Create every crisiswatch topic that does not exist yet; return the names created."""
    kafka = kafka_section(settings)
    admin = new_admin(bootstrap_servers, settings=kafka)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = []
        for spec in ALL_TOPICS:
            name = kafka.topic(spec.name)
            if name in existing:
                continue
            configs = dict(spec.configs)
            if spec.compacted:
                configs["cleanup.policy"] = "compact"
            new.append(NewTopic(name, partitions_for(spec, kafka), kafka.replication_factor, None, configs))
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):  # raced with another process: fine
                await admin.create_topics(new)
            log.info("created topics: %s", ", ".join(t.name for t in new))
        return [t.name for t in new]
    finally:
        await admin.close()
