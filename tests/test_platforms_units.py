"""Record shapes and schedules of the streaming platform connectors, without servers."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crisiswatch.connectors.mapping import MappingError
from crisiswatch.connectors.platforms._common import newer, reset_delay
from crisiswatch.connectors.platforms.bluesky import post_to_mention
from crisiswatch.connectors.platforms.mastodon import MastodonConnector, status_to_mention
from crisiswatch.connectors.platforms.x import XBackoff, XReconnect, brand_rule, tweet_to_mention
from crisiswatch.detectors.brands import TermSet

FIXTURES = Path(__file__).parent / "fixtures" / "platforms"
STATUS = json.loads((FIXTURES / "mastodon_status.json").read_text(encoding="utf-8"))
JETSTREAM = [json.loads(line) for line in (FIXTURES / "jetstream_events.jsonl").read_text().splitlines()]
TWEET = json.loads((FIXTURES / "x_stream_tweet.json").read_text(encoding="utf-8"))
NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def test_x_backoff_follows_the_documented_schedules() -> None:
    backoff = XBackoff()
    assert [backoff.network() for _ in range(66)][::13] == [0.25, 3.5, 6.75, 10.0, 13.25, 16.0]
    assert [backoff.http() for _ in range(8)] == [5, 10, 20, 40, 80, 160, 320, 320]
    assert [backoff.rate_limited(None) for _ in range(3)] == [60, 120, 240]
    backoff.reset()
    assert backoff.rate_limited(300.0) == 300.0  # x-rate-limit-reset later than the exponential delay wins
    assert backoff.network() == 0.25 and backoff.http() == 5
    assert XBackoff(XReconnect(http_initial=0.1, http_max=0.3)).http() == 0.1


def test_x_rule_of_a_brand_quotes_phrases_and_negates_exclusions() -> None:
    brand = TermSet("acme", ("acme", "#acme", "@acme", 'acme "pro" blender'), ("acme tools",))
    assert brand_rule(brand) == '(acme OR #acme OR @acme OR "acme pro blender") -"acme tools" -is:retweet'
    assert brand_rule(TermSet("solo", ("initech",)), include_retweets=True) == "initech"


def test_tweet_without_language_or_username_and_with_quote() -> None:
    tweet = copy.deepcopy(TWEET["data"])
    tweet.update(id="7", lang="und", conversation_id="7", referenced_tweets=[{"type": "quoted", "id": "5"}])
    mention = tweet_to_mention(tweet, {}, NOW)
    assert mention.id == "x:7" and mention.lang is None and mention.url == "https://x.com/i/web/status/7"
    assert mention.context is not None and (mention.context.quotes, mention.context.root) == ("x:5", None)
    with pytest.raises(MappingError):
        tweet_to_mention({"id": "8", "text": "no date"}, {}, NOW)


def test_mastodon_content_warning_first_and_remote_accounts_keep_their_instance() -> None:
    status = copy.deepcopy(STATUS)
    status.update(spoiler_text="acme recall", content="<p>details &lt;here&gt;</p>")
    status["account"]["acct"] = "bob@other.example"
    mention = status_to_mention(status, "social.example", NOW)
    assert mention.text == "acme recall\ndetails <here>"
    assert mention.author is not None and mention.author.handle == "bob@other.example"
    with pytest.raises(MappingError):
        status_to_mention({"id": "1", "created_at": "yesterday"}, "social.example", NOW)


def test_mastodon_endpoints_of_each_timeline() -> None:
    public = MastodonConnector("https://m.example/", timeline="public", local=True, search=["acme"])
    assert public.stream_request() == ("https://m.example/api/v1/streaming/public/local", {})
    assert [(u, s) for u, _, s in public.catch_up_requests()] == [
        ("https://m.example/api/v1/timelines/public", "since_id"),
        ("https://m.example/api/v2/search", "min_id"),
    ]
    lists = MastodonConnector("https://m.example", timeline="list", list_id="42", token="t")
    assert lists.stream_request() == ("https://m.example/api/v1/streaming/list", {"list": "42"})
    assert lists.headers["Authorization"] == "Bearer t" and lists.channel == "list:42"


def test_jetstream_post_with_a_quote_and_without_langs() -> None:
    event = copy.deepcopy(JETSTREAM[2])
    event["commit"].update(rkey="3k")
    event["commit"]["record"].update(text="acme", langs=[])
    event["commit"]["record"].pop("reply")
    quoted = {"uri": "at://did:plc:q/app.bsky.feed.post/1", "cid": "c"}
    event["commit"]["record"]["embed"] = {"$type": "app.bsky.embed.record", "record": quoted}
    mention = post_to_mention(event, NOW)
    assert mention.lang is None and mention.context is not None
    assert (
        mention.context.quotes == "bluesky:at://did:plc:q/app.bsky.feed.post/1" and mention.context.in_reply_to is None
    )


def test_ids_order_and_reset_headers() -> None:
    assert newer("100", "99") and not newer("99", "100") and newer("5", None) and not newer(None, "5")
    assert reset_delay("1700000010", now=1700000000.0) == 10.0  # X: epoch seconds
    assert reset_delay("2023-11-14T22:13:30.000Z", now=1700000000.0) == 10.0  # Mastodon: ISO 8601
    assert reset_delay("soon") is None and reset_delay(None) is None
