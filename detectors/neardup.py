"""Near-duplicate folding: retweets, syndicated copies and copy-paste campaigns become one story.

`story_key` maps a text to a 64-bit key that near-duplicates share, so that counting distinct keys
counts stories rather than copies:

1. **Body.** Retweet/quote prefixes ("RT @x:", "MT @x", "via @x:") go, and so does a trailing run of
   hashtags, @handles, URLs, emoji and punctuation ("… #fail https://t.co/x"), and a short trailing
   " - Outlet Name" / " | Outlet" credit line of a syndicated headline. A text cut short with "…" glued
   to its last word loses that possibly cut word.
2. **Tokens.** What is left is lower-cased and split into words (URLs, @handles and numbers dropped,
   hashtags kept as words; Devanagari and Arabic marks stay inside their words). Only the first
   ``PREFIX_TOKENS`` words count: copies that differ only further on (truncated retweets, appended
   comments, tails) fold together.
3. **Bottom-2 MinHash.** The word trigrams (3-shingles) of those words are hashed with simple
   tabulation (three random 64-bit values per word, XOR-ed) and the key is the mix of the *two*
   smallest hashes, so that keys are uniform 64-bit integers (which `window.DistinctCounter`'s KMV
   estimate relies on). Texts of at most three words hash as a whole.

Copies that differ only by noise (retweets, syndication, links, handles, case, emoji) always share the
key. Two texts that differ by an edit share it when the two smallest trigram hashes of their union fall
in the trigrams they share: about (Jaccard)^2, 0.45 for a one-word edit in a tweet; a campaign of
100 copies with one or two edits each folds into about 25 stories. Why not the single smallest hash
(one-permutation MinHash, P = Jaccard)? Because then *distinct* texts that merely share a phrase fold
too, whenever that phrase holds the smallest hash: in a crisis, hundreds of different posts saying
"acme data breach" could count as a handful of stories, by the luck of one hash value. Requiring the two
smallest hashes to agree keeps such organic posts apart (measured: 99% stay distinct on average, 96%
at the 5th percentile over phrases and hash seeds, against 91% and 54% for one hash), at the cost of
folding edited copies somewhat less. `crisiswatch bench risk` measures both sides.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from itertools import islice
from operator import xor

from crisiswatch.detectors.text import HANDLE_RE, URL_RE

PREFIX_TOKENS = 16
"""Only the first words of a text take part in its key."""
_SHINGLE = 3
_MAX64 = (1 << 64) - 1
_CACHE_LIMIT = 300_000

_PREFIX_NOISE = re.compile(r"^(?:\s*(?:rt|mt|via)\b\s*(?:@\w+)?\s*:?)+", re.IGNORECASE)
_OUTLET = re.compile(r"\s[-|–—·•]\s++[^\s\-|–—·•.!?]++(?:\s++[^\s\-|–—·•.!?]++){0,4}+\s*+$")
"""A short credit line at the very end: " - Reuters", " | BBC News" (possessive: searched on every text)."""
_MARKS = "\u0900-\u0963\u0966-\u097f\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed"
_TOKENS = re.compile(rf"[^\W\d][\w{_MARKS}]*")
_HAS_WORD = re.compile(r"[^\W\d_]")
_NOISE_STARTS = ("http://", "https://", "www.", "#", "@", "…")
_NOISE_WORDS = frozenset({"via", "rt", "mt", "cc"})
_NEEDS_NFKC = re.compile("[\ufb00-\uffff\U0001d400-\U0001d7ff]")
_SPACES = re.compile(r"\s+")

_H1: dict[str, int] = {}
_H2: dict[str, int] = {}
_H3: dict[str, int] = {}


def _hash64(data: str) -> int:
    return int.from_bytes(hashlib.blake2b(data.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def _mix64(x: int) -> int:
    """SplitMix64 finaliser: a bijection on 64-bit integers that spreads a biased minimum uniformly."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MAX64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MAX64
    return x ^ (x >> 31)


def _learn(words: set[str]) -> None:
    """Add the tabulation hashes of unseen words to the (bounded) caches."""
    if len(_H1) > _CACHE_LIMIT:  # bounded memory: start over (values are deterministic, only speed is lost)
        _H1.clear()
        _H2.clear()
        _H3.clear()
    for word in words:
        digest = hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=24).digest()
        _H1[word] = int.from_bytes(digest[:8], "little")
        _H2[word] = int.from_bytes(digest[8:16], "little")
        _H3[word] = int.from_bytes(digest[16:], "little")


def _is_noise(chunk: str) -> bool:
    return chunk.startswith(_NOISE_STARTS) or chunk.lower() in _NOISE_WORDS or not _HAS_WORD.search(chunk)


def story_body(text: str) -> str:
    """The part of a text that identifies its story: no retweet prefix, noisy tail or outlet credit."""
    if _NEEDS_NFKC.search(text):
        text = unicodedata.normalize("NFKC", text)
    text = _PREFIX_NOISE.sub("", text, count=1).strip()
    head, _, last = text.rpartition(" ")
    while head and _is_noise(last):  # trailing hashtags, links, handles, emoji, "via"
        text = head.rstrip()
        head, _, last = text.rpartition(" ")
    if head and last.endswith(("…", "...")):  # cut short: the last word may be cut too
        text = head.rstrip()
    outlet = _OUTLET.search(text, max(0, len(text) - 60))
    if outlet is not None and outlet.start() >= 24:
        text = text[: outlet.start()]
    return text


def story_tokens(text: str) -> list[str]:
    """The lower-cased words of the story body that its key is computed from (at most ``PREFIX_TOKENS``)."""
    body = story_body(text)
    if "http" in body or "www." in body:
        body = URL_RE.sub(" ", body)
    if "@" in body:
        body = HANDLE_RE.sub(" ", body)
    return _TOKENS.findall(body.lower())[:PREFIX_TOKENS]


def story_key(text: str) -> int:
    """64-bit key shared by near-duplicate texts (uniformly distributed over distinct stories)."""
    words = story_tokens(text)
    if len(words) <= _SHINGLE:
        if not words:  # nothing but noise: fold only exact repeats of the noise
            return _mix64(_hash64(_SPACES.sub(" ", text.strip().lower())))
        return _mix64(_hash64(" ".join(words)))
    try:
        lowest = _sorted_shingles(words)
    except TypeError:  # a word not in the caches yet (``dict.get`` gave None)
        _learn(set(words))
        lowest = _sorted_shingles(words)
    return _mix64(lowest[0] ^ _mix64(lowest[1]))


def _sorted_shingles(words: list[str]) -> list[int]:
    """Simple-tabulation hashes of the word trigrams, sorted (all iteration in C)."""
    pairs = map(xor, map(_H1.get, words), map(_H2.get, islice(words, 1, None)))
    return sorted(map(xor, pairs, map(_H3.get, islice(words, 2, None))))
