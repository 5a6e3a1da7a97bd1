"""Generate the versioned JSON Schema files in ``crisiswatch/contracts/schemas/`` from the record models.

Run ``python -m crisiswatch.contracts.schema_files`` after changing a record model; `tests/test_records.py` fails when
a file is out of date. Each file name carries the schema version (``mention.v1.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from crisiswatch.contracts import control, records

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


def registry() -> dict[str, type[BaseModel]]:
    """Schema file name -> the model it is generated from."""
    return {
        "mention.v1.json": records.Mention,
        "enriched_mention.v1.json": records.EnrichedMention,
        "dead_letter.v1.json": records.DeadLetter,
        "signal.v1.json": records.Signal,
        "alert.v1.json": records.Alert,
        "alert_ack.v1.json": records.AlertAck,
        "control.v1.json": control.ControlMessage,
        "control_heartbeat.v1.json": control.Heartbeat,
        "audit.v1.json": control.AuditRecord,
        "schedule.v1.json": control.Schedule,
        "silence.v1.json": control.Silence,
        "held_report.v1.json": control.HeldReport,
    }


def render(name: str, model: type[BaseModel]) -> str:
    schema = model.model_json_schema(mode="serialization")
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://crisiswatch.dev/schemas/{name}",
        **schema,
    }
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all() -> list[Path]:
    SCHEMA_DIR.mkdir(exist_ok=True)
    written = []
    for name, model in registry().items():
        path = SCHEMA_DIR / name
        path.write_text(render(name, model), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_all():
        print(path)
