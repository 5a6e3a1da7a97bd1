"""A connector process for the delivery tests (run as ``python tests/delivery_child.py …``).

``checkpoint KIND NAME`` prints the checkpoint of connector KIND/NAME as this new process reads it from
``connectors.checkpoints``; ``replay FILE NAME SPEED`` replays FILE with the checkpoint of replay/NAME,
printing ``sent N`` when done. Bootstrap servers and topic prefix come from the environment.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crisiswatch.connectors.base import StateStore
from crisiswatch.connectors.replay import replay
from crisiswatch.connectors.sink import MentionSink
from crisiswatch.settings import Settings


async def main(argv: list[str]) -> None:
    settings = Settings()
    assert settings.kafka.bootstrap_servers
    async with MentionSink(settings, settings.kafka.bootstrap_servers, checkpoints="kafka") as sink:
        if argv[0] == "checkpoint":
            print(json.dumps(StateStore.for_connector(None, argv[1], argv[2]).data), flush=True)
            return
        state = StateStore.for_connector(None, "replay", argv[2])
        sent = await replay(Path(argv[1]), sink, float(argv[3]), checkpoint=state, save_every=100)
        print(f"sent {sent}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
