"""`crisiswatch pause / status / resume / schedule / keys` against the real broker."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from crisiswatch.cli import app
from crisiswatch.control.testing import TEST_KEYS, TEST_PUBLIC_KEYS, fixed_key_pair
from crisiswatch.settings import Settings

runner = CliRunner()


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers or "",
        "CRISISWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "CRISISWATCH_CONTROL_KEYS": TEST_KEYS,
        "CRISISWATCH_USER": "alice",
    }


def run(args: list[str], env: dict[str, str]):
    result = runner.invoke(app, args, env=env)
    return result.exit_code, result.output


def test_pause_status_resume_round_trip(env: dict[str, str]) -> None:
    code, out = run(["status"], env)  # an empty topic that no writer has ever signed: nothing vouches for it
    assert code == 1 and "cannot verify" in out and "no signed state heartbeat" in out

    code, out = run(["pause", "--scope", "brand:acme", "--reason", "product recall", "--on-resume", "skip"], env)
    assert code == 0 and "done: brand:acme paused" in out  # the command also signs a state heartbeat

    code, out = run(["status", "--json"], env)
    state = json.loads(out)["brand:acme"]
    assert code == 0 and (state["state"], state["actor"], state["reason"], state["on_resume"]) == (
        "paused", "alice", "product recall", "skip",
    )  # fmt: skip
    code, out = run(["status"], env)
    assert "PAUSED" in out and "brand:acme" in out and "product recall" in out

    code, out = run(["resume", "--scope", "brand:acme", "--reason", "recall done", "--actor", "bob"], env)
    assert code == 0 and "done: brand:acme active" in out
    state = json.loads(run(["status", "--json"], env)[1])["brand:acme"]
    assert (state["state"], state["actor"]) == ("active", "bob")

    code, out = run(["resume", "--scope", "brand:acme", "--reason", "again"], env)
    assert code == 0 and "no change" in out


def test_pause_and_resume_need_a_reason(env: dict[str, str]) -> None:
    for action in ("pause", "resume"):
        for reason in ([], ["--reason", "   "]):
            code, out = run([action, "--scope", "brand:acme", *reason], env)
            assert code == 1 and "a reason is required" in out and "--reason" in out, out
    assert "no signed state heartbeat" in run(["status"], env)[1]  # the refused commands published nothing
    optional = {**env, "CRISISWATCH_CONTROL_REQUIRE_REASON": "false"}
    code, out = run(["pause", "--scope", "brand:acme"], optional)
    assert code == 0 and "done: brand:acme paused" in out
    state = json.loads(run(["status", "--json"], env)[1])["brand:acme"]
    assert state["reason"] == "manual pause from the command line"


def test_manual_changes_need_a_person_and_the_key(env: dict[str, str]) -> None:
    no_key = {**env, "CRISISWATCH_CONTROL_KEYS": ""}
    code, out = run(["pause", "--reason", "x"], no_key)
    assert code == 1 and "CRISISWATCH_CONTROL_KEYS" in out
    nobody = {k: v for k, v in env.items() if k != "CRISISWATCH_USER"}
    code, out = run(["pause", "--reason", "x"], {**nobody, "CRISISWATCH_USER": ""})
    assert code == 1 and "CRISISWATCH_USER" in out
    code, out = run(["pause", "--reason", "x", "--actor", "detector"], env)
    assert code == 1 and "system actor" in out
    code, out = run(["pause", "--scope", "everything"], env)
    assert code == 1 and "invalid scope" in out
    code, out = run(["pause", "--resume-at", "2030-01-01T00:00:00"], env)
    assert code == 1 and "time zone" in out
    code, out = run(["status"], no_key)
    assert code == 1 and "CRISISWATCH_CONTROL_PUBLIC_KEYS" in out
    legacy = {**env, "CRISISWATCH_CONTROL_KEYS": "k1:an-hmac-secret"}
    code, out = run(["pause", "--reason", "x"], legacy)
    assert code == 1 and "CRISISWATCH_CONTROL_HMAC_MIGRATION" in out
    assert "no signed state heartbeat" in run(["status"], env)[1]  # the refused commands changed nothing


def test_status_fails_and_says_why_when_it_cannot_verify(env: dict[str, str]) -> None:
    """Finding 3 for `crisiswatch status`: a wrong key used to print 'publishing is active everywhere', exit 0."""
    code, out = run(["pause", "--scope", "brand:acme", "--reason", "recall"], env)
    assert code == 0
    reader = {k: v for k, v in env.items() if k not in ("CRISISWATCH_CONTROL_KEYS", "CRISISWATCH_USER")}
    code, out = run(["status"], {**reader, "CRISISWATCH_CONTROL_PUBLIC_KEYS": TEST_PUBLIC_KEYS})
    assert code == 0 and "PAUSED" in out and "brand:acme" in out  # a public key is all status needs
    typo = fixed_key_pair("test1", "a typo").public
    code, out = run(["status"], {**reader, "CRISISWATCH_CONTROL_PUBLIC_KEYS": typo})
    assert code == 1, out
    assert "publishing is active everywhere" not in out
    assert "cannot verify" in out and "bad_signature" in out and "brand:acme is unknown" in out


def test_keys_generate_and_public(env: dict[str, str]) -> None:
    code, out = run(["keys", "generate", "--kid", "k2027"], {})
    lines = dict(line.split("=", 1) for line in out.splitlines() if line.startswith("CRISISWATCH_"))
    assert code == 0 and lines["CRISISWATCH_CONTROL_KEYS"].startswith("k2027:ed25519:")
    assert lines["CRISISWATCH_CONTROL_PUBLIC_KEYS"].startswith("k2027:ed25519:")
    assert run(["keys", "generate"], {})[1] != out  # fresh each time
    code, public = run(["keys", "public"], {"CRISISWATCH_CONTROL_KEYS": lines["CRISISWATCH_CONTROL_KEYS"]})
    assert code == 0 and public.strip() == f"CRISISWATCH_CONTROL_PUBLIC_KEYS={lines['CRISISWATCH_CONTROL_PUBLIC_KEYS']}"
    code, out = run(["keys", "generate", "--kid", "bad kid!"], {})
    assert code == 1 and "invalid key id" in out


def test_schedule_add_list_remove(env: dict[str, str]) -> None:
    code, out = run(
        ["schedule", "add", "weekend", "--reason", "quiet weekend", "--cron", "0 22 * * SAT",
         "--duration", "10h", "--timezone", "Europe/Paris", "--scope", "channel:twitter"],
        env,
    )  # fmt: skip
    assert code == 0 and "scheduled weekend" in out
    code, out = run(
        ["schedule", "add", "mourning", "--reason", "national mourning",
         "--start", "2030-01-01T00:00:00Z", "--end", "2030-01-02T00:00:00Z"],
        env,
    )  # fmt: skip
    assert code == 0
    code, out = run(["schedule", "add", "bad", "--reason", "x", "--cron", "nonsense", "--duration", "1h"], env)
    assert code == 1 and "cron" in out
    code, out = run(["schedule", "list", "--json"], env)
    listed = json.loads(out)
    assert [s["id"] for s in listed] == ["mourning", "weekend"]
    assert listed[1]["duration_seconds"] == 36000 and listed[1]["created_by"] == "alice"
    code, out = run(["schedule", "remove", "weekend"], env)
    assert code == 0
    assert [s["id"] for s in json.loads(run(["schedule", "list", "--json"], env)[1])] == ["mourning"]
    code, out = run(["schedule", "remove", "weekend"], env)
    assert code == 1 and "no schedule" in out


@pytest.mark.parametrize("command", [["schedule", "run"], ["relay"]])
def test_metrics_listen_on_the_web_host(
    command: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like every other process, `schedule run` and `relay` bind CRISISWATCH_WEB_HOST, not all interfaces."""
    import prometheus_client

    bound: list[tuple[int, str]] = []

    def fake_server(port: int, addr: str = "0.0.0.0", *args: object, **kwargs: object) -> None:
        bound.append((port, addr))
        raise KeyboardInterrupt  # stop the command before it runs forever

    monkeypatch.setattr(prometheus_client, "start_http_server", fake_server)
    env = {**env, "CRISISWATCH_WEB_HOST": "127.0.0.9", "CRISISWATCH_RELAY_URLS": "http://127.0.0.1:9/hook"}
    run([*command, "--metrics-port", "18067"], env)
    assert bound == [(18067, "127.0.0.9")]
