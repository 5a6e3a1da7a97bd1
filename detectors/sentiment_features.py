"""Fast, deterministic text features for the sentiment model: hashed word and character n-grams.

A batch of texts is normalised as ONE joined string (regular expressions run once per batch, not once per
text), then turned into hashed features with numpy: word uni-/bi-grams (CRC-32 of each token, mixed) and
character n-grams inside word boundaries (a polynomial rolling hash over the code points). Nothing is
learnt here, so the model artifact only needs the weight matrix and these hyper-parameters.

Social-media specifics, on top of `detectors.text`:
- literal ``\\u2019`` escapes and HTML entities (``&amp;``) are decoded;
- URLs become ``httpurl`` and handles ``@user`` (as in `normalise_social`), elongations are squeezed;
- emoticons (``:)``, ``:-(``, ``xD``, ``<3`` …) become polarity tokens ``emopos``/``emoneg``;
- common emoji keep their own token and gain the same polarity token;
- up to three words after a negator (not, n't, ne/pas, nicht/kein, non, não, no/nunca, لا/ما, nahi …)
  are marked with a leading ``¬`` so "not good" and "good" get different features.

With ``lexicon_hashes`` (a word-polarity lexicon, `detectors.sentiment_static`) a third block counts the
lexicon's words, plain and negated, one exact column per word (no hashing collisions).
"""

from __future__ import annotations

import html
import re
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import scipy.sparse as sp

from crisiswatch.detectors.text import EMOJI_RE, URL_RE

SEPARATOR = "\ue000"  # private-use code point between the texts of a batch: not \s, not \w
NEGATION_MARK = "¬"
MAX_CHARS = 1_000  # longer texts are cut: a tweet-sized model gains nothing from more

_ESCAPE_RE = re.compile(r"\\u([0-9a-fA-F]{4})")
# Same URLs as detectors.text.URL_RE; the batch is lower-cased first, so the case-sensitive form (much
# faster in Python's re) finds the same spans.
_URL_RE = re.compile(URL_RE.pattern)
# Same handles as detectors.text.HANDLE_RE, with the look-behind after the '@' so re can scan for '@' fast.
_HANDLE_RE = re.compile(r"@(?<![\w@]@)\w{1,50}")
_EMOJI_CHAR_RE = re.compile(EMOJI_RE.pattern[:-1])  # one emoji per match instead of a run

# fmt: off
_POSITIVE_EMOTICONS = (
    ":)", ":-)", ":))", ":)))", ":]", "=)", "=]", ":d", ":-d", "=d", ";)", ";-)", ";d", ":p", ":-p", ";p",
    "xd", "xdd", "xddd", "x-d", ":3", ":*", ":-*", "<3", "<33", "^^", "^_^", "^.^", "(:", "(;", "8)", "8-)",
    ":o)", ":')", "\\o/",
)
_NEGATIVE_EMOTICONS = (
    ":(", ":-(", ":((", ":(((", ":[", "=(", ":'(", ":'-(", "='(", ";(", "d:", "d8", ":/", ":-/", ":\\",
    ":-\\", "=/", ":|", ":-|", ">:(", ">:-(", ":@", "</3", "-_-", "-.-", "t_t", "t.t", ";_;", "):", ":c",
    ":-c", "x(", "u_u",
)
# fmt: on
_EMOTICON_POLARITY = {e: "emopos" for e in _POSITIVE_EMOTICONS} | {e: "emoneg" for e in _NEGATIVE_EMOTICONS}
# Emoticons that start with a symbol are found by one regex (fast: it scans for the first symbols); the
# few that are words ("xd") are found as words.
_EMOTICON_RE = re.compile(
    "(?:"
    + "|".join(re.escape(e) for e in sorted(_EMOTICON_POLARITY, key=len, reverse=True) if not e[0].isalnum())
    + r")(?=[\s.,!?]|$)"
)
_WORD_EMOTICONS = tuple(e for e in _EMOTICON_POLARITY if e[0].isalnum() and e.isalnum())
# Polarity of frequent emoji (after the Emoji Sentiment Ranking of Kralj Novak et al., 2015).
_POSITIVE_EMOJI = (
    "😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙😚☺🙂🤗🤩🥳😇😻😸😹😺😽👍👏🙌💪🎉🎊🎈🎁❤💕💖💗💙💚💛💜🧡🤍💓💞💘💝"
    "♥✨🔥💯🌹🌸🌺💐👌✌🙏⭐🌟🏆🥇😌😏🤤👑💋🍾🥂🤘💃🕺☀🌞😛😜😝"
)
_NEGATIVE_EMOJI = "😞😟😠😡🤬😢😭😤😩😫😖😣😔😕🙁☹😒😬😰😱😨😧😦💔👎🤮🤢😷🙄😪😓🖕💩🤦😿😾🤯😵🥺😥😑⚠❌🚫🤡🐍🤥"
_EMOJI_POLARITY = {e: "emopos" for e in _POSITIVE_EMOJI} | {e: "emoneg" for e in _NEGATIVE_EMOJI}

