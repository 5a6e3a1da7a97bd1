"""The demo crisis on a test's topics, as the worker would have written it, for the page's tests.

The demo mentions go through the worker's own enrichment, windowing and decision code in process
(`crisiswatch.backtest`: the same decisions as the worker on the broker, see tests/test_backtest.py),
then the signals and alerts are produced to the test's ``signals`` and ``alerts`` topics, and the
critical alert's pause of ``brand:globex`` goes through the control plane like the risk stage's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

from aiokafka import AIOKafkaProducer

from crisiswatch import demo
from crisiswatch.backtest.engine import Backtest, read_enriched
from crisiswatch.backtest.enriched import enrich_file
from crisiswatch.contracts.records import Alert, Signal
from crisiswatch.control.plane import ControlPlane
from crisiswatch.detectors.risk import RiskPolicy
from crisiswatch.settings import Settings
from crisiswatch.stream.decisions import Decided, RiskBook


class RecordingBook(RiskBook):
    """The risk book, keeping every signal it was asked about (what the window stage wrote)."""

    def __init__(self, policy: RiskPolicy):
        super().__init__(policy)
        self.signals: list[Signal] = []

    def decide(self, signal: Signal, created_at: datetime | None = None) -> Decided | None:
        self.signals.append(signal)
        return super().decide(signal, created_at)


class RecordingBacktest(Backtest):
    """The backtest with a `RecordingBook` (also after it starts over on out-of-order input)."""

    def _reset(self) -> None:
        super()._reset()
        self.book = RecordingBook(self.policy)


@cache
def demo_records(workdir: str) -> tuple[list[Signal], list[Alert]]:
    """The demo's signals and alerts (computed once per test session)."""
    folder = Path(workdir)
    folder.mkdir(parents=True, exist_ok=True)
    data, brands = demo.write_demo(folder)
    settings = Settings(brands_file=brands)
    enriched = enrich_file(data, settings, folder / "cache")
    backtest = RecordingBacktest(settings, settings.risk.policy(), timelines=False)
    result = backtest.run(lambda: read_enriched(enriched.path))
    assert isinstance(backtest.book, RecordingBook)
    return backtest.book.signals, result.alerts


async def publish_demo(
    settings: Settings,
    workdir: Path,
    plane: ControlPlane | None = None,
    *,
    after: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, float]:
    """Produce the demo's signals and alerts of event time ``(after, until]`` (default: all of it); pause
    ``brand:globex`` with ``plane`` when the critical alert asking for it is among them, as the risk stage does.

    Returns the end (epoch seconds) of each brand's last window produced.
    """
    signals, alerts = demo_records(str(workdir))

    def inside(t: datetime) -> bool:
        return (after is None or t > after) and (until is None or t <= until)

    signals = [s for s in signals if inside(s.window_end)]
    alerts = [a for a in alerts if inside(a.event_time)]
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers, enable_idempotence=False, linger_ms=20
    )
    await producer.start()
    try:
        for signal in signals:
            await producer.send(settings.topic("signals"), signal.model_dump_json().encode(), key=signal.brand.encode())
        for alert in alerts:
            await producer.send(settings.topic("alerts"), alert.model_dump_json().encode(), key=alert.brand.encode())
        await producer.flush()
    finally:
        await producer.stop()
    asked = next((a for a in alerts if a.pause), None)
    if plane is not None and asked is not None:
        await plane.pause(
            f"brand:{asked.brand}", reason=asked.summary, actor="crisiswatch-risk", alert_id=asked.alert_id,
            on_resume="hold",
        )  # fmt: skip
    last: dict[str, float] = {}
    for signal in signals:
        last[signal.brand] = max(last.get(signal.brand, 0.0), signal.window_end.timestamp())
    return last


MID_CRISIS = demo.CRISIS[1] + timedelta(minutes=22)
"""Event time in the middle of the demo crisis: the alert is critical and firing, publishing paused."""


def crisis_window() -> tuple[float, float]:
    """Start and end (epoch seconds) of the demo crisis."""
    _, start, length = demo.CRISIS
    return start.timestamp(), (start + length).timestamp()
