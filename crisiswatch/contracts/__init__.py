"""The contracts every part of crisiswatch speaks: what goes on the topics, and the words for it.

- `crisiswatch.contracts.vocabulary`: the basic types (`Severity`, `SEVERITY_RANK`, `Sentiment`,
  `UtcDatetime`, `Count`) and the one `utcnow`. It sits at the very bottom: the pure detectors use it too.
- `crisiswatch.contracts.records`: the records on the mention, signal, alert, acknowledgement and
  dead-letter topics (pydantic models), with `DeadLetterReason`.
- `crisiswatch.contracts.control`: the signed records of the publishing control plane (pause/resume state,
  heartbeat, audit, schedules, silences) and the held-post reports; signing and verification keys live in
  `crisiswatch.control`.
- `crisiswatch.contracts.topics`: the topic registry (names, keys, schemas, compaction).
- `crisiswatch.contracts.schema_files`: the generator of the JSON Schema files in ``schemas/``.

Only `vocabulary` sits below `crisiswatch.detectors`; the rest sits right above it (a signal *is* the
detectors' closed window, an alert carries their typed evidence) and below everything else. This package
imports nothing that does I/O; `tests/test_layers.py` keeps it that way.
"""
