"""The multilingual crisis lexicon: hits in every language, whole words and stems, no substring hits."""

from __future__ import annotations

import unicodedata

import pytest

from crisiswatch.detectors.lexicon import (
    CONCEPTS,
    LANGUAGES,
    Concept,
    LexiconConflict,
    build_matcher,
    concept_weight,
    find_crisis_terms,
    find_crisis_terms_batch,
    lexicon_stats,
)

CRISIS_SENTENCES = [
    # English
    ("en", "Acme confirms a massive data leak, millions of customers affected", {"data_leak"}),
    ("en", "We got HACKED and now Acme says nothing. Boycotting them forever #BoycottAcme", {"hack", "boycott"}),
    ("en", "Acme recalls 2M strollers after reports of injuries; lawsuit filed", {"recall", "injury", "lawsuit"}),
    ("en", "Acme app is down again, outage for 3 hours", {"outage"}),
    # Spanish
    ("es", "Filtración de datos en Acme: exigimos explicaciones", {"data_leak"}),
    ("es", "Acme es una estafa, fraude total, los vamos a demandar", {"scam", "fraud", "lawsuit"}),
    ("es", "Huelga en la fábrica de Acme tras la explosión", {"strike", "explosion"}),
    # French
    ("fr", "Fuite de données chez Acme, c'est un scandale", {"data_leak", "scandal"}),
    ("fr", "Rappel de produits Acme : risque d'intoxication", {"recall", "contamination"}),
    ("fr", "Acme en faillite, licenciements massifs annoncés", {"bankruptcy", "layoffs"}),
    # German
    ("de", "Datenleck bei Acme! Rückrufaktion für alle Geräte", {"data_leak", "recall"}),
    ("de", "Rassismus-Vorwürfe gegen Acme, Boykott gefordert", {"racism", "boycott"}),
    ("de", "Großbrand im Acme-Werk, mehrere Verletzte", {"fire", "injury"}),
    # Italian
    ("it", "Acme, truffa ai clienti: scatta l'inchiesta", {"scam", "investigation"}),
    ("it", "Sciopero dei lavoratori Acme dopo i licenziamenti", {"strike", "layoffs"}),
    ("it", "Prodotti Acme ritirati dal mercato per contaminazione", {"recall", "contamination"}),
    # Portuguese
    ("pt", "Vazamento de dados da Acme expõe clientes", {"data_leak"}),
    ("pt", "Acme é golpe! Fraude no aplicativo, vou processar", {"scam", "fraud", "lawsuit"}),
    ("pt", "Incêndio na loja da Acme deixa feridos", {"fire", "injury"}),
    # Arabic (with clitics and the article glued on)
    ("ar", "تسريب البيانات من شركة أكمي فضيحة كبرى", {"data_leak", "scandal"}),
    ("ar", "#مقاطعة_منتجات_أكمي بسبب العنصرية", {"boycott", "racism"}),
    ("ar", "والاحتيال مستمر في أكمي", {"fraud"}),
    # Hindi (Devanagari)
    ("hi", "एक्मे में डेटा लीक और धोखाधड़ी का मामला", {"data_leak", "fraud"}),
    ("hi", "एक्मे के कारखाने में आग, कई घायल", {"fire", "injury"}),
    ("hi", "एक्मे का बहिष्कार करो, यह घोटाला है", {"boycott", "scam"}),
    # Hinglish (romanised Hindi)
    ("hi-latn", "Acme ne dhokha diya, pura ghotala hai yeh", {"fraud", "scam"}),
    ("hi-latn", "Acme factory mein aag lagi, workers ghayal", {"fire", "injury"}),
    ("hi-latn", "Acme ka bahishkar karo, milawat wala maal", {"boycott", "contamination"}),
]


@pytest.mark.parametrize(("language", "text", "expected"), CRISIS_SENTENCES)
def test_crisis_sentences_hit_in_every_language(language: str, text: str, expected: set[str]) -> None:
    assert set(find_crisis_terms(text)) == expected, language


def test_all_eight_languages_and_hinglish_are_covered() -> None:
    covered = {language for language, _, _ in CRISIS_SENTENCES}
    assert covered == set(LANGUAGES)
    for concept in CONCEPTS.values():
        assert 0 < concept.weight <= 1
        assert set(concept.forms) == set(LANGUAGES), concept.id


def test_every_form_finds_its_own_concept() -> None:
    """No form is shadowed by another concept's longer form or lost in variant generation."""
    for concept in CONCEPTS.values():
        for forms in concept.forms.values():
            for form in forms:
                if form.startswith("!"):
                    continue
                surface = form.lstrip("=").rstrip("*")
                assert find_crisis_terms(f"« {surface} »") == [concept.id], (concept.id, form)
                assert find_crisis_terms(surface.upper()) == [concept.id], (concept.id, form)


