"""Turning per-minute counts into mentions: times, authors, metrics, texts, and replay-format JSON lines.

Everything random is drawn in arrays per (brand, day, component) from a generator seeded by those
numbers, so a corpus is the same bytes for the same seed whatever the chunking. Lines are built as
strings (no dict per mention); the id and url are added once the day's lines are in time order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from crisiswatch.contracts.vocabulary import SENTIMENTS
from crisiswatch.scenarios.events import Component, bot_text
from crisiswatch.scenarios.phrases import (
    BOT,
    CHATTER,
    CITIES,
    COMPETITOR,
    CRISIS,
    LAUNCH,
    NEWS,
    SECTOR,
    STORY_NOUNS,
    VIRAL,
)
from crisiswatch.scenarios.profiles import SOURCES, BrandSpec
from crisiswatch.scenarios.texts import TextPools, join, name_brand, vary

AUDIENCE = 400_000
"""Size of the pool of ordinary accounts (activity is skewed: a few post often, most rarely)."""
CHATTER_SHARE = 0.015
LANG_FIELD_SHARE = 0.08
TWITTER_EPOCH_MS = 1288834974657
OUTLETS = (
    ("Daily Ledger", "dailyledger.example"), ("Tech Wire", "techwire.example"), ("Morning Post", "morningpost.example"),
    ("Global Times Wire", "gtwire.example"), ("City Herald", "cityherald.example"),
    ("Market Watchers", "marketwatchers.example"), ("The Courier", "courier.example"),
    ("Evening Star", "eveningstar.example"), ("Metro News", "metronews.example"),
    ("Business Today", "businesstoday.example"), ("Finance Daily", "financedaily.example"),
    ("El Diario Digital", "eldiario.example"), ("Le Journal du Soir", "journaldusoir.example"),
    ("Tagesblick", "tagesblick.example"), ("Il Corriere Web", "corriereweb.example"),
    ("Folha Online", "folhaonline.example"), ("Al Khabar Today", "alkhabar.example"),
    ("Samachar Now", "samachar.example"),
)  # fmt: skip
_SYLLABLES = (
    "ka", "lo", "mi", "ra", "ten", "vo", "zu", "bel", "dan", "fi", "gro", "ha", "jo", "kev", "lin", "mar", "nel",
    "ori", "pat", "que", "ros", "sam", "tia", "ul", "val", "wen", "xa", "yan", "zed", "ami", "bo", "cru",
)  # fmt: skip
LABEL_NAMES = SENTIMENTS


def handle_of(index: int) -> str:
    """A stable, plausible handle for account ``index`` of the ordinary pool."""
    n = len(_SYLLABLES)
    a, b, c = index % n, (index // n) % n, (index // (n * n)) % n
    return f"{_SYLLABLES[a]}{_SYLLABLES[b]}{_SYLLABLES[c]}{index // (n * n * n) % 1000}"


@dataclass
class Row:
    """A rendered mention before it gets its id: event time (ms from the corpus start), source, url key, body."""

    t_ms: int
    source: int
    who: str
    body: str


class Renderer:
    """Renders mentions of one corpus."""

    def __init__(self, brands: list[BrandSpec], pools: TextPools, start: datetime, seed: int):
        self.brands = brands
        self.pools = pools
        self.start = start
        rng = np.random.default_rng([seed, 0xA0])
        self.followers = np.minimum(np.round(rng.lognormal(5.5, 1.8, AUDIENCE)), 5e7).astype(np.int64)
        self.outlet_followers = np.round(rng.lognormal(11.3, 1.1, len(OUTLETS))).astype(np.int64)
        self._minute_prefix: dict[int, str] = {}

    # --- helpers ----------------------------------------------------------------------------------
    def iso(self, t_ms: int) -> str:
        minute, ms = divmod(t_ms, 60_000)
        prefix = self._minute_prefix.get(minute)
        if prefix is None:
            prefix = (self.start + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:")
            if len(self._minute_prefix) > 4096:
                self._minute_prefix.clear()
            self._minute_prefix[minute] = prefix
        return f"{prefix}{ms // 1000:02d}.{ms % 1000:03d}Z"

    def _tweet(self, lang: str, label: int, u: float) -> str:
        pool = self.pools.pools[lang][label]
        return pool[int(u * len(pool))]

    # --- texts -----------------------------------------------------------------------------------
    def text(self, comp: Component | None, brand: BrandSpec, lang: str, label: int, u: np.ndarray) -> str:
        """One mention's text; ``u`` holds eight uniforms."""
        kind = comp.text if comp is not None else "ordinary"
        name, handle = brand.name, brand.handle
        if kind == "ordinary":
            tweet = self._tweet(lang, label, u[0])
            if u[1] < CHATTER_SHARE:
                phrases = CHATTER.get(lang, CHATTER["en"])
                text = join(phrases[int(u[2] * len(phrases))].format(b=name), tweet, u[3])
            elif u[1] < CHATTER_SHARE + brand.sector_share:
                by_lang = SECTOR[brand.sector]
                phrases = by_lang.get(lang, by_lang["en"])
                text = join(phrases[int(u[2] * len(phrases))].format(b=name), tweet, u[3])
            else:
                text = name_brand(tweet, name, handle if u[4] < 0.8 else f"{handle}_help", u[2], u[3])
            return vary(text, u[5], u[6])
        assert comp is not None
        if kind in ("crisis", "original"):
            nouns = STORY_NOUNS[comp.story or "data_breach"][lang]
            noun = nouns[int(u[1] * len(nouns))]
            tweet = self._tweet(lang, label, u[0])
            if comp.related is not None and u[7] < comp.related_share:
                other = self.brands[comp.related].name
                phrases = COMPETITOR[lang]
                phrase = phrases[int(u[2] * len(phrases))].format(x=name, y=other, n=noun)
            else:
                phrases = CRISIS[lang]
                phrase = phrases[int(u[2] * len(phrases))].format(b=name, n=noun)
            if kind == "original":  # the story first: reshares quote its beginning
                return join(phrase, tweet, 0.0)
            return vary(join(phrase, tweet, u[3]), u[5], u[6])
        if kind == "reshare":
            original = comp.parent.fixed_text if comp.parent is not None else None
            assert original is not None and comp.celebrity is not None, "a reshare needs its original first"
            return f"RT {comp.celebrity[0]}: {_clip(original, 120)}"
        if kind == "bot":
            lang_t, index = comp.bot_template
            return bot_text(BOT[lang_t][index].format(b=name), u[0], u[1], u[2])
        if kind == "news":
            headlines = NEWS.get(lang, NEWS["en"])
            headline = headlines[int(u[1] * len(headlines))].format(b=name, c=CITIES[int(u[2] * len(CITIES))])
            if label != 1:
                return vary(name_brand(self._tweet(lang, label, u[0]), name, handle, u[3], u[4]), u[5], u[6])
            if u[3] < 0.5:
                return f"{headline} - {OUTLETS[int(u[4] * len(OUTLETS))][0]}"
            return vary(join(headline, self._tweet(lang, 1, u[0]), u[4]), u[5], u[6])
        table = VIRAL if kind == "viral" else LAUNCH
        if (kind == "viral" and label == 2) or (kind == "launch" and label != 0):
            phrases = table.get(lang, table["en"])
            phrase = phrases[int(u[1] * len(phrases))].format(b=name, p=comp.product)
            return vary(join(phrase, self._tweet(lang, label, u[0]), u[3]), u[5], u[6])
        return vary(name_brand(self._tweet(lang, label, u[0]), name, handle, u[2], u[3]), u[5], u[6])

    # --- a batch of mentions ------------------------------------------------------------------------
    def render(
        self,
        rng: np.random.Generator,
        brand: BrandSpec,
        comp: Component | None,
        minutes: np.ndarray,
        counts: np.ndarray,
        on_related: list[int] | None = None,
    ) -> list[Row]:
        """The mentions of one component of one brand over ``minutes`` (``counts`` per minute)."""
        n = int(counts.sum())
        if n == 0:
            return []
        t_ms = np.repeat(minutes.astype(np.int64) * 60_000, counts) + rng.integers(0, 60_000, n)
        sentiment = comp.sentiment if comp is not None else brand.sentiment
        languages = comp.languages if comp is not None else brand.languages
        sources = comp.sources if comp is not None else brand.sources
        langs = list(languages)
        lang_idx = rng.choice(len(langs), size=n, p=_norm(list(languages.values())))
        labels = rng.choice(3, size=n, p=_norm(list(sentiment)))
        src_names = list(sources)
        src_idx = rng.choice(len(src_names), size=n, p=_norm(list(sources.values())))
        uniforms = rng.random((n, 8))
        extra = rng.random((n, 4))
        audience = (brand.audience + (AUDIENCE * rng.random(n) ** 2).astype(np.int64)) % AUDIENCE
        outlet = (extra[:, 0] * len(OUTLETS)).astype(np.int64)
        is_tw = src_idx == src_names.index("twitter") if "twitter" in src_names else np.zeros(n, dtype=bool)
        is_news = src_idx == src_names.index("news") if "news" in src_names else np.zeros(n, dtype=bool)
        authors = comp.authors if comp is not None else "crowd"
        followers = np.where(is_tw, self.followers[audience], 0)
        followers = np.where(is_news, self.outlet_followers[outlet], followers)
        bot_account = np.zeros(n, dtype=np.int64)
        if authors == "bots" and comp is not None:
            accounts = np.array(comp.bot_accounts, dtype=np.int64)
            bot_account = accounts[(extra[:, 0] * accounts.size).astype(np.int64)]
            followers = 5 + bot_account % 75
        elif authors == "celebrity" and comp is not None and comp.celebrity is not None:
            followers = np.full(n, comp.celebrity[1])
        ln = rng.lognormal(0.0, 1.2, n)
        is_reddit = src_idx == src_names.index("reddit") if "reddit" in src_names else np.zeros(n, dtype=bool)
        social = is_tw | (authors != "crowd")
        likes = rng.poisson(np.where(social, 0.004 * followers * ln + 0.3, np.where(is_news, 20 * ln, 6 * ln)))
        likes = np.where(is_reddit, likes * 3, likes)
        shares = rng.poisson(np.where(social, 0.2 * likes, np.where(is_news, 8 * ln, 0.0)))
        replies = rng.poisson(np.where(social, 0.08 * likes + 0.1, np.where(is_news, 3 * ln, 2 * ln)))
        reach = np.where(social, followers * (0.2 + 1.3 * extra[:, 2]), followers * (0.02 + 0.2 * extra[:, 2]))
        has_reach = np.where(social, extra[:, 3] < 0.1, is_news & (extra[:, 3] < 0.5))
        rows: list[Row] = []
        rt_share = comp.rt_share if comp is not None else 0.0
        related = self.brands[comp.related].name.casefold() if comp is not None and comp.related is not None else None
        own = brand.name.casefold()
        for i in range(n):
            lang = langs[lang_idx[i]]
            source = src_names[src_idx[i]]
            text = self.text(comp, brand, lang, int(labels[i]), uniforms[i])
            f = int(followers[i])
            if authors == "celebrity" and comp is not None and comp.celebrity is not None:
                handle = comp.celebrity[0]
                author = f'{{"id":"tw_{hash_str(handle)}","handle":"{handle}","followers":{f}}}'
                who = handle[1:]
                if comp.fixed_text is None:
                    comp.fixed_text = text
            elif authors == "bots":
                account = int(bot_account[i])
                who = f"deal_alert_{account % 100000:05d}"
                author = f'{{"id":"tw_{account}","handle":"@{who}","followers":{f}}}'
            elif source == "news":
                name, who = OUTLETS[outlet[i]]
                author = f'{{"id":"news_{who}","handle":"{name}","followers":{f}}}'
            else:
                a = int(audience[i])
                who = handle_of(a)
                if source == "twitter":
                    author = f'{{"id":"tw_{a}","handle":"@{who}","followers":{f}}}'
                else:
                    author = f'{{"id":"{source[:2]}_{a}","handle":"{who}"}}'
            if rt_share and comp is not None and source == "twitter":
                if comp.recent and extra[i, 1] < rt_share:
                    rt_handle, rt_text = comp.recent[int(extra[i, 2] * len(comp.recent))]
                    text = f"RT @{rt_handle}: {_clip(rt_text, 120)}"
                elif own not in _clip(text, 120).casefold():
                    pass  # a reshare would cut the brand off: not quoted
                elif len(comp.recent) < 40:
                    comp.recent.append((who, text))
                else:
                    comp.recent[int(extra[i, 2] * 40)] = (who, text)
            if related is not None and on_related is not None and related in text.casefold():
                on_related[0] += 1
            metrics = f'"likes":{likes[i]},"shares":{shares[i]},"replies":{replies[i]}'
            if has_reach[i]:
                metrics += f',"reach":{max(1, int(reach[i]))}'
            body = (
                f'"text":{json.dumps(text, ensure_ascii=False)},"created_at":"{self.iso(int(t_ms[i]))}",'
                f'"author":{author},"metrics":{{{metrics}}}'
            )
            if source == "twitter" and extra[i, 3] > 1 - LANG_FIELD_SHARE:
                body += f',"lang":"{lang}"'
            rows.append(Row(int(t_ms[i]), _SOURCE_INDEX[source], who, body))
        return rows


