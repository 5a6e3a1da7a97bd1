"""Per-brand policy (presets, brand fields, reload) and silences: in process, and through the risk stage on a broker."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crisiswatch import demo
from crisiswatch.backtest.engine import Backtest, read_enriched
from crisiswatch.backtest.enriched import enrich_file
from crisiswatch.brands_file import BrandsWatch
from crisiswatch.contracts.control import ControlMessage, Silence
from crisiswatch.contracts.records import Alert, Signal
from crisiswatch.contracts.topics import ALERTS
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control.messages import Keyring
from crisiswatch.control.silences import SilenceStore, new_silence, parse_duration, parse_when
from crisiswatch.control.testing import read_records, with_test_keys
from crisiswatch.detectors.brands import BrandsFileError, parse_brands
from crisiswatch.detectors.risk import SENSITIVITY_PRESETS, BrandPolicy, RiskPolicy, apply_sensitivity
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings
from crisiswatch.stream.decisions import RiskBook, mention_facts
from crisiswatch.stream.risk_stage import RiskStage
from crisiswatch.stream.windowing import BrandWindows

CRISIS_START = demo.CRISIS[1]
CUT = CRISIS_START + timedelta(minutes=4)
"""The demo's Globex crisis cut short: a flare-up of four minutes (the stream ends there)."""


def brands_yaml(policies: dict[str, str]) -> str:
    """A brands file with one entry per brand id and its policy written inline."""
    lines = ["brands:"]
    for brand, policy in policies.items():
        lines += [f"  - id: {brand}", f"    terms: [{brand}]"]
        if policy:
            lines.append(f"    policy: {policy}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def flare(tmp_path_factory: pytest.TempPathFactory) -> list[Signal]:
    """The ``signals`` records of Globex in the demo: a day of history, then the crisis's first four minutes."""
    folder = tmp_path_factory.mktemp("flare")
    data, brands = demo.write_demo(folder)
    settings = Settings(brands_file=brands)
    enriched = enrich_file(data, settings, folder / "cache")
    mentions = sorted(
        (m for m in read_enriched(enriched.path) if m.brand == "globex" and m.created_at < CUT),
        key=lambda m: m.created_at,
    )
    windows = BrandWindows("globex", settings.worker.window_seconds, settings.worker.allowed_lateness_seconds)
    signals: list[Signal] = []
    for mention in mentions:
        t = mention.created_at.timestamp()
        signals += windows.close_until(t)
        windows.add(t, mention_facts(mention))
    signals += windows.close_until(CUT.timestamp() + settings.worker.allowed_lateness_seconds)
    return signals


def as_brand(signals: list[Signal], brand: str) -> list[Signal]:
    return [s.model_copy(update={"brand": brand}) for s in signals]


def decide_all(book: RiskBook, signals: list[Signal]) -> list[Alert]:
    alerts = []
    for signal in signals:
        decided = book.decide(signal, created_at=signal.window_end)
        if decided is not None and decided.alert is not None:
            alerts.append(decided.alert)
    return alerts


# --- presets and brand fields ---------------------------------------------------------------------------------


def test_presets_scale_the_global_policy_and_brand_fields_win() -> None:
    base = RiskPolicy(critical_at=70, min_mentions_to_pause=20)
    quiet = apply_sensitivity(base, "quiet")
    sensitive = apply_sensitivity(base, "sensitive")
    assert apply_sensitivity(base, "balanced") == base
    assert quiet.critical_at == 84 and quiet.min_mentions_to_pause == 40 and quiet.crisis.score == 6.0
    assert sensitive.critical_at == 59.5 and sensitive.min_mentions_to_pause == 10 and sensitive.crisis.lift == 0.045
    for name in SENSITIVITY_PRESETS["quiet"]:  # every documented multiplier moves its field
        owner, key = (quiet.crisis, name[7:]) if name.startswith("crisis.") else (quiet, name)
        before = getattr(base.crisis if name.startswith("crisis.") else base, key)
        assert getattr(owner, key) > before, name
    # brand entry > preset > global
    brand = BrandPolicy.parse({"sensitivity": "quiet", "critical_at": 90, "crisis": {"score": 5}}, "acme")
    policy = brand.apply(base)
    assert (policy.critical_at, policy.crisis.score, policy.min_mentions_to_pause) == (90, 5, 40)
    # clamped: the critical threshold of a strict global policy stays at most 100, the warning below it
    strict = apply_sensitivity(RiskPolicy(warning_at=80, critical_at=90), "quiet")
    assert strict.critical_at == 100 and strict.warning_at == 99


def test_pause_scope_none_never_pauses_and_says_so() -> None:
    policy = BrandPolicy.parse({"pause_scope": "none"}, "acme").apply(RiskPolicy())
    assert not policy.pauses_at("critical")
    assert BrandPolicy.parse({"pause_scope": "global"}).apply(RiskPolicy()).scope_for("acme") == "global"


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("{sensitivity: loud}", "sensitivity must be one of sensitive, balanced, quiet"),
        ("{critical_at: 101}", "critical_at"),
        ("{warning_at: 80, critical_at: 60}", "warning_at"),
        ("{min_mentions_to_pause: -3}", "min_mentions_to_pause must be a number >= 0"),
        ("{min_mentions_to_pause: 2.5}", "min_mentions_to_pause must be a whole number"),
        ("{pause_scope: everything}", "pause_scope must be one of"),
        ("{pause_severity: sometimes}", "pause_severity must be one of"),
        ("{weights: {reach: 1}}", "unknown field(s) weights"),
        ("{crisis: {scales: [1]}}", "unknown crisis field(s) scales"),
        ("{crisis: {persist: 5, persist_of: 3}}", "persist"),
        ("[quiet]", "policy must be a mapping"),
    ],
)
def test_an_invalid_brand_policy_is_refused_with_the_brand_and_field(policy: str, message: str) -> None:
    import yaml

    data = yaml.safe_load(brands_yaml({"acme": policy}))
    with pytest.raises(BrandsFileError) as caught:
        parse_brands(data)
    assert "brand 'acme'" in str(caught.value) and message in str(caught.value), caught.value


