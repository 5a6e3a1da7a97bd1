"""`crisiswatch tail TOPIC`: look at the records of a topic, by its logical name.

``TOPIC`` is a name from the topic registry (`crisiswatch.contracts.topics.ALL_TOPICS`: ``alerts``,
``publishing.control``, ...); the configured ``CRISISWATCH_TOPIC_PREFIX`` is applied (the full name is
accepted too). By default the last 10 records are printed, oldest first; ``--last N`` prints N,
``--from-beginning`` every record, and ``--follow`` then keeps printing new ones until Ctrl-C.

Nothing is ever shortened: ids, keys and values are printed whole. Records of the signed topics
(``publishing.control``, ``publishing.schedules``, ``publishing.audit``) are verified with the public
keys (``CRISISWATCH_CONTROL_PUBLIC_KEYS``, or the public halves of ``CRISISWATCH_CONTROL_KEYS``) exactly as
a gate verifies them, and marked ``verified (kid)`` or ``UNVERIFIABLE: <why>``.

Human form, one line per record::

    2026-03-02T11:03:00.120Z  p0@17  key=brand:globex  verified (k1)  {"scope": "brand:globex", ...}

``--json``: one object per line, ``{"topic", "partition", "offset", "timestamp", "key", "value",
"verified"?, "unverifiable"?}`` (``value`` parsed as JSON when it is JSON, else a string).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from aiokafka import ConsumerRecord

from crisiswatch.contracts.control import HEARTBEAT_KEY, AuditRecord, ControlMessage, Heartbeat, Schedule
from crisiswatch.contracts.topics import ALL_TOPICS, PUBLISHING_AUDIT, PUBLISHING_CONTROL, PUBLISHING_SCHEDULES
from crisiswatch.control.messages import ControlRejected, Keyring
from crisiswatch.follow import TopicFollower
from crisiswatch.settings import Settings

DEFAULT_LAST = 10
SIGNED_TOPICS = {PUBLISHING_CONTROL.name, PUBLISHING_AUDIT.name, PUBLISHING_SCHEDULES.name}


class UnknownTopic(ValueError):
    """A name that is not in the topic registry."""


def resolve_topic(name: str, settings: Settings) -> tuple[str, str]:
    """(logical name, full topic name) of ``name``: a registry name, or a registry name with the prefix."""
    logical = {spec.name for spec in ALL_TOPICS}
    if name in logical:
        return name, settings.topic(name)
    if (
        settings.kafka.topic_prefix
        and name.startswith(settings.kafka.topic_prefix)
        and name[len(settings.kafka.topic_prefix) :] in logical
    ):
        return name[len(settings.kafka.topic_prefix) :], name
    raise UnknownTopic(f"unknown topic {name!r}: use one of {', '.join(spec.name for spec in ALL_TOPICS)}")


@dataclass(frozen=True)
class Verdict:
    """What the signature check of a record of a signed topic says."""

    verified: bool
    detail: str
    """The key id that verified it, or why it could not be verified."""


class Verifier:
    """Checks the records of the signed topics with public keys only, as a gate would."""

    def __init__(self, settings: Settings):
        try:
            keyring = Keyring.from_settings(settings.control)
        except ValueError as exc:
            self.keyring: Keyring | None = None
            self.problem = f"the configured keys are invalid ({exc})"
            return
        self.keyring = keyring.verifying_only(hmac_allowed=settings.control.control_hmac_migration)
        self.problem = (
            ""
            if self.keyring
            else "no public key configured (CRISISWATCH_CONTROL_PUBLIC_KEYS or CRISISWATCH_CONTROL_KEYS)"
        )

    def check(self, logical: str, key: bytes | None, value: bytes | None) -> Verdict | None:
        """The verdict for a record of ``logical`` (None for a topic that is not signed)."""
        if logical not in SIGNED_TOPICS:
            return None
        if value is None:
            return Verdict(False, "tombstone (an unsigned deletion)")
        if self.keyring is None or not self.keyring:
            return Verdict(False, self.problem)
        model: type[Any]
        if logical == PUBLISHING_CONTROL.name:
            model = Heartbeat if key == HEARTBEAT_KEY.encode() else ControlMessage
        elif logical == PUBLISHING_SCHEDULES.name:
            model = Schedule
        else:
            model = AuditRecord
        try:
            record = self.keyring.verify_record(value, model)
        except ControlRejected as exc:
            return Verdict(False, str(exc))
        return Verdict(True, str(record.kid))


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="replace")


def _value(raw: bytes | None) -> Any:
    if raw is None:
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _timestamp(record: ConsumerRecord) -> str:
    when = datetime.fromtimestamp(record.timestamp / 1000, tz=UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def format_record(record: ConsumerRecord, verdict: Verdict | None, *, as_json: bool, show_key: bool) -> str:
    """One line for ``record``: JSON, or the human form of the module docstring."""
    if as_json:
        out: dict[str, Any] = {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp": _timestamp(record),
            "key": _text(record.key),
            "value": _value(record.value),
        }
        if verdict is not None:
            out["verified" if verdict.verified else "unverifiable"] = verdict.detail
        return json.dumps(out, ensure_ascii=False)
    parts = [_timestamp(record), f"p{record.partition}@{record.offset}"]
    if show_key:
        parts.append(f"key={_text(record.key)}")
    if verdict is not None:
        parts.append(f"verified ({verdict.detail})" if verdict.verified else f"UNVERIFIABLE: {verdict.detail}")
    value = _value(record.value)
    if value is None:
        parts.append("(tombstone)")
    else:
        parts.append(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
    return "  ".join(parts)


async def tail(
    settings: Settings,
    bootstrap: str,
    topic: str,
    *,
    last: int | None = DEFAULT_LAST,
    follow: bool = False,
    as_json: bool = False,
    show_key: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stop: asyncio.Event | None = None,
    on_caught_up: Callable[[], None] | None = None,
) -> int:
    """Print the records of ``topic`` (``last`` None: all of them); with ``follow``, until ``stop`` is set.

    An empty topic says ``(no records)`` on ``err`` (stderr), so that silence is never ambiguous.
    Returns the number of records printed. The topic must exist (`crisiswatch.preflight.check_cluster`).
    """
    logical, name = resolve_topic(topic, settings)
    out = out or sys.stdout  # at call time: the CLI's stdout may be redirected
    verifier = Verifier(settings)
    printed = 0

    def emit(record: ConsumerRecord) -> None:
        nonlocal printed
        verdict = verifier.check(logical, record.key, record.value)
        print(format_record(record, verdict, as_json=as_json, show_key=show_key), file=out, flush=True)
        printed += 1

    history: list[ConsumerRecord] = []
    newer: asyncio.Queue[ConsumerRecord] = asyncio.Queue()  # past the end seen at start: printed when following

    def collect(record: ConsumerRecord, live: bool) -> None:
        if live:
            newer.put_nowait(record)
        else:
            history.append(record)

    follower = TopicFollower(
        bootstrap,
        name,
        collect,
        name="tail",
        settings=settings,
        component="tail",
        tail=None if last is None else (lambda _tp: last),
        max_records=10_000,
    )
    await follower.start()
    try:
        await follower.caught_up_event.wait()
        history.sort(key=lambda r: (r.timestamp, r.partition, r.offset))
        for record in history if last is None else history[-last:] if last else []:
            emit(record)
        if not history and last != 0:  # --last 0 asked for none: nothing to say
            print("(no records yet; following)" if follow else "(no records)", file=err or sys.stderr, flush=True)
        if on_caught_up is not None:
            on_caught_up()
        if follow:
            stop = stop or asyncio.Event()
            stopped = asyncio.ensure_future(stop.wait())
            try:
                while not stop.is_set():
                    got = asyncio.ensure_future(newer.get())
                    await asyncio.wait({got, stopped}, return_when=asyncio.FIRST_COMPLETED)
                    if got.done():
                        emit(got.result())
                    else:
                        got.cancel()
            finally:
                stopped.cancel()
    finally:
        await follower.stop()
    return printed


def tail_command(topic: str, *, last: int | None, follow: bool, as_json: bool, show_key: bool) -> int:
    """The body of `crisiswatch tail` (the CLI has checked the cluster and the topic)."""
    settings = Settings()
    bootstrap = settings.kafka.bootstrap_servers or ""

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM) if follow else ():
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread: Ctrl-C as usual
                loop.add_signal_handler(signum, stop.set)
        return await tail(
            settings, bootstrap, topic, last=last, follow=follow, as_json=as_json, show_key=show_key, stop=stop
        )

    return asyncio.run(main())
