"""The sources file (`connectors.sources`) and ``crisiswatch connect --sources FILE [--only NAME]``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from aiohttp import web
from conftest import read_all
from connector_servers import serve
from kill_harness import TopicWatch, connect_env, kill, start_connect
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from crisiswatch.connectors.platforms.bluesky import BlueskyConnector
from crisiswatch.connectors.platforms.hackernews import HackerNewsConnector
from crisiswatch.connectors.platforms.mastodon import MastodonConnector
from crisiswatch.connectors.platforms.reddit import RedditConnector
from crisiswatch.connectors.platforms.x import XFilteredStream
from crisiswatch.connectors.platforms.youtube import YouTubeConnector
from crisiswatch.connectors.replay import ReplayConnector
from crisiswatch.connectors.rss import FeedConnector
from crisiswatch.connectors.sources import SourcesFileError, is_duration, kinds, load_sources, parse_sources
from crisiswatch.connectors.webhook import WebhookReceiver
from crisiswatch.contracts.records import Mention
from crisiswatch.contracts.topics import CONNECTOR_CHECKPOINTS, MENTIONS_RAW
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "sources.yaml"


def problems_of(data: object) -> list[str]:
    with pytest.raises(SourcesFileError) as caught:
        parse_sources(data, "s.yaml")
    assert all("\n" not in line for line in caught.value.problems), "one line per problem"
    return caught.value.problems


def test_every_platform_module_registers_its_kind() -> None:
    assert {"rss", "sse", "websocket", "poll", "webhook", "replay", "mastodon", "bluesky", "x", "reddit", "hackernews",
            "youtube"} <= set(kinds())  # fmt: skip


def test_example_file_builds_every_entry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("MASTODON_TOKEN", "X_BEARER_TOKEN", "CRISISWATCH_CONNECTOR_WEBHOOK_SECRET", "REDDIT_CLIENT_ID",
                 "REDDIT_CLIENT_SECRET", "YOUTUBE_API_KEY"):  # fmt: skip
        monkeypatch.setenv(name, f"value-of-{name}")
    sources = load_sources(EXAMPLE)
    built = sources.build(Settings(connector_state_dir=tmp_path))
    assert [type(c) for c in built] == [MastodonConnector, BlueskyConnector, XFilteredStream, RedditConnector,
                                        HackerNewsConnector, YouTubeConnector, FeedConnector,
                                        WebhookReceiver]  # fmt: skip
    mastodon, _, x = built[:3]
    assert isinstance(mastodon, MastodonConnector) and isinstance(x, XFilteredStream)
    assert mastodon.headers["Authorization"] == "Bearer value-of-MASTODON_TOKEN"
    assert x.headers["Authorization"] == "Bearer value-of-X_BEARER_TOKEN"
    assert set(x.rules) == {"crisiswatch:acme", "crisiswatch:globex", "crisiswatch:initech"}
    (only,) = sources.build(Settings(connector_state_dir=tmp_path), only="acme-newsroom")
    assert isinstance(only, FeedConnector) and only.state.path is not None and only.state.path.parent == tmp_path


def test_every_problem_is_one_line_naming_entry_and_option() -> None:
    problems = problems_of(
        {
            "sources": [
                {"name": "m1", "kind": "mastodon", "base_url": "https://m.example", "timeline": "hashtag"},
                {"name": "m2", "kind": "mastodon", "base_url": "https://m.example", "tag": "a", "token": "s3cr3t"},
                {"name": "nope", "kind": "myspace"},
                {"name": "x1", "kind": "x", "token_env": "1-not-a-name", "stall_secs": 5},
                {"name": "x2", "kind": "x"},
                {"name": "m1", "kind": "rss", "url": "https://news.example/rss"},
                {"name": "bad name!", "kind": "rss", "url": "https://news.example/rss"},
                "just a string",
            ],
            "extra": 1,
        }
    )
    assert problems == [
        "s.yaml: unknown top-level key 'extra'",
        "s.yaml: sources[0] (m1): options: timeline hashtag needs 'tag'",
        "s.yaml: sources[1] (m2): token: credentials are not written in the file; name an environment variable "
        "instead (token_env: MY_TOKEN)",
        "s.yaml: sources[2] (nope): kind 'myspace' is not one of " + ", ".join(sorted(kinds())),
        "s.yaml: sources[3] (x1): token_env: must be an environment variable name (like MY_TOKEN), got '1-not-a-name'",
        "s.yaml: sources[3] (x1): stall_secs: Extra inputs are not permitted",
        "s.yaml: sources[4] (x2): token_env: Field required",
        "s.yaml: sources[5] (m1): duplicate name 'm1'",
        "s.yaml: sources[6] (bad name!): name: use 1-64 letters, digits, '_', '.' or '-', "
        "starting with a letter or digit",
        "s.yaml: sources[7]: an entry is a mapping with 'name' and 'kind'",
    ]
    assert not any("s3cr3t" in line for line in problems), "a secret written inline is never echoed"


def test_durations_carry_their_unit() -> None:
    (rss, hn, x) = parse_sources(
        {
            "sources": [
                {"name": "feed", "kind": "rss", "url": "https://news.example/rss", "interval": "2m"},
                {"name": "hn", "kind": "hackernews", "query": "acme", "interval": "90s", "overlap": 0,
                 "backfill": "PT1H"},
                {"name": "x", "kind": "x", "token_env": "T", "stall_timeout": "1m30s",
                 "reconnect": {"http_initial": "0.5s", "rate_limit_max": "P1D"}},
            ]
        }
    )  # fmt: skip
    assert rss.interval == 120  # type: ignore[attr-defined]
    assert (hn.interval, hn.overlap, hn.backfill) == (90, 0, 3600)  # type: ignore[attr-defined]
    assert x.stall_timeout == 90 and x.reconnect.http_initial == 0.5  # type: ignore[attr-defined]
    assert x.reconnect.rate_limit_max == 86400  # type: ignore[attr-defined]


def test_a_bare_number_or_an_old_seconds_option_is_one_line_with_a_hint() -> None:
    problems = problems_of(
        {
            "sources": [
                {"name": "feed", "kind": "rss", "url": "https://news.example/rss", "interval": 120},
                {"name": "hn", "kind": "hackernews", "query": "acme", "overlap_seconds": 300},
                {"name": "x", "kind": "x", "token_env": "T", "reconnect": {"http_initial": 5}},
                {"name": "yt", "kind": "youtube", "interval": "10 parsecs"},
                {"name": "bsky", "kind": "bluesky", "idle_timeout": "0s"},
            ]
        }
    )
    assert problems == [
        "s.yaml: sources[0] (feed): interval: '120' has no unit: write 120s, 120m, 120h or 120d "
        "(seconds, minutes, hours, days)",
        "s.yaml: sources[1] (hn): overlap_seconds: renamed to overlap, with a unit (e.g. overlap: 300s)",
        "s.yaml: sources[2] (x): reconnect.http_initial: '5' has no unit: write 5s, 5m, 5h or 5d "
        "(seconds, minutes, hours, days)",
        "s.yaml: sources[3] (yt): interval: '10 parsecs': unknown unit 'parsecs' (use s, m, h, d or w; "
        "e.g. 90s, 10m, 2h, 1d, 1h30m or ISO 8601 PT10M)",
        "s.yaml: sources[4] (bsky): idle_timeout: '0s': a duration must be longer than zero",
    ]


def _float_fields(model: type[BaseModel], where: str) -> list[tuple[str, FieldInfo]]:
    out: list[tuple[str, FieldInfo]] = []
    for name, info in model.model_fields.items():
        for arg in (info.annotation, *get_args(info.annotation)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                out += _float_fields(arg, f"{where}.{name}")
        if info.annotation in (float, float | None):
            out.append((f"{where}.{name}", info))
    return out


NOT_DURATIONS = {"replay.speed"}  # a multiplier of event time


def test_every_duration_option_of_every_kind_takes_units() -> None:
    """A new float option of any kind is a duration and parsed by the one parser (or this test says so)."""
    fields = [f for kind in kinds().values() for f in _float_fields(kind.model, kind.kind)]
    assert len(fields) > 20
    plain = [where for where, info in fields if not is_duration(info.metadata) and where not in NOT_DURATIONS]
    assert not plain, f"float options that are not Duration: {plain}"


def test_empty_and_malformed_files(tmp_path: Path) -> None:
    assert problems_of({"sources": []}) == ["s.yaml: the sources list is empty"]
    assert problems_of(["not", "a", "mapping"]) == ["s.yaml: expected a mapping with a 'sources' list"]
    broken = tmp_path / "broken.yaml"
    broken.write_text("sources:\n  - name: a\n   kind: rss\n", encoding="utf-8")
    with pytest.raises(SourcesFileError) as caught:
        load_sources(broken)
    assert len(caught.value.problems) == 1 and "not valid YAML" in caught.value.problems[0]
    with pytest.raises(SourcesFileError, match="cannot read sources file"):
        load_sources(tmp_path / "missing.yaml")


def test_missing_credentials_and_unknown_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ABSENT_TOKEN", raising=False)
    path = tmp_path / "sources.yaml"
    path.write_text(
        "sources:\n"
        "  - {name: xs, kind: x, token_env: ABSENT_TOKEN}\n"
        "  - {name: ms, kind: mastodon, base_url: 'https://m.example', timeline: public, token_env: ABSENT_TOKEN}\n"
        "  - {name: feed, kind: rss, url: 'https://news.example/rss'}\n",
        encoding="utf-8",
    )
    sources = load_sources(path)
    with pytest.raises(SourcesFileError) as caught:
        sources.build(Settings())
    assert caught.value.problems == [
        "xs (x): environment variable ABSENT_TOKEN is not set",
        "ms (mastodon): environment variable ABSENT_TOKEN is not set",
    ]
    assert len(sources.build(Settings(), only="feed")) == 1  # the other entries are not built at all
    with pytest.raises(SourcesFileError, match=r"no source named 'fed' \(names: xs, ms, feed\)"):
        sources.select("fed")


def test_cli_reports_problems_one_per_line(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text("sources:\n  - {name: a, kind: rss}\n  - {name: b, kind: nope}\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "crisiswatch.cli", "connect", "--sources", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"error: {path}: sources[0] (a): url: Field required",
        f"error: {path}: sources[1] (b): kind 'nope' is not one of " + ", ".join(sorted(kinds())),
    ]


# --- a real run: two feeds in the file, --only one, until SIGINT -------------------------------------------------
RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>{name}</title><link>https://{name}.example/</link>
<item><guid isPermaLink="false">{name}-1</guid><title>Acme story on {name}</title><link>https://{name}.example/1</link>
<pubDate>Fri, 04 Dec 2026 09:00:00 GMT</pubDate></item></channel></rss>"""