# Negators that flip what follows, by language. Words are matched whole, after lower-casing.
# fmt: off
NEGATORS: dict[str, tuple[str, ...]] = {
    # "t" is what tokenising leaves of n't: "don't" -> "don", "t".
    "en": ("not", "no", "never", "t", "nothing", "nobody", "none", "nor", "neither", "cannot", "without",
           "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "cant", "couldnt", "wont",
           "wouldnt", "shouldnt", "aint", "havent", "hasnt", "hadnt"),
    "fr": ("ne", "n", "pas", "jamais", "rien", "aucun", "aucune", "sans"),
    "de": ("nicht", "kein", "keine", "keinen", "keiner", "keinem", "keines", "nie", "niemals", "nichts",
           "ohne", "nix"),
    "es": ("no", "nunca", "jamás", "jamas", "nada", "ni", "tampoco", "sin", "nadie", "ningún", "ninguna"),
    "it": ("non", "mai", "niente", "nulla", "nessuno", "nessuna", "né", "senza"),
    "pt": ("não", "nao", "nunca", "nem", "nada", "jamais", "sem", "ninguém", "nenhum", "nenhuma"),
    "ar": ("لا", "ما", "لم", "لن", "ليس", "ليست", "مش", "مو", "مب", "بدون", "غير"),
    "hi": ("nahi", "nahin", "nhi", "nai", "mat", "na", "naa", "नहीं", "नही", "न", "मत", "बिना"),
}
# fmt: on
NEGATOR_WORDS = frozenset(w for words in NEGATORS.values() for w in words)
NEGATION_SCOPE = 3  # words after a negator that are marked as negated

# Tokens for the word features: separator, words ("don't" -> "don", "t"), emoji, '!' and '?', and the
# punctuation that ends a negation scope (dropped from the features).
_TOKEN_RE = re.compile(SEPARATOR + r"|\w+|" + _EMOJI_CHAR_RE.pattern + r"|[!?.,;:]")
_SCOPE_END = frozenset((SEPARATOR, ".", ",", ";", ":", "!", "?", "emopos", "emoneg"))
_NOT_A_FEATURE = frozenset((SEPARATOR, ".", ",", ";", ":"))

_CHAR_BASE = np.uint64(1_000_003)
_NEGATED_SALT = np.uint64(0xA5A5_0000_0000)
_WORD_CHAR_TABLE: np.ndarray | None = None


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads a 64-bit hash over all bits (uint64 arithmetic wraps silently)."""
    h = h ^ (h >> np.uint64(31))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(29))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(32))


def _word_char_mask(codes: np.ndarray) -> np.ndarray:
    """True where a code point is a word character (\\w), via a lazily built lookup table."""
    global _WORD_CHAR_TABLE
    if _WORD_CHAR_TABLE is None:
        table = np.zeros(0x30000, dtype=bool)
        table[[i for i in range(0x30000) if chr(i).isalnum() or i == 0x5F]] = True
        _WORD_CHAR_TABLE = table
    inside = codes < 0x30000
    mask = np.zeros(len(codes), dtype=bool)
    mask[inside] = _WORD_CHAR_TABLE[codes[inside]]
    return mask


def _squeeze_elongations(text: str) -> str:
    """Numpy form of `detectors.text.squeeze_elongations`: runs of 3+ equal word characters keep two."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    if len(codes) < 3:
        return text
    run3 = (codes[2:] == codes[1:-1]) & (codes[1:-1] == codes[:-2])
    if not run3.any():
        return text
    drop = np.zeros(len(codes), dtype=bool)
    drop[2:] = run3
    drop &= _word_char_mask(codes)
    return codes[~drop].tobytes().decode("utf-32-le")


def _emoji_token(match: re.Match[str]) -> str:
    emoji = match.group(0)
    polarity = _EMOJI_POLARITY.get(emoji)
    return f" {emoji} {polarity} " if polarity else f" {emoji} "


def _clean(text: object) -> str:
    if not isinstance(text, str):
        return ""
    text = text[:MAX_CHARS].replace(SEPARATOR, " ")
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return text
    return unicodedata.normalize("NFKC", text)


def _emoticon_token(match: re.Match[str]) -> str:
    start = match.start()
    if start and match.string[start - 1] != " ":  # part of a longer token, e.g. "abc:("
        return match.group(0)
    return _EMOTICON_POLARITY[match.group(0)]


