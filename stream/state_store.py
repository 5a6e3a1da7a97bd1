"""Detector and window state changelogged to the compacted ``crisiswatch.state`` topic.

Faust's windowed tables are reported to stop expiring after rebalances and to lose windows across
restarts, and they cannot be updated from a batch. So the stages keep their per-brand state as plain
JSON documents and write them to one compacted topic, keyed ``<stage>:<name>``, in the same partition
as the input partition the state belongs to. On assignment a stage reads its partitions of that topic
back from the beginning (the latest value per key wins) before it consumes anything.

Both stateful stages (window and risk) write through one `Checkpoint`, in one order (in the spirit of
quix-streams' ``Checkpoint.commit``):

1. **outputs**: what the processed input produced (signals and corrections, alerts and pauses, dead
   letters) is handed to the producer first;
2. **state**: then each changed key's state, which records the input position it reflects (the window
   stage: each brand's ``applied_offset``; the risk stage: each brand's last assessed window and
   correction revisions), so a record processed again after a crash is recognised and skipped;
3. **offsets**: last, the input position: the window stage writes it as a state record
   (``window:offset:<partition>``, with the partition's watermark) and commits it to its group only
   once the broker acknowledged 1 and 2; the risk stage's faust agent acknowledges the signal, and faust
   commits it, only after its state write was acknowledged.

A crash between two steps loses nothing: the input is read again from the last committed offset, the
outputs it produced again are the same (or recognised as already applied by 2), and nothing is counted
twice. On restore, a stage reads only the partitions assigned to it, and the configuration wins over
what a state says (`stream.windowing.BrandWindows.from_state`, `stream.decisions.RiskBook.restore`).
"""

from __future__ import annotations

import json
from typing import Any

OFFSET_KEY = "offset"
"""Name prefix of a partition's position record: ``<stage>:offset:<partition>``."""


def state_key(stage: str, name: str) -> bytes:
    return f"{stage}:{name}".encode()


def encode_state(state: dict[str, Any]) -> bytes:
    return json.dumps(state, separators=(",", ":")).encode()


class Checkpoint:
    """One checkpoint of a stateful stage: changed states, then input positions, in that order.

    The stage hands the `records` (key, value, state-topic partition) to its producer after its outputs,
    and commits the input offsets (`offsets`) only once the broker acknowledged all of them.
    """

    def __init__(self, stage: str):
        self.stage = stage
        self.states: list[tuple[bytes, bytes, int]] = []
        self.positions: list[tuple[bytes, bytes, int]] = []
        self.offsets: dict[int, int] = {}

    def state(self, name: str, state: dict[str, Any], partition: int) -> None:
        """Step 2: the state of one key (which must say which input it reflects)."""
        self.states.append((state_key(self.stage, name), encode_state(state), partition))

    def position(self, partition: int, offset: int, **extra: Any) -> None:
        """Step 3: the input partition's last applied offset (and what else resumes with it)."""
        value = encode_state({"offset": offset, **extra})
        self.positions.append((state_key(self.stage, f"{OFFSET_KEY}:{partition}"), value, partition))
        self.offsets[partition] = offset

    @property
    def records(self) -> list[tuple[bytes, bytes, int]]:
        """What to write to the state topic, in protocol order (states, then positions)."""
        return self.states + self.positions


def split_restored(found: dict[str, dict[str, Any]], partition: int) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """One partition's restored states as (its position record or None, the states of its keys)."""
    position = found.get(f"{OFFSET_KEY}:{partition}")
    states = {name: state for name, state in found.items() if not name.startswith(f"{OFFSET_KEY}:")}
    return position, states
