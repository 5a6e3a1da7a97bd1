"""Where connector checkpoints live: the compacted ``connectors.checkpoints`` topic (default), or files.

A checkpoint is a connector's `connectors.base.StateStore` document (ETags, cursors, last event ids,
replay positions, recently seen ids). ``state.save()`` snapshots the document and hands it to the
backend bound to the sink, which writes it **only after the broker acknowledged every mention handed
over before the save** (`connectors.sink.MentionSink.after_acked`): a crash re-reads, never skips.
Saves of one connector that pile up while the broker is slow are coalesced (the newest wins).

- `KafkaCheckpoints`: one record per connector in ``connectors.checkpoints`` (one partition,
  compacted), key ``connector:<kind>:<name>``, value ``{"state": {...}, "saved_at": ..., "host": ...}``.
  At start the topic is read to its end (`stream.state_store.read_states`), so a connector restarted on
  another machine resumes where it stopped. A connector that has no record yet but a JSON file in
  ``CRISISWATCH_CONNECTOR_STATE_DIR`` starts from that file (migration from file checkpoints).
- `FileCheckpoints`: the JSON files in ``CRISISWATCH_CONNECTOR_STATE_DIR`` (the explicit fallback for
  a single machine), written atomically, after the acknowledgement all the same.

`open_checkpoints` opens the backend of a sink and makes it the process's active one:
`StateStore.for_connector` binds new stores to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crisiswatch.connectors import metrics
from crisiswatch.contracts.topics import CONNECTOR_CHECKPOINTS
from crisiswatch.follow import read_states

if TYPE_CHECKING:
    from crisiswatch.connectors.base import StateStore
    from crisiswatch.connectors.sink import MentionSink

log = logging.getLogger(__name__)
STAGE = "connector"
"""Key prefix of checkpoint records (``connector:<kind>:<name>``)."""
MODES = ("kafka", "file", "memory")

_active: Checkpoints | None = None


def active() -> Checkpoints | None:
    """The checkpoint backend of the running sink (None: stores keep their legacy file/memory behaviour)."""
    return _active


class Checkpoints:
    """Base of the backends: loads documents, and writes snapshots once the sink acknowledged the past."""

    store = "memory"
    persistent = False

    def __init__(self, sink: MentionSink):
        self.sink = sink
        self.states: dict[str, dict[str, Any]] = {}
        self.saved = 0
        self._pending: dict[str, tuple[bytes, Path | None]] = {}
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._waiting = 0
        self._writer: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"checkpoints-{self.store}")

    def load(self, store: StateStore) -> dict[str, Any] | None:
        """The last saved document of ``store`` (None when there is none)."""
        return self.states.get(store.key or "")

    def save(self, store: StateStore) -> None:
        """Snapshot ``store.data`` now; write it once everything handed over before is acknowledged."""
        key = store.key or ""
        encoded = json.dumps(store.data, separators=(",", ":"), default=str).encode()
        self._waiting += 1
        self._idle.clear()

        def ready() -> None:
            self._waiting -= 1
            self._pending[key] = (encoded, store.path)
            self._ready.set()

        self.sink.after_acked(ready)

    async def wait_saved(self, timeout: float | None = None) -> bool:
        """Wait until every save so far is written (False on timeout)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout: float = 10.0) -> None:
        """Write what is pending (up to ``timeout`` s), then stop; unwritten saves are logged."""
        global _active
        if self._waiting == 0 or self.sink.acked >= self.sink.sent:
            await self.wait_saved(timeout)
        if self._pending or self._waiting:
            log.warning(
                "connector checkpoints: %d save(s) not written at close (the broker had not acknowledged the "
                "mentions before them); the connectors will re-read from their previous checkpoint",
                len(self._pending) + self._waiting,
            )
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if _active is self:
            _active = None

    async def _write_loop(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._pending:
                batch, self._pending = self._pending, {}
                try:
                    await self.write(batch)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    metrics.CHECKPOINT_ERRORS.inc()
                    log.warning("connector checkpoints: write failed (%s); retrying", exc)
                    for key, value in batch.items():
                        self._pending.setdefault(key, value)  # a newer save wins
                    await asyncio.sleep(1.0)
                    continue
                self.saved += len(batch)
                metrics.CHECKPOINTS.labels(self.store).inc(len(batch))
            if self._waiting == 0 and not self._pending:
                self._idle.set()

    async def write(self, batch: dict[str, tuple[bytes, Path | None]]) -> None:
        """Persist documents (nothing for the memory backend)."""


class KafkaCheckpoints(Checkpoints):
    """Checkpoints in the compacted ``connectors.checkpoints`` topic (see the module docstring)."""

    store = "kafka"
    persistent = True

    def __init__(self, sink: MentionSink):
        super().__init__(sink)
        self.topic = sink.settings.topic(CONNECTOR_CHECKPOINTS.name)
        self.host = socket.gethostname()

    async def open(self) -> None:
        from crisiswatch.kafka import ensure_topics

        started = time.monotonic()
        await ensure_topics(self.sink.bootstrap_servers, self.sink.settings)  # the topic must exist to be read
        loaded = await read_states(self.sink.bootstrap_servers, self.topic, STAGE, [0], settings=self.sink.settings)
        for name, value in loaded.get(0, {}).items():
            if isinstance(value, dict) and isinstance(value.get("state"), dict):
                self.states[name] = value["state"]
        log.info(
            "connector checkpoints: %d read from %s in %.2f s", len(self.states), self.topic, time.monotonic() - started
        )
        await super().open()

    def load(self, store: StateStore) -> dict[str, Any] | None:
        found = super().load(store)
        if found is None and store.path is not None and store.path.is_file():
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(store.path.read_text(encoding="utf-8"))
                if isinstance(data, dict):
                    log.info("connector checkpoints: %s starts from its file %s", store.key, store.path)
                    return data
        return found

    async def write(self, batch: dict[str, tuple[bytes, Path | None]]) -> None:
        producer = self.sink.producer
        saved_at = time.time()
        futures = []
        for key, (encoded, _path) in batch.items():
            value = b'{"state":%s,"saved_at":%.3f,"host":%s}' % (encoded, saved_at, json.dumps(self.host).encode())
            futures.append(await producer.send(self.topic, value=value, key=f"{STAGE}:{key}".encode(), partition=0))
        for result in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(result, BaseException):
                raise result
        for key, (encoded, _path) in batch.items():
            self.states[key] = json.loads(encoded)


class FileCheckpoints(Checkpoints):
    """Checkpoints as JSON files in the state folder (the single-machine fallback)."""

    store = "file"
    persistent = True

    async def write(self, batch: dict[str, tuple[bytes, Path | None]]) -> None:
        for _key, (encoded, path) in batch.items():
            if path is not None:
                write_atomic(path, encoded)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (a temporary file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


async def open_checkpoints(sink: MentionSink, mode: str = "kafka") -> Checkpoints:
    """Open the backend ``mode`` (``kafka``, ``file`` or ``memory``) for ``sink``; it becomes the active one."""
    global _active
    if mode not in MODES:
        raise ValueError(f"connector checkpoints must be one of {', '.join(MODES)}, not {mode!r}")
    backend: Checkpoints
    if mode == "kafka":
        backend = KafkaCheckpoints(sink)
    elif mode == "file":
        if sink.settings.connectors.connector_state_dir is None:
            raise ValueError("file checkpoints need CRISISWATCH_CONNECTOR_STATE_DIR")
        backend = FileCheckpoints(sink)
    else:
        backend = Checkpoints(sink)
    await backend.open()
    _active = backend
    return backend