def _replace_emoticons(joined: str) -> str:
    """Whitespace-separated emoticons (optionally followed by . , ! ?) replaced by polarity tokens."""
    joined = _EMOTICON_RE.sub(_emoticon_token, joined)
    padded = f" {joined} "
    for emoticon in _WORD_EMOTICONS:
        if f" {emoticon} " in padded:
            for _ in range(2):  # twice: adjacent matches share the space between them
                padded = padded.replace(f" {emoticon} ", f" {_EMOTICON_POLARITY[emoticon]} ")
    return padded.strip()


def normalise_batch(texts: Sequence[object]) -> str:
    """All texts normalised and joined with `SEPARATOR` (surrounded by spaces): one string per batch.

    The steps are those of `detectors.text.normalise_social` (NFKC, URLs -> ``httpurl``, handles ->
    ``@user``, squeezed elongations, single spaces, lower case) plus decoded escapes/entities and
    emoticon/emoji polarity tokens. Non-strings count as empty texts.
    """
    joined = f" {SEPARATOR} ".join(_clean(t) for t in texts)
    if "\\u" in joined:
        joined = _ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), joined)
    if "&" in joined:
        joined = html.unescape(joined)
    joined = joined.lower()
    joined = _URL_RE.sub(" httpurl ", joined)
    joined = _HANDLE_RE.sub(" @user ", joined)
    joined = _EMOJI_CHAR_RE.sub(_emoji_token, joined)
    joined = _squeeze_elongations(joined)
    return _replace_emoticons(" ".join(joined.split()))


def _crc32_set(words: Sequence[str]) -> np.ndarray:
    return np.array(sorted({zlib.crc32(w.encode()) for w in words}), dtype=np.uint64)


_SEPARATOR_HASH = np.uint64(zlib.crc32(SEPARATOR.encode()))
_NOT_A_FEATURE_HASHES = _crc32_set(_NOT_A_FEATURE)
_SCOPE_END_HASHES = _crc32_set(_SCOPE_END)
_NEGATOR_HASHES = _crc32_set(NEGATOR_WORDS)


def tokens(text: str) -> list[str]:
    """The word tokens of one text as the model sees them, negated ones prefixed with `NEGATION_MARK`."""
    joined = normalise_batch([text])
    words = _TOKEN_RE.findall(joined)
    hashes = np.fromiter(map(zlib.crc32, map(str.encode, words)), dtype=np.uint64, count=len(words))
    negated = _negated(hashes)
    return [NEGATION_MARK + w if neg else w for w, neg in zip(words, negated, strict=True) if w not in _NOT_A_FEATURE]


def _negated(hashes: np.ndarray) -> np.ndarray:
    """True for the up to `NEGATION_SCOPE` words that follow a negator before punctuation or a new text."""
    is_negator = np.isin(hashes, _NEGATOR_HASHES)
    if not is_negator.any():
        return np.zeros(len(hashes), dtype=bool)
    positions = np.arange(len(hashes))
    is_end = np.isin(hashes, _SCOPE_END_HASHES)
    last_negator = np.maximum.accumulate(np.where(is_negator, positions, -1))
    last_end = np.maximum.accumulate(np.where(is_end, positions, -1))
    return (last_negator > last_end) & (positions - last_negator <= NEGATION_SCOPE) & ~is_negator & ~is_end