async def test_cli_connect_sources_only_one_entry(kafka_bootstrap: str, settings: Settings, tmp_path: Path) -> None:
    fetched: list[str] = []

    async def feed(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        fetched.append(name)
        return web.Response(body=RSS.format(name=name).encode(), content_type="application/rss+xml")

    app = web.Application()
    app.router.add_get("/{name}.xml", feed)
    await ensure_topics(kafka_bootstrap, settings)
    async with serve(app) as server:
        path = tmp_path / "sources.yaml"
        path.write_text(
            "sources:\n"
            f"  - {{name: feed-a, kind: rss, url: '{server.make_url('/alpha.xml')}', interval: 0.2s, source: blog}}\n"
            f"  - {{name: feed-b, kind: rss, url: '{server.make_url('/beta.xml')}', interval: 0.2s, source: news}}\n",
            encoding="utf-8",
        )
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "CRISISWATCH_TOPIC_PREFIX": settings.kafka.topic_prefix,
            "CRISISWATCH_PARTITIONS": "2",
            "CRISISWATCH_CONNECTOR_STATE_DIR": str(tmp_path / "state"),
        }
        args = ["connect", "--sources", str(path), "--only", "feed-b"]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "crisiswatch.cli", *args, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while len(fetched) < 2:
                assert time.monotonic() < deadline and process.returncode is None, "the connector did not poll"
                await asyncio.sleep(0.05)
        finally:
            process.send_signal(signal.SIGINT)
            _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert "running 1 source(s): feed-b (rss)" in err.decode()
    assert set(fetched) == {"beta"}
    mentions_topic = settings.topic(MENTIONS_RAW.name)
    mentions = [Mention.model_validate_json(r.value) for r in await read_all(kafka_bootstrap, mentions_topic)]
    assert [(m.source, m.text) for m in mentions] == [("news", "Acme story on beta")]
    checkpoints = await read_all(kafka_bootstrap, settings.topic(CONNECTOR_CHECKPOINTS.name))
    assert {r.key for r in checkpoints} == {b"connector:rss:feed-b"}  # keyed by the entry's name


