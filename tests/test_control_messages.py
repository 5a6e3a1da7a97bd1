"""Control records, signatures and the view's acceptance rules (no Kafka needed)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import REGISTRY, CollectorRegistry, Gauge
from pydantic import SecretStr, ValidationError

from crisiswatch.contracts.control import HEARTBEAT_KEY, ControlMessage, Heartbeat, Schedule, scope_of
from crisiswatch.contracts.vocabulary import utcnow
from crisiswatch.control import metrics as control_metrics
from crisiswatch.control.keys import generate_key_pair
from crisiswatch.control.messages import ControlRejected, Keyring, SigningUnavailable
from crisiswatch.control.metrics import ScopePausedTracker, ThrottledWarnings
from crisiswatch.control.view import ControlView, scopes_for
from crisiswatch.settings import ControlSettings, Settings

K1, K2 = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
OLD = Keyring({"k1": K1})
ROTATED = Keyring({"k2": K2, "k1": K1})
NEW_ONLY = Keyring({"k2": K2})


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
    assert signed.kid == "k1" and len(signed.sig or "") == 128  # hex Ed25519
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
        OLD.verify_record(stale, ControlMessage, max_age_seconds=300)
    assert err.value.reason == "stale"
    OLD.verify_record(OLD.sign(message(age_s=10)), ControlMessage, max_age_seconds=300)


def test_keyring_from_settings_and_secret_never_shown() -> None:
    a, b = generate_key_pair("a"), generate_key_pair("b")
    settings = Settings(control_keys=SecretStr(f"{a.private},{b.private}"))
    ring = Keyring.from_settings(settings.control)
    assert ring.signing_kid == "a" and ring.kids == ["a", "b"] and ring.can_sign
    assert ring.public_keys() == [a.public, b.public]
    secret = a.private.rsplit(":", 1)[1]
    assert secret not in repr(ring) and secret not in repr(settings) and secret not in repr(a)
    assert not Keyring.from_settings(Settings(control_keys=None).control)
    # A reader configured with the public key only verifies, and cannot sign.
    reader = Keyring.from_settings(Settings(control_public_keys=a.public).control)
    assert reader.kids == ["a"] and not reader.can_sign
    reader.verify_record(ring.sign(message()).to_bytes(), ControlMessage)
    with pytest.raises(SigningUnavailable):
        reader.sign(message())
    for bad in ("a:ed25519:tooshort", "no-colon", "a:ed25519:" + "A" * 43 + ",a"):
        with pytest.raises(ValueError):
            Keyring.from_settings(Settings(control_public_keys=bad).control)
    with pytest.raises(ValueError, match="two different keys"):  # one kid, two keys: a configuration error
        mixed = ControlSettings(control_keys=SecretStr(a.private), control_public_keys=f"a:{b.public[2:]}")
        Keyring.from_settings(mixed)


def test_public_keys_verify_and_another_private_key_forges_nothing() -> None:
    """Gates verify with public keys only: a record signed with any other private key is refused."""
    gate = OLD.verifying_only()
    assert gate.kids == ["k1"] and not gate.can_sign
    gate.verify_record(OLD.sign(message()).to_bytes(), ControlMessage)
    forger = Keyring.generate("k1")  # same key id, another private key
    hmac_forger = Keyring({"k1": b"a guessed secret"})  # the old scheme, same key id
    for forged in (forger.sign(message(state="active")), hmac_forger.sign(message(state="active"))):
        with pytest.raises(ControlRejected) as err:
            gate.verify_record(forged.to_bytes(), ControlMessage)
        assert err.value.reason == "bad_signature"


def test_hmac_keys_only_during_an_explicit_migration() -> None:
    legacy = "old:correct-horse-battery-staple"
    with pytest.raises(ValueError, match="CRISISWATCH_CONTROL_HMAC_MIGRATION"):
        Keyring.from_settings(Settings(control_keys=SecretStr(legacy)).control)
    pair = generate_key_pair("new")
    migrating = Keyring.from_settings(
        Settings(control_keys=SecretStr(f"{pair.private},{legacy}"), control_hmac_migration=True)
    .control)
    assert migrating.signing_kid == "new"  # Ed25519 signs; the HMAC key only still verifies old records
    old_record = Keyring({"old": b"correct-horse-battery-staple"}).sign(message())
    migrating.verify_record(old_record.to_bytes(), ControlMessage)
    assert migrating.verifying_only(hmac_allowed=True).kids == ["new", "old"]
    gate = migrating.verifying_only()  # after the migration: public keys only
    assert gate.kids == ["new"]
    with pytest.raises(ControlRejected) as err:
        gate.verify_record(old_record.to_bytes(), ControlMessage)
    assert err.value.reason == "unknown_kid"


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


def _schedule(**kw) -> Schedule:
    now = utcnow()
    return Schedule(id="quiet", reason="quiet", created_by="alice", created_at=now, signed_at=now, **kw)


# --- failing closed: unknown scopes, late records for every reader, the heartbeat ------------------------
def heartbeat(states: dict[str, int], age_s: float = 0.0, keyring: Keyring = OLD) -> bytes:
    at = utcnow() - timedelta(seconds=age_s)
    return keyring.sign(Heartbeat(writer="plane-test", signed_at=at, interval_seconds=10, states=states)).to_bytes()


def test_a_scope_whose_newest_record_fails_verification_is_unknown_and_not_allowed() -> None:
    view = ControlView(OLD, 300)
    assert view.ingest(b"global", OLD.sign(message(seq=1, state="active")).to_bytes(), live=False).changed
    forged = Keyring.generate("k1").sign(message(seq=2, state="active"))
    assert view.ingest(b"global", forged.to_bytes(), live=True).rejected.reason == "bad_signature"
    decision = view.decide(scopes_for(channel="twitter"))
    assert not decision.allowed and decision.scope == "global" and "bad_signature" in decision.reason
    assert view.unknown() == {"global": "its newest control record failed verification (bad_signature)"}
    # A genuine record for the scope settles it again.
    view.ingest(b"global", OLD.sign(message(seq=1, state="active", age_s=-1)).to_bytes(), live=True)
    assert view.decide(["global"]).allowed and view.unknown() == {}


def test_a_wrong_key_leaves_every_scope_it_read_unknown() -> None:
    """Finding 3 in the view: a reader with the wrong key knows nothing, and says so."""
    wrong = ControlView(Keyring.generate("k1").verifying_only(), 300)
    wrong.ingest(b"brand:acme", OLD.sign(message(scope="brand:acme", seq=1)).to_bytes(), live=False)
    result = wrong.ingest(HEARTBEAT_KEY.encode(), heartbeat({"brand:acme": 1}), live=False)
    assert result.rejected is not None and result.rejected.reason == "bad_signature"
    assert wrong.heartbeat is None and not wrong.decide(["global", "brand:acme"]).allowed


def test_a_late_resume_is_refused_by_readers_that_start_later_too() -> None:
    """Finding 6 in the view: the age rule is judged against the log itself, not only against now."""
    pause = OLD.sign(message(seq=10, age_s=3600))  # paused an hour ago ...
    reasserted = OLD.sign(pause.model_copy(update={"signed_at": utcnow() - timedelta(seconds=5)}))
    late = OLD.sign(message(seq=11, state="active", age_s=3000))  # ... a resume signed 50 min ago, held back
    log = [(b"global", pause.to_bytes()), (b"global", reasserted.to_bytes()),
           (HEARTBEAT_KEY.encode(), heartbeat({"global": 10}, age_s=5)), (b"global", late.to_bytes())]  # fmt: skip
    for live in (True, False):  # a running reader, and one that reads it all as history later
        view = ControlView(OLD, 300)
        results = [view.ingest(key, value, live=live) for key, value in log]
        assert results[-1].rejected is not None and results[-1].rejected.reason == "stale"
        assert view.get("global").paused and not view.decide(["global"]).allowed
    # A resume signed in time is not affected, whenever it is read.
    view = ControlView(OLD, 300)
    for key, value in log[:3]:
        view.ingest(key, value, live=False)
    fresh = OLD.sign(message(seq=12, state="active", age_s=1))
    assert view.ingest(b"global", fresh.to_bytes(), live=False).changed and view.decide(["global"]).allowed


def test_heartbeat_vouches_for_the_whole_state() -> None:
    view = ControlView(OLD, 300)
    view.ingest(b"brand:acme", OLD.sign(message(scope="brand:acme", seq=5)).to_bytes(), live=False)
    view.ingest(b"brand:x", b"garbage", live=False)  # forged on a scope nobody uses: unknown for now
    assert set(view.unknown()) == {"brand:x"}
    result = view.ingest(HEARTBEAT_KEY.encode(), heartbeat({"brand:acme": 5, "global": 7}), live=True)
    assert result.outcome == "heartbeat" and result.missing == ("global",)  # a record this reader never read
    assert set(view.unknown()) == {"global"} and 0 <= view.heartbeat_age() < 5
    assert not view.decide(["global"]).allowed and "seq 7" in view.decide(["global"]).reason
    view.ingest(b"global", OLD.sign(message(seq=7, state="active")).to_bytes(), live=True)
    assert view.unknown() == {} and view.decide(["global", "brand:x"]).allowed
    older = view.ingest(HEARTBEAT_KEY.encode(), heartbeat({"global": 99}, age_s=60), live=True)  # replayed: no effect
    assert older.missing == () and view.unknown() == {} and view.heartbeat_age() < 5


def test_rejections_are_counted_always_but_logged_at_a_bounded_rate(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    throttle = ThrottledWarnings(logging.getLogger("test.throttle"), interval=60, clock=lambda: now[0])
    before = REGISTRY.get_sample_value(
        "crisiswatch_control_messages_rejected_total", {"component": "test", "reason": "bad_signature"}
    ) or 0.0
    with caplog.at_level(logging.WARNING, logger="test.throttle"):
        logged = [throttle.rejected("test", "bad_signature", f"forgery {i}") for i in range(1000)]
        assert throttle.rejected("test", "unsigned", "another kind")  # each reason has its own budget
        now[0] = 61.0
        assert throttle.rejected("test", "bad_signature", "forgery 1000")
    assert sum(logged) == 1 and len(caplog.records) == 3
    assert "999 more bad_signature record(s)" in caplog.records[-1].getMessage()
    after = REGISTRY.get_sample_value(
        "crisiswatch_control_messages_rejected_total", {"component": "test", "reason": "bad_signature"}
    )
    assert after == before + 1001