@pytest.mark.parametrize(
    "text",
    [
        "Bleach works great on these stains",  # contains "leak" as a substring only
        "Join our hackathon this weekend!",  # decided: a hackathon is not a hack
        "Best life hack ever",
        "See you on Tuesday, Tues at the latest",  # "tue" (fr. kills) without its accent
        "So blessed to work with this team",  # "blessé" without its accent
        "I love my new tote bag",  # German "tote" is not listed for this reason
        "What a penalty kick in the final!",
        "Scampi and chips for dinner",
        "You absolutely killed it tonight",
        "Woh star ban gaya yaar",  # Hinglish "ban" = became
        "Il pane di Acme è buonissimo",  # Italian bread, not a Portuguese outage
        "The brand new Acme Pro is on sale",  # German "Brand" (fire) is deliberately not listed
        "I recalled my password, all fine",  # only the listed inflections of "recall" hit…
    ],
)
def test_innocuous_words_do_not_hit(text: str) -> None:
    expected = ["recall"] if "recalled" in text else []  # …and "recalled" is one of them
    assert find_crisis_terms(text) == expected


def test_stems_and_inflections() -> None:
    assert find_crisis_terms("They boycotted us") == ["boycott"]
    assert find_crisis_terms("#BoycottAcmeNow") == ["boycott"]
    assert find_crisis_terms("hackers everywhere") == ["hack"]
    assert find_crisis_terms("Die Rückrufaktion läuft") == ["recall"]
    assert find_crisis_terms("die Rueckrufaktion laeuft") == ["recall"]  # umlaut typed as ue
    assert find_crisis_terms("demissao em massa na acme") == ["layoffs"]  # accents dropped
    assert find_crisis_terms("#data_leak #DataBreach") == ["data_leak", "breach"]
    assert find_crisis_terms("data-leak") == ["data_leak"]


def test_results_are_unique_in_order_of_first_appearance() -> None:
    text = "fraud! then a leak, more fraud, another leak and a boycott"
    assert find_crisis_terms(text) == ["fraud", "leak", "boycott"]


def test_unicode_normal_forms() -> None:
    # Arabic presentation forms (as in real tweets) fold to plain letters
    presentation = unicodedata.normalize("NFKD", "فضيحة")
    styled = "ﻓﻀﻴﺤﺔ"
    assert find_crisis_terms(styled) == ["scandal"]
    assert find_crisis_terms(presentation) == ["scandal"]
    # "mathematical bold" letters used for emphasis
    assert find_crisis_terms("𝐅𝐑𝐀𝐔𝐃 at Acme") == ["fraud"]
    # Devanagari with and without nukta, precomposed and decomposed
    for poison in ("ज़हर", "ज\u093cहर", "जहर"):
        assert find_crisis_terms(f"दूध में {poison} मिला") == ["contamination"]
    # a word with a vowel sign in the middle is one word, not two
    assert find_crisis_terms("हड़ताल जारी") == ["strike"]


def test_garbage_and_empty_inputs() -> None:
    assert find_crisis_terms("") == []
    assert find_crisis_terms("😡😡😡 !!! ??? 12345") == []
    assert find_crisis_terms("\x00\x01 leak \ud800") == ["leak"]
    assert find_crisis_terms("x" * 100_000 + " fraud") == ["fraud"]


def test_batch_matches_single_calls() -> None:
    texts = [text for _, text, _ in CRISIS_SENTENCES] + [
        "",
        "data\x00leak",  # a NUL inside a text must not glue texts together or shift results
        "ﻓﻀﻴﺤﺔ",
        "nothing here",
        "leak",
        "#data_leak",
        "İstanbul office fraud",  # lower-casing changes the length of some characters
    ]
    batch = find_crisis_terms_batch(texts)
    assert batch == [find_crisis_terms(t) for t in texts]
    assert find_crisis_terms_batch([]) == []
    assert find_crisis_terms_batch(iter(["fraud", "leak"])) == [["fraud"], ["leak"]]


def test_no_match_spans_two_texts_of_a_batch() -> None:
    assert find_crisis_terms_batch(["the data", "leak"]) == [[], ["leak"]]
    assert find_crisis_terms_batch(["is", "down"]) == [[], []]


def test_weights_and_stats() -> None:
    assert concept_weight("death") == 1.0
    assert concept_weight("no-such-concept") == 0.0
    assert concept_weight("explosion") > concept_weight("resignation")
    stats = lexicon_stats()
    assert stats["concepts"] == len(CONCEPTS) >= 25
    assert stats["languages"] == 9


def test_conflicting_forms_are_refused() -> None:
    concepts = {
        "a": Concept("a", 0.5, "a", {"en": ("thing",)}),
        "b": Concept("b", 0.5, "b", {"en": ("thing",)}),
    }
    with pytest.raises(LexiconConflict):
        build_matcher(concepts)