@dataclass(frozen=True)
class HashedFeatures:
    """Hyper-parameters of the hashed feature space (all that is needed to rebuild it)."""

    word_bits: int = 18
    char_bits: int = 19
    char_min: int = 2
    char_max: int = 5
    word_bigrams: bool = True
    negation: bool = True
    # Sorted CRC-32 hashes (uint64) of the words of a lexicon block (`detectors.sentiment_static`), or None.
    # Data, not a hyper-parameter: it comes from the lexicon file, so it is not part of `to_dict`.
    lexicon_hashes: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def n_hashed(self) -> int:
        """Columns of the word and character blocks."""
        return (1 << self.word_bits) + (1 << self.char_bits)

    @property
    def n_lexicon(self) -> int:
        """Words of the lexicon block (it has two columns per word: plain, negated)."""
        return 0 if self.lexicon_hashes is None else len(self.lexicon_hashes)

    @property
    def n_features(self) -> int:
        return self.n_hashed + 2 * self.n_lexicon

    def to_dict(self) -> dict[str, int | bool]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "lexicon_hashes"}

    def entries(self, texts: Sequence[object]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The non-zero entries (row, column, value) of `transform`, duplicates not yet summed.

        Each block (words, characters) holds n-gram counts divided by the square root of the number of
        n-grams of that block in the text, so a block's L2 norm is close to 1 whatever the text's length.
        The lexicon block (after them) holds the counts of the lexicon's words, plain and negated, with the
        word block's scale: a lexicon word's column and its word-unigram column have the same value.
        """
        n_texts = len(texts)
        joined = normalise_batch(texts)
        word_rows, word_cols, lex_rows, lex_cols = self._word_entries(joined)
        char_rows, char_cols = self._char_entries(joined)
        word_scale = _row_scale(word_rows, n_texts)
        rows = np.concatenate([word_rows, char_rows, lex_rows])
        cols = np.concatenate([word_cols, char_cols + (1 << self.word_bits), lex_cols + self.n_hashed])
        values = np.concatenate(
            [word_scale[word_rows], _row_scale(char_rows, n_texts)[char_rows], word_scale[lex_rows]]
        )
        return rows, cols, values

    def transform(self, texts: Sequence[object], sum_duplicates: bool = True) -> sp.csr_matrix:
        """Feature matrix (n_texts, n_features): word, character, then lexicon block. Empty texts: empty rows.

        With ``sum_duplicates=False`` a repeated n-gram stays as several entries of the row, which is
        cheaper to build and gives the same products (``X @ W``).
        """
        rows, cols, values = self.entries(texts)
        order = np.argsort(rows, kind="stable")
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(texts)), out=indptr[1:])
        matrix = sp.csr_matrix((values[order], cols[order], indptr), shape=(len(texts), self.n_features), copy=False)
        if sum_duplicates:
            matrix.sum_duplicates()
        return matrix

    def _word_entries(self, joined: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(rows, columns) of the word block, then of the lexicon block (columns from 0)."""
        words = _TOKEN_RE.findall(joined)
        hashes = np.fromiter(map(zlib.crc32, map(str.encode, words)), dtype=np.uint64, count=len(words))
        not_feature = np.isin(hashes, _NOT_A_FEATURE_HASHES)
        doc = np.cumsum(hashes == _SEPARATOR_HASH)
        negated = _negated(hashes) if self.negation else np.zeros(len(hashes), dtype=bool)
        lex_rows, lex_cols = self._lexicon_entries(hashes, negated, not_feature, doc)
        if self.negation:
            hashes[negated] ^= _NEGATED_SALT
        mask = np.uint64((1 << self.word_bits) - 1)
        rows = [doc[~not_feature]]
        cols = [_mix(hashes[~not_feature]) & mask]
        if self.word_bigrams and len(words) > 1:
            pair = ~(not_feature[:-1] | not_feature[1:])
            bigram = _mix((hashes[:-1] << np.uint64(32)) ^ hashes[1:] ^ np.uint64(0x5BD1E995))
            rows.append(doc[:-1][pair])
            cols.append(bigram[pair] & mask)
        return np.concatenate(rows), np.concatenate(cols).astype(np.int64), lex_rows, lex_cols

    def _lexicon_entries(
        self, hashes: np.ndarray, negated: np.ndarray, not_feature: np.ndarray, doc: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Word tokens found in the lexicon (exact CRC-32 match): their rows and lexicon columns."""
        lexicon = self.lexicon_hashes
        if lexicon is None or not len(lexicon) or not len(hashes):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        position = np.minimum(np.searchsorted(lexicon, hashes), len(lexicon) - 1)
        found = (lexicon[position] == hashes) & ~not_feature
        return doc[found], position[found] + negated[found] * len(lexicon)

    def _char_entries(self, joined: str) -> tuple[np.ndarray, np.ndarray]:
        codes = np.frombuffer(f" {joined} ".encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        is_sep = codes == ord(SEPARATOR)
        is_space = codes == 32
        doc = np.cumsum(is_sep)
        mask = np.uint64((1 << self.char_bits) - 1)
        size = len(codes)
        rolling = np.zeros(size, dtype=np.uint64)
        has_sep = is_sep.copy()
        inner_space = np.zeros(size, dtype=bool)
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        for n in range(1, self.char_max + 1):
            m = size - n + 1
            if m <= 0:
                break
            rolling = rolling[:m] * _CHAR_BASE + codes[n - 1 : n - 1 + m]
            has_sep = has_sep[:m] | is_sep[n - 1 : n - 1 + m]
            inner_space = inner_space[:m] | is_space[n - 2 : n - 2 + m] if n >= 3 else inner_space[:m]
            if n < self.char_min:
                continue
            # char_wb-like: spaces only at the edges, never inside, and not a space at both ends.
            keep = ~(has_sep | inner_space | (is_space[:m] & is_space[n - 1 : n - 1 + m]))
            if n == 1:
                keep &= ~is_space[:m]
            idx = np.flatnonzero(keep)
            rows.append(doc[idx])
            cols.append(_mix(rolling[idx] ^ np.uint64(n * 0x9E3779B1)) & mask)
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(rows), np.concatenate(cols).astype(np.int64)


def _row_scale(rows: np.ndarray, n_texts: int) -> np.ndarray:
    """Per text: 1 / sqrt(number of entries of the block in that text) (1 for a text without any)."""
    counts = np.bincount(rows, minlength=n_texts).astype(np.float32)
    return 1.0 / np.sqrt(np.maximum(counts, 1.0))