_SOURCE_INDEX = {s: i for i, s in enumerate(SOURCES)}


def hash_str(text: str) -> int:
    """A stable small hash (Python's own is salted per process)."""
    h = 2166136261
    for ch in text.encode():
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _norm(p: list[float]) -> np.ndarray:
    arr = np.asarray(p, dtype=float)
    return arr / arr.sum()


def line(row: Row, seq: int, start_ms: int) -> str:
    """The replay-format JSON line of a row, with its id and url."""
    source = SOURCES[row.source]
    snowflake = ((start_ms + row.t_ms - TWITTER_EPOCH_MS) << 22) | (seq & 0x3FFFFF)
    if source == "twitter":  # the id is the url's status number: no url, to keep the file small
        return f'{{"id":"{source}:{snowflake}","source":"{source}",{row.body}}}\n'
    if source == "reddit":
        url = f"https://www.reddit.com/comments/{_b36(snowflake)}/"
    elif source == "news":
        url = f"https://{row.who}/a/{_b36(snowflake)}"
    elif source == "forum":
        url = f"https://community.forum.example/t/{_b36(snowflake)}"
    else:
        url = f"https://reviews.example/r/{_b36(snowflake)}"
    return f'{{"id":"{source}:{snowflake}","source":"{source}","url":"{url}",{row.body}}}\n'


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(digits[r])
    return "".join(reversed(out)) or "0"