def test_quiet_does_not_pause_where_sensitive_does_on_the_same_stream(flare: list[Signal]) -> None:
    base = RiskPolicy()
    book = RiskBook(
        base,
        {"calm": BrandPolicy.parse({"sensitivity": "quiet"}), "edgy": BrandPolicy.parse({"sensitivity": "sensitive"})},
    )
    calm = decide_all(book, as_brand(flare, "calm"))
    edgy = decide_all(book, as_brand(flare, "edgy"))
    assert any(a.pause for a in edgy), [(a.severity, a.risk) for a in edgy]
    assert not any(a.pause for a in calm), [(a.severity, a.risk) for a in calm]
    assert book.policy_for("calm").crisis.score == 6.0 and book.policy_for("other") is base


def test_set_policies_changes_a_running_brand_and_reports_it(flare: list[Signal]) -> None:
    history, tail = flare[:-10], flare[-10:]
    book = RiskBook(RiskPolicy(), {"edgy": BrandPolicy.parse({"sensitivity": "quiet"})})
    decide_all(book, as_brand(history, "edgy"))
    changes = book.set_policies(RiskPolicy(), {"edgy": BrandPolicy.parse({"sensitivity": "sensitive"})})
    assert changes == ["edgy: {'sensitivity': 'quiet'} -> {'sensitivity': 'sensitive'}"]
    assert book.monitors["edgy"].assessor.policy.critical_at == 59.5
    assert any(a.pause for a in decide_all(book, as_brand(tail, "edgy")))
    assert book.set_policies(RiskPolicy(), {}) == ["edgy: {'sensitivity': 'sensitive'} -> global policy"]


