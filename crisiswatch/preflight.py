"""One-line errors for operators, and the exit status of every `crisiswatch` command.

A command that talks to Kafka first checks, in well under a second, that the cluster answers and that
the topics it reads exist (`check_cluster`), so an unreachable broker or a cluster without
crisiswatch's topics is one line, not a traceback::

    error: cannot reach Kafka at kafka:9092 (KAFKA_BOOTSTRAP_SERVERS): connection refused or timed out
    error: topics not created: run `crisiswatch topics --create` (missing: alerts, alerts.ack)

The same translation (`operator_error`) catches a Kafka connection error that happens later, anywhere
in a command. Exit statuses (also in the README, "Commands"):

======  ===========================================================================================
0       done
1       the command refused or failed, and said why on one line
2       wrong usage: an unknown option, a bad value (e.g. a duration without a unit)
69      cannot reach Kafka (``EX_UNAVAILABLE``)
70      a worker stage stopped (`stream.health`, the worker and `crisiswatch run`)
78      topics not created (``EX_CONFIG``): run ``crisiswatch topics --create``
130     stopped by Ctrl-C (SIGINT)
143     stopped by SIGTERM
======  ===========================================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from crisiswatch.settings import Settings

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_KAFKA_UNREACHABLE = 69
EXIT_TOPICS_MISSING = 78
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class OperatorError(Exception):
    """An error an operator fixes (not a bug): printed as one line, with its own exit status."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class KafkaUnreachable(OperatorError):
    """The cluster in ``KAFKA_BOOTSTRAP_SERVERS`` does not answer."""

    exit_code = EXIT_KAFKA_UNREACHABLE

    def __init__(self, bootstrap: str, settings: Settings | None = None):
        protocol = settings.kafka.kafka_security_protocol if settings is not None else "PLAINTEXT"
        via = "" if protocol == "PLAINTEXT" else f", security protocol {protocol}"
        super().__init__(
            f"cannot reach Kafka at {bootstrap} (KAFKA_BOOTSTRAP_SERVERS{via}): connection refused or timed out; "
            "is the broker running and the address right?"
        )
        self.bootstrap = bootstrap


class TopicsMissing(OperatorError):
    """The cluster answers but lacks topics the command reads."""

    exit_code = EXIT_TOPICS_MISSING

    def __init__(self, missing: list[str]):
        super().__init__(f"topics not created: run `crisiswatch topics --create` (missing: {', '.join(missing)})")
        self.missing = missing


async def existing_topics(settings: Settings, bootstrap: str, timeout: float = 10.0) -> set[str]:
    """Names of the topics on the cluster; `KafkaUnreachable` when it does not answer within ``timeout``."""
    from aiokafka.errors import KafkaError

    from crisiswatch.kafka import new_admin

    admin = new_admin(bootstrap, settings=settings, request_timeout_ms=int(timeout * 1000))
    client_log = logging.getLogger("aiokafka")
    was_disabled, client_log.disabled = client_log.disabled, True  # its "Unable connect to ..." is our one line
    try:
        await asyncio.wait_for(admin.start(), timeout)
        return set(await asyncio.wait_for(admin.list_topics(), timeout))
    except (KafkaError, OSError, TimeoutError) as exc:
        raise KafkaUnreachable(bootstrap, settings) from exc
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
        client_log.disabled = was_disabled


async def check_cluster(settings: Settings, bootstrap: str, topics: Iterable[str] = ()) -> None:
    """Raise `KafkaUnreachable` or `TopicsMissing` unless the cluster answers and has ``topics`` (logical names).

    Also makes this process's Kafka clients never ask the broker to auto-create a topic
    (`crisiswatch.kafka.forbid_topic_auto_creation`), so a missing topic stays missing and is reported.
    """
    from crisiswatch.kafka import forbid_topic_auto_creation

    forbid_topic_auto_creation()
    existing = await existing_topics(settings, bootstrap)
    missing = [settings.topic(name) for name in topics if settings.topic(name) not in existing]
    if missing:
        raise TopicsMissing(missing)


def operator_error(exc: BaseException, settings: Settings | None = None) -> OperatorError | None:
    """The one-line error for ``exc`` (or its causes) when an operator can fix it; None for a bug."""
    from aiokafka.errors import KafkaConnectionError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OperatorError):
            return current
        if isinstance(current, KafkaConnectionError):
            settings = settings or _settings_or_none()
            bootstrap = (settings.kafka.bootstrap_servers if settings else None) or "the configured cluster"
            return KafkaUnreachable(bootstrap, settings)
        current = current.__cause__ or current.__context__
    return None


def quiet_shutdown() -> None:
    """Silence the "Unclosed AIOKafka…" noise of clients a failed command could not close (we exit anyway)."""
    logging.getLogger("asyncio").disabled = True
    logging.getLogger("aiokafka").disabled = True
    import warnings

    warnings.simplefilter("ignore", ResourceWarning)


def _settings_or_none() -> Settings | None:
    try:
        return Settings()
    except Exception:
        return None
