"""Near-duplicate folding: retweets, syndicated copies and copy-paste campaigns become one story.

`story_key` maps a text to a 64-bit key that near-duplicates share: the text is stripped of social
noise and retweet prefixes, lower-cased, split into word shingles, and the minimum hash over the
shingles is taken (a one-permutation MinHash: two texts share it with probability equal to the
Jaccard similarity of their shingle sets, 1 for identical bodies).
"""

from __future__ import annotations

import hashlib
import re

from detectors.text import strip_social_noise

_RT_PREFIX = re.compile(r"^\s*(?:rt|via)\b[:\s]*", re.IGNORECASE)
_WORD = re.compile(r"\w+")
_SHINGLE = 3


def _hash64(data: str) -> int:
    return int.from_bytes(hashlib.blake2b(data.encode("utf-8"), digest_size=8).digest(), "little")


def story_key(text: str) -> int:
    """64-bit key shared by near-duplicate texts."""
    words = _WORD.findall(strip_social_noise(_RT_PREFIX.sub("", text)).lower())
    if len(words) <= _SHINGLE:
        return _hash64(" ".join(words))
    return min(_hash64(" ".join(words[i : i + _SHINGLE])) for i in range(len(words) - _SHINGLE + 1))
