"""Control records, signatures and the view's acceptance rules (no Kafka needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Gauge
from pydantic import SecretStr, ValidationError

from crisiswatch.control import metrics as control_metrics
from crisiswatch.control.messages import (
    SCHEMA_FILES,
    ControlMessage,
    ControlRejected,
    Keyring,
    Schedule,
    scope_of,
)
from crisiswatch.control.metrics import ScopePausedTracker
from crisiswatch.control.view import ControlView, scopes_for
from crisiswatch.settings import Settings
from stream.records import utcnow
from stream.schema_files import SCHEMA_DIR, registry, render

OLD = Keyring({"k1": b"old-secret"})
ROTATED = Keyring({"k2": b"new-secret", "k1": b"old-secret"})
NEW_ONLY = Keyring({"k2": b"new-secret"})


def message(scope: str = "global", state: str = "paused", seq: int = 1, age_s: float = 0.0, **kw) -> ControlMessage:
    at = utcnow() - timedelta(seconds=age_s)
    fields = dict(
        scope=scope, state=state, reason="test", actor="detector", episode="ep-1", seq=seq,
        issued_at=at, signed_at=at, on_resume="hold",
    )  # fmt: skip
    fields.update(kw)
    return ControlMessage(**fields)


def test_sign_and_verify_round_trip_on_the_wire() -> None:
    signed = OLD.sign(message())
    assert signed.kid == "k1" and len(signed.sig or "") == 64
    parsed = OLD.verify_record(signed.to_bytes(), ControlMessage)
    assert parsed == signed
    wire = json.loads(signed.to_bytes())
    assert wire["issued_at"].endswith("Z")  # UTC ISO on the wire


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda d: d.update(state="active"), "bad_signature"),
        (lambda d: d.update(scope="brand:acme"), "bad_signature"),
        (lambda d: d.update(kid="nope"), "unknown_kid"),
        (lambda d: d.pop("sig"), "unsigned"),
        (lambda d: d.update(sig=None, kid=None), "unsigned"),
    ],
)
def test_tampered_or_unsigned_records_are_rejected(tamper, reason: str) -> None:
    wire = json.loads(OLD.sign(message()).to_bytes())
    tamper(wire)
    with pytest.raises(ControlRejected) as err:
        OLD.verify_record(json.dumps(wire).encode(), ControlMessage)
    assert err.value.reason == reason


def test_garbage_is_malformed() -> None:
    for raw in (b"not json", b"[1,2]"):
        with pytest.raises(ControlRejected) as err:
            OLD.verify_record(raw, ControlMessage)
        assert err.value.reason == "malformed"


def test_key_rotation_first_key_signs_all_verify() -> None:
    by_old = OLD.sign(message())
    by_new = ROTATED.sign(message())
    assert by_new.kid == "k2"
    ROTATED.verify_record(by_old.to_bytes(), ControlMessage)  # old messages still verify during rotation
    OLD.verify_record(by_old.to_bytes(), ControlMessage)
    NEW_ONLY.verify_record(by_new.to_bytes(), ControlMessage)
    with pytest.raises(ControlRejected) as err:  # once the old key is dropped, its messages are refused
        NEW_ONLY.verify_record(by_old.to_bytes(), ControlMessage)
    assert err.value.reason == "unknown_kid"


def test_stale_messages_are_rejected_when_age_is_checked() -> None:
    stale = OLD.sign(message(age_s=600))
    OLD.verify_record(stale.to_bytes(), ControlMessage)  # fine without an age limit
    with pytest.raises(ControlRejected) as err:
        stale.verify(OLD, max_age_seconds=300)
    assert err.value.reason == "stale"
    OLD.sign(message(age_s=10)).verify(OLD, max_age_seconds=300)


def test_keyring_from_settings_and_secret_never_shown() -> None:
    settings = Settings(control_keys=SecretStr("a:s3cr3t-A,b:s3cr3t-B"))
    ring = Keyring.from_settings(settings)
    assert ring.signing_kid == "a" and ring.kids == ["a", "b"]
    assert "s3cr3t" not in repr(ring) and "s3cr3t" not in repr(settings)
    assert not Keyring.from_settings(Settings(control_keys=None))


@pytest.mark.parametrize("scope", ["global", "brand:acme", "channel:twitter", "account:acme_us", "account:a.b@c"])
def test_valid_scopes(scope: str) -> None:
    assert message(scope=scope).scope == scope


@pytest.mark.parametrize("scope", ["", "Global", "brand:", "brand", "team:x", "brand:a b", "channel:" + "x" * 200])
def test_invalid_scopes(scope: str) -> None:
    with pytest.raises(ValidationError):
        message(scope=scope)


def test_scope_of() -> None:
    assert scope_of("global") == "global" and scope_of("brand", "acme") == "brand:acme"
    for kind, name in (("brand", ""), ("team", "x"), ("channel", "a b")):
        with pytest.raises(ValueError):
            scope_of(kind, name)


def test_view_precedence_global_then_brand_channel_account() -> None:
    view = ControlView(OLD, 300)
    for scope in ("channel:twitter", "account:acme_us", "brand:acme"):
        view.apply(OLD.sign(message(scope=scope)))
    assert scopes_for(channel="twitter", account="acme_us", brand="acme") == [
        "global", "brand:acme", "channel:twitter", "account:acme_us",
    ]  # fmt: skip
    decide = lambda **kw: view.decide(scopes_for(**kw))  # noqa: E731
    assert decide(channel="twitter", account="acme_us", brand="acme").scope == "brand:acme"
    assert decide(channel="twitter", account="other", brand="other").scope == "channel:twitter"
    assert decide(channel="email", account="acme_us").scope == "account:acme_us"
    assert decide(channel="email", account="other", brand="other").allowed
    view.apply(OLD.sign(message(scope="global", on_resume="skip")))
    decision = decide(channel="email", account="other", brand="other")
    assert not decision.allowed and decision.scope == "global" and decision.on_resume == "skip"


def test_view_ordering_replay_and_reassertion() -> None:
    view = ControlView(OLD, 300)
    pause = OLD.sign(message(seq=10))
    resume = OLD.sign(message(seq=9, state="active"))
    assert view.ingest(b"global", pause.to_bytes(), live=False).outcome == "applied"
    result = view.ingest(b"global", resume.to_bytes(), live=False)  # an older seq: a replay
    assert result.rejected is not None and result.rejected.reason == "replayed"
    assert view.get("global") == pause
    assert view.ingest(b"global", pause.to_bytes(), live=True).outcome == "duplicate"
    again = OLD.sign(pause.model_copy(update={"signed_at": utcnow() + timedelta(seconds=1)}))
    assert view.ingest(b"global", again.to_bytes(), live=True).outcome == "reasserted"


def test_view_age_rule_live_resumes_only() -> None:
    view = ControlView(OLD, 300)
    old_pause = OLD.sign(message(seq=1, age_s=3600))
    assert view.ingest(b"global", old_pause.to_bytes(), live=False).outcome == "applied"  # history: kept
    late_resume = OLD.sign(message(seq=2, state="active", age_s=900))
    result = view.ingest(b"global", late_resume.to_bytes(), live=True)
    assert result.rejected is not None and result.rejected.reason == "stale"
    assert view.get("global") == old_pause and view.max_seq("global") == 2
    late_pause = OLD.sign(message(scope="brand:acme", seq=3, age_s=900))
    assert view.ingest(b"brand:acme", late_pause.to_bytes(), live=True).outcome == "applied"  # safe side


def test_view_rejects_tombstones_key_mismatch_and_forgeries_without_state_change() -> None:
    view = ControlView(OLD, 300)
    pause = OLD.sign(message(seq=5))
    view.ingest(b"global", pause.to_bytes(), live=False)
    forged = Keyring({"k1": b"guessed"}).sign(message(seq=6, state="active"))
    other_scope = OLD.sign(message(scope="brand:acme", seq=7, state="active"))
    reasons = [
        view.ingest(b"global", None, live=True).rejected,
        view.ingest(b"global", forged.to_bytes(), live=True).rejected,
        view.ingest(b"global", other_scope.to_bytes(), live=True).rejected,
    ]
    assert [r.reason for r in reasons if r] == ["tombstone", "bad_signature", "key_mismatch"]
    assert view.get("global") == pause and view.get("brand:acme") is None


def _tracked(limit: int = 2) -> tuple[ControlView, CollectorRegistry]:
    registry = CollectorRegistry()
    gauge = Gauge("crisiswatch_scope_paused", "test", ["scope"], registry=registry)
    return ControlView(OLD, 300, scopes=ScopePausedTracker(gauge, limit=limit)), registry


def _paused_series(registry: CollectorRegistry) -> dict[str, float]:
    return {s.labels["scope"]: s.value for f in registry.collect() for s in f.samples}


def test_scope_paused_gauge_follows_the_verified_state() -> None:
    view, registry = _tracked()
    view.apply(OLD.sign(message(scope="brand:acme", seq=1)))
    view.apply(OLD.sign(message(scope="channel:email", seq=1, state="active")))  # never seen paused: no series
    assert _paused_series(registry) == {"brand:acme": 1.0}
    view.ingest(b"brand:acme", OLD.sign(message(scope="brand:acme", seq=2, state="active")).to_bytes(), live=True)
    forged = Keyring({"k1": b"guessed"}).sign(message(scope="global", seq=3))
    view.ingest(b"global", forged.to_bytes(), live=True)  # rejected: changes nothing, not even the gauge
    view.ingest(b"brand:acme", None, live=True)
    assert _paused_series(registry) == {"brand:acme": 0.0}  # resumed: kept at 0, not dropped
    view.apply(OLD.sign(message(scope="global", seq=4)))
    assert _paused_series(registry) == {"brand:acme": 0.0, "global": 1.0}


def test_scope_paused_labels_are_bounded() -> None:
    view, registry = _tracked(limit=2)
    for name in ("a", "b", "c", "d"):
        view.apply(OLD.sign(message(scope=f"account:{name}", seq=1)))
    view.apply(OLD.sign(message(scope="global", seq=1)))  # global always has its own series
    assert _paused_series(registry) == {"account:a": 1.0, "account:b": 1.0, "other": 1.0, "global": 1.0}
    view.apply(OLD.sign(message(scope="account:c", seq=2, state="active")))
    assert _paused_series(registry)["other"] == 1.0  # account:d is still paused
    view.apply(OLD.sign(message(scope="account:d", seq=2, state="active")))
    assert _paused_series(registry)["other"] == 0.0
    view.apply(OLD.sign(message(scope="account:c", seq=3)))
    assert _paused_series(registry) == {"account:a": 1.0, "account:b": 1.0, "other": 1.0, "global": 1.0}


def test_every_view_reports_to_the_process_gauge_by_default() -> None:
    view = ControlView(OLD, 300)
    assert view.scopes is control_metrics.SCOPES
    view.apply(OLD.sign(message(scope="global", seq=1)))
    assert REGISTRY.get_sample_value("crisiswatch_scope_paused", {"scope": "global"}) == 1.0
    view.apply(OLD.sign(message(scope="global", seq=2, state="active")))
    assert REGISTRY.get_sample_value("crisiswatch_scope_paused", {"scope": "global"}) == 0.0


def test_absolute_schedule_window() -> None:
    start = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    s = _schedule(start=start, end=start + timedelta(days=1))
    assert s.window_at(start - timedelta(seconds=1)) is None
    assert s.window_at(start).start == start
    assert s.window_at(start + timedelta(days=1)) is None
    assert s.next_boundary(start - timedelta(hours=1)) == start
    assert s.next_boundary(start + timedelta(hours=1)) == start + timedelta(days=1)
    assert s.next_boundary(start + timedelta(days=2)) is None
    assert s.episode_for(s.window_at(start)) == "schedule:quiet:2026-12-01T00:00:00Z"


def test_recurring_schedule_in_local_time() -> None:
    # Saturdays 22:00 Paris time for 10 h: 2026-11-28 is a Saturday; Paris is UTC+1 in winter.
    s = _schedule(cron="0 22 * * SAT", duration_seconds=36000, timezone="Europe/Paris")
    saturday_2130_utc = datetime(2026, 11, 28, 21, 30, tzinfo=UTC)
    window = s.window_at(saturday_2130_utc)
    assert window is not None and window.start == datetime(2026, 11, 28, 21, 0, tzinfo=UTC)
    assert window.end == datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
    assert s.window_at(datetime(2026, 11, 29, 7, 0, tzinfo=UTC)) is None
    assert s.window_at(datetime(2026, 11, 28, 20, 59, tzinfo=UTC)) is None
    assert s.next_boundary(datetime(2026, 11, 28, 20, 0, tzinfo=UTC)) == window.start
    exact = s.window_at(window.start)
    assert exact is not None and exact.start == window.start


@pytest.mark.parametrize(
    "bad",
    [
        {"cron": "not a cron", "duration_seconds": 10},
        {"cron": "* * * * *"},
        {"start": datetime(2026, 1, 2, tzinfo=UTC), "end": datetime(2026, 1, 1, tzinfo=UTC)},
        {"start": datetime(2026, 1, 1, tzinfo=UTC), "end": datetime(2026, 1, 2, tzinfo=UTC), "cron": "* * * * *"},
        {"cron": "* * * * *", "duration_seconds": 10, "timezone": "Mars/Olympus"},
        {},
    ],
)
def test_invalid_schedules(bad: dict) -> None:
    with pytest.raises(ValidationError):
        _schedule(**bad)


def test_schema_files_are_registered_and_current() -> None:
    assert set(SCHEMA_FILES) <= set(registry())
    for name, model in SCHEMA_FILES.items():
        path = SCHEMA_DIR / name
        assert path.read_text(encoding="utf-8") == render(name, model), f"run python -m stream.schema_files ({name})"


def _schedule(**kw) -> Schedule:
    now = utcnow()
    return Schedule(id="quiet", reason="quiet", created_by="alice", created_at=now, signed_at=now, **kw)
