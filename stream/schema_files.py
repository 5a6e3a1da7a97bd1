"""Generate the versioned JSON Schema files in ``stream/schemas/`` from the record models.

Run ``python -m crisiswatch.stream.schema_files`` after changing a record model; `tests/test_records.py` fails when
a file is out of date. Each file name carries the schema version (``mention.v1.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from crisiswatch.stream import records

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


def registry() -> dict[str, type[BaseModel]]:
    """Schema file name -> the model it is generated from."""
    models: dict[str, type[BaseModel]] = {
        "mention.v1.json": records.Mention,
        "enriched_mention.v1.json": records.EnrichedMention,
        "dead_letter.v1.json": records.DeadLetter,
        "signal.v1.json": records.Signal,
        "alert.v1.json": records.Alert,
    }
    from crisiswatch.alerting import records as alerting_records
    from crisiswatch.control import held, messages

    models.update(messages.SCHEMA_FILES)
    models["held_report.v1.json"] = held.HeldReport
    models.update(alerting_records.SCHEMA_FILES)
    from crisiswatch.control import silences

    models.update(silences.SCHEMA_FILES)
    return models


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
