"""Social-media text primitives shared by the detectors: URLs, @handles, #hashtags, emoji, elongations.

Language identification wants the noise removed (`strip_social_noise`); sentiment wants it turned into
tokens it can learn from (`normalise_social`). Both are built from the same patterns, defined once here.
"""

from __future__ import annotations

import re
import unicodedata

URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
HANDLE_RE = re.compile(r"(?<![\w@])@\w{1,50}")
HASHTAG_RE = re.compile(r"(?<![\w#])#(\w+)")
ELONGATION_RE = re.compile(r"(\w)\1{2,}")
NUMBER_RE = re.compile(r"\b\d+(?:[.,:]\d+)*\b")
WHITESPACE_RE = re.compile(r"\s+")
_SPACES_RE = re.compile(r"[^\S\n]+")  # whitespace except the newline that separates texts in a batch
# Emoji, pictographs, dingbats, flags, variation selectors and joiners.
EMOJI_RE = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f1e6-\U0001f1ff\U00002300-\U000023ff"
    "\U00002b00-\U00002bff\ufe0e\ufe0f\u200d\u20e3]+"
)


def squeeze_elongations(text: str) -> str:
    """'soooo goooood' -> 'soo good': keep two of a run so emphasis stays visible but bounded."""
    return ELONGATION_RE.sub(r"\1\1", text)


def strip_social_noise(text: str) -> str:
    """Text with URLs, @handles, emoji and numbers removed, hashtags reduced to their word.

    What is left is the part of a post that carries its language; it can be empty.
    """
    return strip_social_noise_batch([text])[0]


def strip_social_noise_batch(texts: list[str]) -> list[str]:
    """`strip_social_noise` of many texts: each pattern runs once over the batch joined by newlines
    (no pattern matches across a newline), which costs about two thirds of one call per text."""
    joined = "\n".join(t.replace("\n", " ") if "\n" in t else t for t in texts)
    joined = URL_RE.sub(" ", joined)
    joined = HANDLE_RE.sub(" ", joined)
    joined = HASHTAG_RE.sub(r" \1 ", joined)
    joined = EMOJI_RE.sub(" ", joined)
    joined = NUMBER_RE.sub(" ", joined)
    joined = squeeze_elongations(joined)
    return [part.strip() for part in _SPACES_RE.sub(" ", joined).split("\n")]


def normalise_social(text: str) -> str:
    """Lower-cased text with URLs and handles replaced by placeholder tokens, for sentiment features."""
    text = unicodedata.normalize("NFKC", text)
    text = URL_RE.sub(" httpurl ", text)
    text = HANDLE_RE.sub(" @user ", text)
    text = squeeze_elongations(text)
    return WHITESPACE_RE.sub(" ", text).strip().lower()


def has_letters(text: str) -> bool:
    """True when the text holds at least one alphabetic character of any script."""
    return any(ch.isalpha() for ch in text)
