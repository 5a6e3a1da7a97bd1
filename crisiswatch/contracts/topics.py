"""The topic registry: names, keys, schemas, compaction and retention of every crisiswatch topic.

Every topic name in the code comes from here (``settings.topic(SPEC.name)`` adds the deployment's
prefix). Topics are created explicitly (`crisiswatch.kafka.ensure_topics`, partition counts from
settings); nothing relies on broker auto-creation.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TopicSpec:
    """What a topic carries and how it is keyed."""

    name: str
    schema: str
    """File name under ``crisiswatch/contracts/schemas/``; empty for an internal topic with no public contract."""
    key: str
    description: str
    compacted: bool = False
    single_partition: bool = False
    configs: dict[str, str] = field(default_factory=dict)


MENTIONS_RAW = TopicSpec("mentions.raw", "mention.v1.json", "mention id", "Mentions as connectors fetched them.")
MENTIONS_ENRICHED = TopicSpec(
    "mentions.enriched",
    "enriched_mention.v1.json",
    "brand id (mention id when no brand matched)",
    "De-duplicated mentions with language, sentiment, brands, topics and crisis terms.",
)
MENTIONS_DLQ = TopicSpec(
    "mentions.dlq", "dead_letter.v1.json", "original key", "Records that failed, with reason and bytes."
)
SIGNALS = TopicSpec("signals", "signal.v1.json", "brand id", "Closed per-brand event-time windows with spike scores.")
ALERTS = TopicSpec("alerts", "alert.v1.json", "brand id", "Crisis alerts; one alert_id per episode.")
ALERTS_ACK = TopicSpec(
    "alerts.ack",
    "alert_ack.v1.json",
    "alert id",
    "Acknowledgements of alert episodes by people: who, when, note. Append-only.",
    single_partition=True,
)
PUBLISHING_CONTROL = TopicSpec(
    "publishing.control",
    "control.v1.json",
    "scope ('global', 'brand:<id>', 'channel:<name>', 'account:<id>')",
    "Signed pause/resume state per scope; the latest message per key is the state.",
    compacted=True,
    single_partition=True,
)
PUBLISHING_AUDIT = TopicSpec(
    "publishing.audit",
    "audit.v1.json",
    "scope",
    "Append-only log of every control change: who, what, why, when. Never compacted.",
    single_partition=True,
    configs={"retention.ms": "-1"},
)
PUBLISHING_SCHEDULES = TopicSpec(
    "publishing.schedules",
    "schedule.v1.json",
    "schedule id",
    "Signed planned pause windows (absolute or recurring); the latest record per id is the schedule.",
    compacted=True,
    single_partition=True,
)
PUBLISHING_HELD = TopicSpec(
    "publishing.held",
    "held_report.v1.json",
    "reporting gate ('host/pid/name')",
    "Advisory counts of the posts each publishing gate holds back, per scope; the latest per gate counts.",
    compacted=True,
    single_partition=True,
)
PUBLISHING_SILENCES = TopicSpec(
    "publishing.silences",
    "silence.v1.json",
    "silence id",
    "Signed silences for planned events (brand, window, reason, who): alerts marked silenced, never a pause.",
    compacted=True,
    single_partition=True,
)
STATE = TopicSpec(
    "crisiswatch.state",
    "",  # internal: each stage's own JSON state documents, read back only by that stage
    "'<stage>:<brand>'",
    "Internal: detector and window state per brand, changelogged so that it survives restarts.",
    compacted=True,
)
CONNECTOR_CHECKPOINTS = TopicSpec(
    "connectors.checkpoints",
    "",  # internal: each connector's own JSON checkpoint, read back only by that connector
    "'connector:<kind>:<name>'",
    "Internal: connector checkpoints (cursors, ETags, replay positions), written after the mentions before "
    "them were acknowledged; a connector restarted anywhere resumes from it.",
    compacted=True,
    single_partition=True,
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    MENTIONS_RAW,
    MENTIONS_ENRICHED,
    MENTIONS_DLQ,
    SIGNALS,
    ALERTS,
    ALERTS_ACK,
    PUBLISHING_CONTROL,
    PUBLISHING_AUDIT,
    PUBLISHING_SCHEDULES,
    PUBLISHING_SILENCES,
    PUBLISHING_HELD,
    STATE,
    CONNECTOR_CHECKPOINTS,
)
