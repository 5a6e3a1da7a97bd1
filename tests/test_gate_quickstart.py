"""The README's PublishingGate quick start is `examples/gate_quickstart.py`, verbatim, and it runs."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from crisiswatch.control import ControlPlane
from crisiswatch.control.testing import TEST_PUBLIC_KEYS, with_test_keys
from crisiswatch.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "gate_quickstart.py"


def test_the_readme_shows_the_example_file_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Adopting the PublishingGate in a publishing service") :]
    block = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert block is not None
    assert block.group(1) == EXAMPLE.read_text()
    assert "examples/gate_quickstart.py" in section[: block.start()]


async def test_the_example_defers_a_paused_brand_and_publishes_it_after_the_resume(settings: Settings) -> None:
    settings = with_test_keys(settings, backlog_release_per_second=50.0)
    plane = ControlPlane.from_settings(settings)  # a writer: creates the topics and heartbeats, as a worker does
    await plane.start()
    try:
        await plane.pause("brand:globex", reason="data breach", actor="alice", on_resume="hold")
        await plane.heartbeat()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CRISISWATCH_", "KAFKA_"))}
        env.update({
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers or "",
            "CRISISWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix,
            "CRISISWATCH_CONTROL_PUBLIC_KEYS": TEST_PUBLIC_KEYS,  # a publishing service holds public keys only
            "CRISISWATCH_BACKLOG_RELEASE_PER_SECOND": "50",
        })  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(EXAMPLE), "--until-released", env=env, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        lines: list[str] = []
        try:
            while not any(line.startswith("deferred post-2") for line in lines):
                line = await asyncio.wait_for(proc.stdout.readline(), 60)
                assert line, (lines, await proc.stderr.read() if proc.stderr else b"")
                lines.append(line.decode().strip())
            await plane.resume("brand:globex", reason="statement out", actor="alice")
            rest, errors = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        lines += rest.decode().splitlines()
    finally:
        await plane.stop()
    assert proc.returncode == 0, errors.decode()
    assert lines[0] == "published post-1 (acme): Our spring collection is here"
    assert lines[1].startswith("deferred post-2: ") and "brand:globex" in lines[1] and "data breach" in lines[1]
    assert lines[2:] == ["published post-2 (globex): Globex keeps your data safe"]
