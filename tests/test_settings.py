"""Settings in sections: the flat environment names still work, and each part reads only its section."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from crisiswatch.settings import (
    FIELD_SECTION,
    SECTIONS,
    ControlSettings,
    KafkaSettings,
    Settings,
    WorkerSettings,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("CRISISWATCH_") or name == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(name)


def test_every_field_lives_in_exactly_one_section() -> None:
    names = [field for model in SECTIONS.values() for field in model.model_fields]
    assert len(names) == len(set(names)) == len(FIELD_SECTION)
    assert set(SECTIONS) == {"kafka", "worker", "risk", "control", "alerts", "web", "connectors"}
    assert set(Settings.model_fields) == set(SECTIONS)


def test_the_environment_names_stay_flat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRISISWATCH_WINDOW_SECONDS", "30")
    monkeypatch.setenv("CRISISWATCH_PAGE_PORT", "9000")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092")
    monkeypatch.setenv("CRISISWATCH_RELAY_URLS", "https://a.example, https://b.example")
    monkeypatch.setenv("CRISISWATCH_SOURCE_LATENESS", '{"rss": 600}')
    monkeypatch.setenv("CRISISWATCH_CONTROL_KEYS", "k1:ed25519:hush-hush-value")
    settings = Settings()
    assert settings.worker.window_seconds == 30
    assert settings.web.page_port == 9000
    assert settings.kafka.bootstrap_servers == "kafka-1:9092"
    assert settings.control.relay_urls == ["https://a.example", "https://b.example"]
    assert settings.worker.source_lateness == {"rss": 600}
    assert isinstance(settings.control.control_keys, SecretStr)
    assert "hush-hush-value" not in repr(settings)


def test_a_section_built_alone_reads_its_own_fields_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRISISWATCH_GATE_MAX_STALENESS_SECONDS", "12")
    monkeypatch.setenv("CRISISWATCH_TOPIC_PREFIX", "staging.")
    control, kafka = ControlSettings(), KafkaSettings()
    assert control.gate_max_staleness_seconds == 12
    assert kafka.topic("publishing.control") == "staging.publishing.control"
    assert not hasattr(control, "smtp_host")  # a gate's settings carry no mail, Slack or page users


def test_the_file_takes_flat_keys_or_sections_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "crisiswatch.yaml"
    config.write_text("window_seconds: 30\npartitions: 3\nweb:\n  page_port: 9999\n", encoding="utf-8")
    monkeypatch.setenv("CRISISWATCH_CONFIG", str(config))
    monkeypatch.setenv("CRISISWATCH_PARTITIONS", "7")
    settings = Settings()
    assert (settings.worker.window_seconds, settings.web.page_port, settings.kafka.partitions) == (30, 9999, 7)
    assert "window_seconds" in settings.worker.model_fields_set  # set by the file, not a default
    assert "brands_file" not in settings.worker.model_fields_set


def test_keywords_and_copies_route_flat_names_to_their_section() -> None:
    settings = Settings(window_seconds=5, partitions=2)
    assert (settings.worker.window_seconds, settings.kafka.partitions) == (5, 2)
    copy = settings.model_copy(update={"window_seconds": 9, "page_port": 1234})
    assert (copy.worker.window_seconds, copy.web.page_port) == (9, 1234)
    assert (settings.worker.window_seconds, settings.web.page_port) == (5, 8066)  # the original is untouched
    assert copy.kafka is settings.kafka  # sections that did not change are shared
    given = Settings(worker=WorkerSettings.model_validate({"window_seconds": 20}))
    assert given.worker.window_seconds == 20


def test_a_bad_value_names_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRISISWATCH_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9093")
    with pytest.raises(ValidationError, match="CRISISWATCH_KAFKA_SASL_USERNAME"):
        Settings()
    monkeypatch.delenv("CRISISWATCH_KAFKA_SECURITY_PROTOCOL")
    monkeypatch.setenv("CRISISWATCH_RISK_POLICY", '{"critical": 80}')
    with pytest.raises(ValidationError, match="unknown risk policy field"):
        Settings()


def test_the_risk_section_is_the_one_owner_of_the_global_policy() -> None:
    settings = Settings(pause_scope="brand", min_mentions_to_pause=7, risk_policy={"warning_at": 35})
    policy = settings.risk.policy()
    assert (policy.pause_scope, policy.min_mentions_to_pause, policy.warning_at) == ("brand", 7, 35)
    assert settings.risk.policy({"warning_at": 30}).warning_at == 30
    with pytest.raises(ValidationError):
        Settings(pause_scope="everything")