# --- kind: replay from the command line, killed and started again ------------------------------------------------
def test_replay_entry_options(tmp_path: Path) -> None:
    (tmp_path / "m.jsonl").write_text("", encoding="utf-8")
    path = tmp_path / "sources.yaml"
    path.write_text(
        "sources:\n  - {name: history, kind: replay, path: m.jsonl, speed: 60, reorder_window: null}\n"
        "  - {name: gone, kind: replay, path: missing.jsonl}\n",
        encoding="utf-8",
    )
    sources = load_sources(path)
    (replay,) = sources.build(Settings(), only="history")
    assert isinstance(replay, ReplayConnector) and replay.path == tmp_path / "m.jsonl"
    assert (replay.speed, replay.reorder_window, replay.save_every) == (60, None, 5000)
    assert replay.state is not None  # in Kafka, keyed connector:replay:history (the test below)
    with pytest.raises(SourcesFileError) as caught:
        sources.build(Settings())
    assert caught.value.problems == [f"gone (replay): path: file not found: {tmp_path / 'missing.jsonl'}"]


async def test_cli_replay_killed_with_sigkill_resumes_from_its_kafka_checkpoint(
    settings: Settings, tmp_path: Path
) -> None:
    assert settings.kafka.bootstrap_servers
    total, start = 400, datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    ids = [f"replay-{i:04d}" for i in range(total)]
    with (tmp_path / "m.jsonl").open("w", encoding="utf-8") as out:
        for i, mention_id in enumerate(ids):
            created = (start + timedelta(seconds=i)).isoformat()
            record = {"id": mention_id, "source": "news", "text": f"acme {i}", "created_at": created}
            out.write(json.dumps(record) + "\n")
    path = tmp_path / "sources.yaml"  # 400 s of event time at 100x: 4 s, a checkpoint every 40 records
    path.write_text(
        "sources:\n  - {name: history, kind: replay, path: m.jsonl, speed: 100, checkpoint_records: 40}\n",
        encoding="utf-8",
    )
    env = connect_env(settings)
    await ensure_topics(settings.kafka.bootstrap_servers, settings)
    bootstrap, key = settings.kafka.bootstrap_servers, b"connector:replay:history"
    mentions_topic, checkpoints_topic = settings.topic(MENTIONS_RAW.name), settings.topic(CONNECTOR_CHECKPOINTS.name)

    def done(records: list[Any]) -> list[int]:
        return [json.loads(r.value)["state"]["done"] for r in records if r.key == key]

    async with TopicWatch(bootstrap, mentions_topic) as raw, TopicWatch(bootstrap, checkpoints_topic) as saved:
        first = await start_connect(path, "history", env)
        try:
            await saved.until(lambda rs: any(n >= 120 for n in done(rs)))
        finally:
            await kill(first)
        await saved.until_end()
        await raw.until_end()
        resumed_from, sent_by_first = max(done(saved.records)), len(raw.records)
        assert resumed_from < total and sent_by_first < total, "killed mid-file"
        second = await start_connect(path, "history", env)
        await asyncio.wait_for(second.wait(), 60)  # the replay ends, and so does the command
        log = (tmp_path / "history.log").read_text(encoding="utf-8")
        assert second.returncode == 0, log[-4000:]
        await raw.until_end()
        await saved.until_end()

    assert f"replay m.jsonl: resuming after {resumed_from} records (checkpoint)" in log
    got = raw.keys()
    assert set(got) == set(ids), "nothing missing"
    repeated = {mention_id for mention_id in got if got.count(mention_id) > 1}
    assert repeated == set(ids[resumed_from:sent_by_first]), "repeats: exactly what was sent after the checkpoint"
    assert all(got.count(mention_id) <= 2 for mention_id in repeated)
    assert max(done(saved.records)) == total