def test_brands_watch_reloads_a_changed_file_and_keeps_the_previous_policy_when_invalid(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "brands.yaml"
    path.write_text(brands_yaml({"acme": "{sensitivity: quiet}"}))
    watch = BrandsWatch(path)
    assert watch.policies["acme"].sensitivity == "quiet"
    assert watch.poll() is None  # unchanged
    path.write_text(brands_yaml({"acme": "{sensitivity: sensitive, pause_scope: global}"}))
    changed = watch.poll()
    assert changed is not None and changed["acme"].to_dict() == {"pause_scope": "global", "sensitivity": "sensitive"}
    with caplog.at_level(logging.ERROR, logger="crisiswatch.brands_file"):
        path.write_text(brands_yaml({"acme": "{sensitivity: extreme}"}))
        assert watch.poll() is None
    assert watch.policies["acme"].sensitivity == "sensitive"
    assert [r.getMessage() for r in caplog.records if "keeping the previous policies" in r.getMessage()], caplog.text


# --- silences --------------------------------------------------------------------------------------------------


def test_silence_times_need_units_and_the_past_is_refused() -> None:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_duration("1h30m") == 5400 and parse_duration("2d") == 172800
    assert parse_when("2h", base=now) == now + timedelta(hours=2)
    assert parse_when("2026-05-01T15:00:00+02:00", base=now) == datetime(2026, 5, 1, 13, 0, tzinfo=UTC)
    for bad in ("10", "+10", "2026-05-01T15:00:00", "soon"):
        with pytest.raises(ValueError) as caught:
            parse_when(bad, base=now)
        assert "units" in str(caught.value) or "zone" in str(caught.value) or "not a time" in str(caught.value)
    with pytest.raises(ValueError, match="in the past"):
        new_silence("acme", start=now - timedelta(hours=3), end=now - timedelta(hours=1), reason="x",
                    created_by="alice", now=now)  # fmt: skip
    with pytest.raises(ValueError, match="start < end"):
        new_silence("acme", start=now + timedelta(hours=2), end=now + timedelta(hours=1), reason="x",
                    created_by="alice", now=now)  # fmt: skip


def test_a_silence_marks_the_alerts_and_blocks_the_pause_then_a_crisis_that_outlasts_it_pauses(
    flare: list[Signal],
) -> None:
    sensitive = {"launch": BrandPolicy.parse({"sensitivity": "sensitive"})}
    silence = Silence(
        id="launch-day", brand="launch", start=CRISIS_START - timedelta(minutes=10),
        end=CRISIS_START + timedelta(minutes=3), reason="product launch", created_by="alice", created_at=utcnow(),
        signed_at=utcnow(),
    )  # fmt: skip
    book = RiskBook(RiskPolicy(), sensitive)
    book.silences = lambda brand, start, end: silence if brand == silence.brand and silence.covers(start, end) else None
    alerts = decide_all(book, as_brand(flare, "launch"))
    silenced = [a for a in alerts if a.evidence.silence is not None]
    assert silenced and all(not a.pause for a in silenced)
    assert any(a.severity == "critical" for a in silenced), [(a.severity, a.event_time) for a in alerts]
    assert silenced[0].evidence.silence is not None and silenced[0].evidence.silence.reason == "product launch"
    assert any(line.startswith("Silenced: product launch (planned by alice") for line in silenced[-1].explanation)
    # the silence ended while the crisis was still critical: it pauses then, once
    paused = [a for a in alerts if a.pause]
    assert len(paused) == 1 and paused[0].event_time >= silence.end and paused[0].evidence.silence is None


def test_a_backtest_applies_the_brands_file_policy(flare: list[Signal], tmp_path: Path) -> None:
    path = tmp_path / "brands.yaml"
    path.write_text(brands_yaml({"globex": "{sensitivity: quiet, pause_scope: none}"}))
    backtest = Backtest(Settings(brands_file=path), RiskPolicy())
    assert backtest.book.policy_for("globex").pause_scope == "none"
    assert backtest.book.policy_for("globex").critical_at == 84


# --- on the broker ---------------------------------------------------------------------------------------------


async def test_risk_stage_on_the_broker_per_brand_presets_reload_and_a_silence(
    settings: Settings, flare: list[Signal], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Three brands see the same flare-up: quiet does not pause, sensitive does (after a reload that made it
    sensitive), and a sensitive brand with a silence is alerted, marked, and not paused."""
    path = tmp_path / "brands.yaml"
    path.write_text(brands_yaml({"calm": "{sensitivity: quiet}", "edgy": "{sensitivity: quiet}",
                                 "launch": "{sensitivity: sensitive}"}))  # fmt: skip
    settings = with_test_keys(settings, brands_file=path)
    await ensure_topics(settings.kafka.bootstrap_servers or "", settings)
    async with SilenceStore(settings) as store:
        await store.add(
            Silence(
                id="launch-day",
                brand="launch",
                start=CRISIS_START - timedelta(minutes=30),
                end=CRISIS_START + timedelta(hours=2),
                reason="product launch",
                created_by="alice",
                created_at=utcnow(),
                signed_at=utcnow(),
            )
        )
    stage = RiskStage(settings, settings.kafka.bootstrap_servers or "")
    await stage.start()
    try:
        assert stage.silences is not None and stage.silences.get("launch-day") is not None
        history, live = flare[:-40], flare[-40:]
        await stage.handle(as_brand(history[:1], "calm")[0], 0)  # loads the (empty) changelogged state
        for brand in ("calm", "edgy", "launch"):  # a day of history, in process (the same book)
            decide_all(stage.book, as_brand(history[1:], brand))
        path.write_text(brands_yaml({"calm": "{sensitivity: quiet}", "edgy": "{sensitivity: sensitive}",
                                     "launch": "{sensitivity: sensitive}"}))  # fmt: skip
        with caplog.at_level(logging.WARNING, logger="crisiswatch.stream.risk_stage"):
            for signal in live:
                for brand in ("calm", "edgy", "launch"):
                    await stage.handle(signal.model_copy(update={"brand": brand}), 0)
        assert "brand policy changed: edgy: {'sensitivity': 'quiet'} -> {'sensitivity': 'sensitive'}" in caplog.text
        assert "launch would pause but is silenced (launch-day: product launch)" in caplog.text
    finally:
        await stage.stop()

    keyring = Keyring.from_settings(settings.control)
    controls = [
        keyring.verify_record(r.value, ControlMessage)
        for r in await read_records(settings.kafka.bootstrap_servers or "", settings.topic("publishing.control"))
        if r.key != b"heartbeat"
    ]
    paused = {m.scope for m in controls if m.paused}
    assert paused == {"brand:edgy"}, paused
    alerts = [
        Alert.model_validate_json(r.value)
        for r in await read_records(settings.kafka.bootstrap_servers or "", settings.topic(ALERTS.name))
    ]
    launch = [a for a in alerts if a.brand == "launch"]
    assert any(a.severity == "critical" for a in launch), [(a.severity, a.risk) for a in launch]
    assert all(a.evidence.silence is not None and not a.pause for a in launch)
    assert not any(a.pause for a in alerts if a.brand == "calm")


def test_policy_from_settings_is_the_global_policy() -> None:
    assert Settings().risk.policy() == RiskPolicy()


def test_silence_commands_add_list_remove_on_the_broker(settings: Settings) -> None:
    """`crisiswatch silence add|list|remove`: units required, the past refused, signed records, ids in full."""
    from typer.testing import CliRunner

    from crisiswatch.cli import app
    from crisiswatch.control.testing import TEST_KEYS

    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers or "",
        "CRISISWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "CRISISWATCH_CONTROL_KEYS": TEST_KEYS,
        "CRISISWATCH_USER": "alice",
    }
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["silence", *args], env=env)
        return result.exit_code, result.output

    code, out = run("add", "--brand", "acme", "--until", "10", "--reason", "launch")
    assert code == 1 and "durations need units" in out, out
    code, out = run("add", "--brand", "acme", "--from", "2020-01-01T10:00:00Z", "--until", "2h", "--reason", "launch")
    assert code == 1 and "in the past" in out, out
    long_id = "acme-spring-product-launch-2026-" + "x" * 20
    code, out = run("add", "--brand", "acme", "--from", "30m", "--until", "2h", "--reason", "spring launch",
                    "--id", long_id)  # fmt: skip
    assert code == 0 and f"silenced acme as {long_id}" in out, out
    code, out = run("add", "--brand", "acme", "--until", "1h", "--reason", "again", "--id", long_id)
    assert code == 1 and "exists" in out
    code, out = run("list")
    assert code == 0 and long_id in out and "spring launch" in out and "planned" in out, out
    listed = json.loads(run("list", "--json")[1])
    assert [(s["id"], s["brand"], s["created_by"], s["active_now"]) for s in listed] == [
        (long_id, "acme", "alice", False)
    ]
    start, end = (datetime.fromisoformat(listed[0][k]) for k in ("start", "end"))
    assert end - start == timedelta(hours=2)
    assert run("remove", long_id)[0] == 0
    assert json.loads(run("list", "--json")[1]) == []
    code, out = run("remove", long_id)
    assert code == 1 and "no silence" in out

    # both changes are in the signed audit log, under the brand's scope
    audit = runner.invoke(app, ["audit", "--scope", "brand:acme", "--json"], env=env)
    assert audit.exit_code == 0, audit.output
    records = [json.loads(line) for line in audit.output.splitlines() if line.startswith("{")] or json.loads(
        audit.output
    )
    silence_records = [r for r in records if r.get("silence_id") == long_id]
    assert [(r["action"], r["actor"]) for r in silence_records] == [
        ("silence_add", "alice"),
        ("silence_remove", "alice"),
    ]
    assert all(r.get("verified", True) for r in silence_records)


def test_the_example_brands_file_loads_with_its_policies() -> None:
    from crisiswatch.brands_file import load_brand_policies

    path = Path(__file__).resolve().parents[1] / "examples" / "brands.yaml"
    book = RiskBook(RiskPolicy(), load_brand_policies(path))
    assert book.policy_for("acme").critical_at == 84
    globex = book.policy_for("globex")
    assert (globex.critical_at, globex.min_mentions_to_pause, globex.scope_for("globex")) == (59.5, 15, "global")
    assert not book.policy_for("initech").pauses_at("critical") and book.policy_for("initech").crisis.persist == 3
    assert book.policy_for("umbrella") is book.policy
