"""Owned media: a mention under a brand's own channel, post or ad (``owner`` set) is routed to that brand by
the enrich stage even when its text does not name it; an owner that is not a known brand is ignored."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from conftest import read_all

from crisiswatch.connectors.base import Backoff
from crisiswatch.connectors.platforms.youtube import YouTubeConnector
from crisiswatch.connectors.sink import MentionSink
from crisiswatch.contracts.records import EnrichedMention, Mention
from crisiswatch.contracts.topics import MENTIONS_ENRICHED
from crisiswatch.detectors.brands import parse_brands
from crisiswatch.kafka import ensure_topics
from crisiswatch.settings import Settings
from crisiswatch.stream.enrich_stage import EnrichStage
from crisiswatch.stream.enrichment import Enricher

BRANDS = parse_brands({"brands": [{"id": "acme", "terms": ["acme"]}, {"id": "globex", "terms": ["globex"]}]})


def mention(i: int, text: str, **extra: Any) -> Mention:
    return Mention.model_validate(
        {"id": f"yt:{i}", "source": "youtube", "text": text, "created_at": "2026-12-03T12:00:00Z", **extra}
    )


def test_owned_mentions_go_to_their_owner_and_unknown_owners_are_ignored() -> None:
    mentions = [
        mention(1, "this thing caught fire in my kitchen", owned=True, owner="acme"),
        mention(2, "this thing caught fire in my kitchen", owned=True, owner="initech"),  # not a watched brand
        mention(3, "switching to Acme after this", owned=True, owner="globex"),
        mention(4, "acme, fix this", owned=True, owner="acme"),
        mention(5, "this thing caught fire in my kitchen"),
    ]
    routed = [item.brands for item in Enricher(BRANDS).enrich(mentions)]
    assert routed == [["acme"], [], ["globex", "acme"], ["acme"], []]
    record = Enricher(BRANDS).enrich(mentions[:1])[0].to_model("acme")
    assert (record.brand, record.owned, record.owner) == ("acme", True, "acme")


async def test_an_owned_youtube_comment_without_the_brand_name_reaches_mentions_enriched_for_its_brand(
    settings: Settings, tmp_path: Path
) -> None:
    assert settings.kafka.bootstrap_servers
    brands = tmp_path / "brands.yaml"
    brands.write_text("brands:\n  - id: acme\n    terms: [acme]\n  - id: globex\n    terms: [globex]\n")
    settings = settings.model_copy(update={"brands_file": brands})
    posted = (datetime.now(UTC) - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    channel, video, comment = "UCacmeOfficial0000000001", "aCmEx200ad1", "UgxOwnedNoBrandName1AaABAg"
    thread = {
        "kind": "youtube#commentThread",
        "etag": "t",
        "id": comment,
        "snippet": {
            "channelId": channel,
            "videoId": video,
            "topLevelComment": {
                "kind": "youtube#comment",
                "etag": "c",
                "id": comment,
                "snippet": {
                    "channelId": channel,
                    "videoId": video,
                    "textDisplay": "this thing literally caught fire, never again",
                    "textOriginal": "this thing literally caught fire, never again",
                    "authorDisplayName": "@burnt_toast",
                    "authorChannelId": {"value": "UCburnt0000000000000001"},
                    "canRate": True,
                    "viewerRating": "none",
                    "likeCount": 230,
                    "publishedAt": posted,
                    "updatedAt": posted,
                },
            },
            "canReply": True,
            "totalReplyCount": 0,
            "isPublic": True,
        },
    }

    async def threads(request: web.Request) -> web.Response:
        assert request.query["allThreadsRelatedToChannelId"] == channel
        return web.json_response({"kind": "youtube#commentThreadListResponse", "items": [thread]})

    app = web.Application()
    app.router.add_get("/youtube/v3/commentThreads", threads)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    await ensure_topics(settings.kafka.bootstrap_servers, settings)
    try:
        async with MentionSink(settings, settings.kafka.bootstrap_servers) as sink:
            connector = YouTubeConnector(
                "test-key",
                owned_channels={channel: "acme"},
                base_url=str(server.make_url("/youtube/v3")),
                backoff=Backoff(0.05, 0.2),
            )
            assert await connector.poll_once(sink) == 1
            await connector.aclose()
    finally:
        await server.close()

    stage = EnrichStage(settings, settings.kafka.bootstrap_servers)
    await stage.start()
    try:
        deadline = time.monotonic() + 120
        records: list[Any] = []
        while not records:
            assert time.monotonic() < deadline, "the owned comment never reached mentions.enriched"
            records = await read_all(settings.kafka.bootstrap_servers, settings.topic(MENTIONS_ENRICHED.name), 0.5)
            if not records:
                await asyncio.sleep(0.2)
    finally:
        await stage.stop()
    [record] = records
    enriched = EnrichedMention.model_validate_json(record.value)
    assert record.key == b"acme" and enriched.brand == "acme" and enriched.brands == ["acme"]
    assert enriched.id == f"youtube:{comment}" and enriched.owned and enriched.owner == "acme"
    assert enriched.context is not None and (enriched.context.post, enriched.context.channel) == (video, channel)
