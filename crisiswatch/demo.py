"""The bundled demo stream: a day of history, then six hours with one positive viral moment and one crisis.

Deterministic (seeded) and generated on demand, so nothing large is shipped:

- 2026-03-01 06:00 to 2026-03-02 06:00: a day of ordinary history, so that the brands are mature (a brand
  pauses automatically only after ``maturity_seconds`` of history, 24 h by default);
- 06:00-12:00  calm background for three brands (``acme``, ``globex``, ``initech``) and unrelated chatter,
  in eight languages, with a daily-looking rhythm and ordinary Poisson noise;
- 10:00-10:20  ``acme`` goes viral for a good reason: ~15x volume, overwhelmingly positive
  (an alert at most, **never a pause**);
- 11:00-11:40  ``globex`` has a data breach: volume and negativity climb in English, Spanish, French,
  German, Italian, Portuguese, Arabic and Hindi, with retweets and syndicated news copies
  (an alert that escalates to critical and **pauses publishing**);
- a handful of malformed records (invalid JSON, a missing field, a bad timestamp), which the pipeline
  must dead-letter while everything else keeps flowing.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HISTORY = timedelta(hours=24)
"""A day of ordinary mentions first: a brand may pause automatically only with that much history."""
START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
DURATION = HISTORY + timedelta(hours=6)
VIRAL = ("acme", START + HISTORY + timedelta(hours=4), timedelta(minutes=20))
CRISIS = ("globex", START + HISTORY + timedelta(hours=5), timedelta(minutes=40))
BASE_RATE = {"acme": 5.0, "globex": 4.0, "initech": 2.0, None: 3.0}  # mentions per minute
SOURCES = ("twitter", "news", "reddit", "reviews", "blog", "forum")

CALM: dict[str, dict[str, list[str]]] = {
    "en": {
        "positive": [
            "Really happy with my {b} order, arrived early",
            "{b} support was great today, thanks!",
            "loving the new {b} app update",
        ],
        "neutral": [
            "Anyone know when {b} opens on Sunday?",
            "{b} announced its quarterly results today",
            "Comparing {b} with other options for next month",
        ],
        "negative": ["{b} delivery late again, annoying", "not impressed with {b} customer service this week"],
    },
    "es": {
        "positive": ["Muy contento con mi pedido de {b}, gracias", "me encanta la nueva app de {b}"],
        "neutral": ["¿Alguien sabe el horario de {b} el domingo?", "{b} presentó hoy sus resultados"],
        "negative": ["{b} otra vez tarde con el envío, qué mal"],
    },
    "fr": {
        "positive": ["Très satisfait de ma commande {b}, merci !", "j'adore la nouvelle appli {b}"],
        "neutral": ["Quelqu'un connaît les horaires de {b} dimanche ?", "{b} publie ses résultats aujourd'hui"],
        "negative": ["Livraison {b} encore en retard, pénible"],
    },
    "de": {
        "positive": ["Sehr zufrieden mit meiner {b} Bestellung, danke!", "die neue {b} App ist super"],
        "neutral": ["Weiß jemand, wann {b} am Sonntag öffnet?", "{b} hat heute die Quartalszahlen veröffentlicht"],
        "negative": ["{b} Lieferung schon wieder zu spät, ärgerlich"],
    },
    "it": {
        "positive": ["Molto contento del mio ordine {b}, grazie!", "adoro la nuova app di {b}"],
        "neutral": ["Qualcuno sa gli orari di {b} la domenica?", "{b} ha pubblicato oggi i risultati"],
        "negative": ["consegna {b} di nuovo in ritardo, che fastidio"],
    },
    "pt": {
        "positive": ["Muito feliz com meu pedido da {b}, obrigado!", "adorei o novo app da {b}"],
        "neutral": ["Alguém sabe o horário da {b} no domingo?", "{b} divulgou hoje os resultados"],
        "negative": ["entrega da {b} atrasada de novo, que chato"],
    },
    "ar": {
        "positive": ["سعيد جدا بطلبي من {b}، شكرا", "التطبيق الجديد من {b} رائع"],
        "neutral": ["هل يعرف أحد مواعيد {b} يوم الأحد؟", "أعلنت {b} نتائجها اليوم"],
        "negative": ["تأخر توصيل {b} مرة أخرى، مزعج"],
    },
    "hi": {
        "positive": ["{b} का नया ऐप बहुत अच्छा है, धन्यवाद", "{b} की सेवा से बहुत खुश हूँ"],
        "neutral": ["क्या कोई जानता है कि {b} रविवार को कब खुलता है?", "{b} ने आज अपने नतीजे घोषित किए"],
        "negative": ["{b} की डिलीवरी फिर से देर से आई, परेशान हूँ"],
    },
}
CHATTER = [
    "What a beautiful morning in the park",
    "Traffic on the ring road is terrible today",
    "Qué partido tan bueno anoche",
    "Il pleut encore à Paris",
    "Heute gibt es Pizza zum Abendessen",
    "Il caffè di questo bar è ottimo",
    "O jogo de ontem foi incrível",
]
VIRAL_TEXTS = {
    "en": [
        "The new {b} ad is the best thing I've seen all year 😍",
        "{b} just made my day, what a brilliant campaign!",
        "Can't stop watching the {b} video, love it ❤️",
        "{b} you absolute legends 🙌",
    ],
    "es": ["El nuevo anuncio de {b} es genial, me encanta 😍", "¡Qué campaña tan bonita de {b}!"],
    "fr": ["La nouvelle pub {b} est géniale, j'adore ❤️", "Bravo {b}, campagne magnifique !"],
    "pt": ["O novo comercial da {b} é incrível, amei 😍"],
}
CRISIS_TEXTS = {
    "en": [
        "{b} data breach: millions of customer passwords leaked online",
        "Hacked again? {b} confirms massive data leak, this is a disgrace",
        "Boycott {b} until they explain the breach. Terrible.",
        "My card was used after the {b} hack, absolutely furious",
        "{b} lied about the breach, class action lawsuit incoming",
    ],
    "es": [
        "Filtración de datos en {b}: contraseñas de millones de clientes expuestas, vergonzoso",
        "{b} hackeada, exigimos explicaciones, boicot ya",
    ],
    "fr": [
        "Fuite de données chez {b} : des millions de mots de passe piratés, scandale",
        "{b} s'est fait pirater, c'est honteux, je résilie",
    ],
    "de": ["Datenleck bei {b}: Millionen Passwörter gehackt, ein Skandal", "{b} wurde gehackt, unglaublich schlecht"],
    "it": [
        "Violazione dei dati di {b}: milioni di password rubate, vergognoso",
        "{b} hackerata, che schifo, boicottaggio",
    ],
    "pt": ["Vazamento de dados na {b}: milhões de senhas expostas, vergonha", "{b} foi hackeada, que absurdo, boicote"],
    "ar": ["تسريب بيانات {b}: كلمات مرور ملايين العملاء مسربة، فضيحة", "اختراق {b} كارثة، مقاطعة الآن"],
    "hi": ["{b} डेटा लीक: लाखों ग्राहकों के पासवर्ड हैक हुए, शर्मनाक", "{b} हैक हो गया, बहुत बुरा, बहिष्कार करो"],
}
NEWS_HEADLINE = "{b} confirms data breach affecting millions of customers"
OUTLETS = [
    "Daily Ledger",
    "Tech Wire",
    "Morning Post",
    "Global Times",
    "City Herald",
    "Market Watchers",
    "The Courier",
    "Wire Service",
    "Evening Star",
    "Metro News",
    "Business Today",
    "Finance Daily",
]
NAMES = {"acme": "Acme", "globex": "Globex", "initech": "Initech"}
BRANDS_YAML = """\
# Brands that crisiswatch watches. Matching is case-insensitive, whole-word and Unicode-aware;
# `#acme` and `@acme` also match, and an `exclude` phrase vetoes a match inside it.
brands:
  - id: acme
    name: Acme
    terms: ["acme", "#acme", "@acme"]
    exclude: ["acme tools"]
  - id: globex
    name: Globex
    terms: ["globex", "#globex", "@globex", "globex corp"]
  - id: initech
    name: Initech
    terms: ["initech", "@initech"]
topics:
  - id: security
    terms: ["breach", "hack", "hacked", "leak", "leaked", "password", "passwords"]
  - id: delivery
    terms: ["delivery", "shipping", "envío", "livraison", "lieferung"]
"""


# Neutral framings that make different people's posts different texts (so that they count as distinct
# stories, as real posts do) without changing what they say.
OPENERS: dict[str, list[str]] = {
    "en": [
        "so",
        "ok so",
        "just saw this:",
        "fyi",
        "well",
        "update:",
        "this morning",
        "my sister says",
        "heads up:",
        "quick one:",
        "from the office:",
        "honestly",
    ],
    "es": [
        "bueno",
        "a ver",
        "acabo de verlo:",
        "ojo:",
        "hoy",
        "esta mañana",
        "mi hermana dice",
        "dato:",
        "vaya",
        "pues",
        "desde la oficina:",
        "sinceramente",
    ],
    "fr": [
        "bon",
        "alors",
        "je viens de voir :",
        "info :",
        "ce matin",
        "ma sœur dit",
        "à noter :",
        "bref",
        "du bureau :",
        "franchement",
        "aujourd'hui",
        "tiens",
    ],
    "de": [
        "also",
        "gerade gesehen:",
        "zur Info:",
        "heute Morgen",
        "meine Schwester sagt",
        "kurz:",
        "na ja",
        "übrigens",
        "aus dem Büro:",
        "ehrlich gesagt",
        "heute",
        "hm",
    ],
    "it": [
        "allora",
        "ho appena visto:",
        "info:",
        "stamattina",
        "mia sorella dice",
        "nota:",
        "beh",
        "comunque",
        "dall'ufficio:",
        "sinceramente",
        "oggi",
        "ecco",
    ],
    "pt": [
        "então",
        "acabei de ver:",
        "info:",
        "hoje de manhã",
        "minha irmã disse",
        "nota:",
        "bem",
        "aliás",
        "do escritório:",
        "sinceramente",
        "hoje",
        "olha",
    ],
    "ar": [
        "إذن",
        "رأيت للتو:",
        "للعلم:",
        "هذا الصباح",
        "أختي تقول",
        "ملاحظة:",
        "حسنا",
        "بالمناسبة",
        "من المكتب:",
        "بصراحة",
        "اليوم",
        "انظروا",
    ],
    "hi": [
        "तो",
        "अभी देखा:",
        "जानकारी:",
        "आज सुबह",
        "मेरी बहन कहती है",
        "नोट:",
        "खैर",
        "वैसे",
        "ऑफिस से:",
        "सच कहूं तो",
        "आज",
        "देखो",
    ],
}
CLOSERS: dict[str, list[str]] = {
    "en": ["", "", "tbh", "as usual", "right now", "this week", "from my phone", "in my town"],
    "es": ["", "", "la verdad", "como siempre", "ahora mismo", "esta semana", "desde el móvil", "en mi ciudad"],
    "fr": ["", "", "en vrai", "comme d'habitude", "en ce moment", "cette semaine", "depuis mon tel", "dans ma ville"],
    "de": ["", "", "echt", "wie immer", "gerade", "diese Woche", "vom Handy", "in meiner Stadt"],
    "it": ["", "", "davvero", "come sempre", "proprio ora", "questa settimana", "dal telefono", "nella mia città"],
    "pt": ["", "", "de verdade", "como sempre", "agora mesmo", "esta semana", "do celular", "na minha cidade"],
    "ar": ["", "", "حقا", "كالعادة", "الآن", "هذا الأسبوع", "من هاتفي", "في مدينتي"],
    "hi": ["", "", "सच में", "हमेशा की तरह", "अभी", "इस हफ्ते", "फोन से", "मेरे शहर में"],
}


def personal(rng: random.Random, lang: str, text: str) -> str:
    """``text`` as one person posts it: a neutral opener and sometimes a closer in its language."""
    opener = rng.choice(OPENERS.get(lang, OPENERS["en"]))
    closer = rng.choice(CLOSERS.get(lang, CLOSERS["en"]))
    return f"{opener} {text} {closer}".strip()


@dataclass
class _Clock:
    rng: random.Random

    def poisson(self, lam: float) -> int:
        """Knuth's method; fine for the small rates used here."""
        if lam <= 0:
            return 0
        if lam > 50:
            return max(0, round(self.rng.gauss(lam, math.sqrt(lam))))
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1


def _daily(minute: int) -> float:
    """A gentle daily rhythm (quiet at night, busier in the afternoon)."""
    hour = (minute / 60.0) % 24
    return 0.6 + 0.4 * math.sin((hour - 9) / 24 * 2 * math.pi)


def generate(seed: int = 7) -> Iterator[dict[str, Any]]:
    """The demo mentions, in event-time order (a few arrive slightly out of order on purpose)."""
    rng = random.Random(seed)
    clock = _Clock(rng)
    serial = 0
    langs = list(CALM)

    def mention(
        brand: str | None, text: str, at: datetime, source: str, lang: str | None = None, followers: int | None = None
    ) -> dict[str, Any]:
        nonlocal serial
        serial += 1
        handle = f"user{rng.randrange(100_000)}"
        item: dict[str, Any] = {
            "id": f"demo:{serial}",
            "source": source,
            "text": text,
            "created_at": at.isoformat().replace("+00:00", "Z"),
            "url": f"https://example.org/{source}/{serial}",
            "author": {
                "id": handle,
                "handle": f"@{handle}",
                "followers": followers if followers is not None else int(rng.lognormvariate(5, 1.5)),
            },
            "metrics": {"likes": rng.randrange(50), "shares": rng.randrange(10), "replies": rng.randrange(5)},
        }
        return item

    total_minutes = int(DURATION.total_seconds() // 60)
    for minute in range(total_minutes):
        t0 = START + timedelta(minutes=minute)
        batch: list[dict[str, Any]] = []
        for brand, rate in BASE_RATE.items():
            for _ in range(clock.poisson(rate * _daily(minute))):
                at = t0 + timedelta(seconds=rng.uniform(0, 60))
                lang = rng.choice(langs)
                if brand is None:
                    batch.append(mention(None, rng.choice(CHATTER), at, rng.choice(SOURCES)))
                    continue
                mood = rng.choices(["positive", "neutral", "negative"], [0.35, 0.5, 0.15])[0]
                text = personal(rng, lang, rng.choice(CALM[lang][mood]).format(b=NAMES[brand]))
                batch.append(mention(brand, text, at, rng.choice(SOURCES), lang))
        batch.extend(_viral(t0, rng, clock, mention))
        batch.extend(_crisis(t0, rng, clock, mention))
        batch.sort(key=lambda m: m["created_at"])
        # A few mentions arrive late (out of order) but within the allowed lateness.
        if batch and rng.random() < 0.2:
            batch.append(batch.pop(0))
        yield from batch


def _viral(t0: datetime, rng: random.Random, clock: _Clock, mention: Any) -> list[dict[str, Any]]:
    brand, start, length = VIRAL
    if not start <= t0 < start + length:
        return []
    progress = (t0 - start) / length
    rate = 75.0 * math.sin(math.pi * progress) + 10
    out = []
    for _ in range(clock.poisson(rate)):
        lang = rng.choices(list(VIRAL_TEXTS), [0.6, 0.15, 0.15, 0.1])[0]
        text = personal(rng, lang, rng.choice(VIRAL_TEXTS[lang]).format(b=NAMES[brand]))
        out.append(mention(brand, text, t0 + timedelta(seconds=rng.uniform(0, 60)), "twitter", lang))
    return out


def _crisis(t0: datetime, rng: random.Random, clock: _Clock, mention: Any) -> list[dict[str, Any]]:
    brand, start, length = CRISIS
    if not start <= t0 < start + length:
        return []
    minutes_in = (t0 - start) / timedelta(minutes=1)
    rate = min(70.0, 4.0 + 6.0 * minutes_in)
    out = []
    weights = [0.35, 0.12, 0.12, 0.1, 0.08, 0.08, 0.08, 0.07]
    for _ in range(clock.poisson(rate)):
        lang = rng.choices(list(CRISIS_TEXTS), weights)[0]
        text = personal(rng, lang, rng.choice(CRISIS_TEXTS[lang]).format(b=NAMES[brand]))
        if rng.random() < 0.25:  # retweets of the loudest complaint
            text = f"RT @angrycustomer: {CRISIS_TEXTS['en'][0].format(b=NAMES[brand])}"
        source = rng.choice(["twitter", "twitter", "reddit", "forum", "reviews"])
        out.append(mention(brand, text, t0 + timedelta(seconds=rng.uniform(0, 60)), source, lang))
    if int(minutes_in) == 6:  # one wire story syndicated by twelve outlets
        for outlet in OUTLETS:
            at = t0 + timedelta(seconds=rng.uniform(0, 60))
            headline = f"{NEWS_HEADLINE.format(b=NAMES[brand])} - {outlet}"
            out.append(mention(brand, headline, at, "news", "en", followers=rng.randrange(200_000, 2_000_000)))
    return out


POISON = [
    b'{"id": "demo:poison-1", "source": "twitter", "text": "unterminated',
    b'{"id": "demo:poison-2", "source": "twitter", "created_at": "2026-03-02T07:00:00Z"}',
    b'{"id": "demo:poison-3", "source": "twitter", "text": "Globex?", "created_at": "yesterday-ish"}',
    b'\xff\xfe{"id": "demo:poison-4"}',
]


def write_demo(directory: Path, seed: int = 7) -> tuple[Path, Path]:
    """Write ``demo.jsonl`` and ``brands.yaml`` into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "demo.jsonl"
    brands = directory / "brands.yaml"
    with data.open("wb") as handle:
        for i, item in enumerate(generate(seed)):
            handle.write(json.dumps(item, ensure_ascii=False).encode() + b"\n")
            if i in (1000, 2000, 3000, 4000):
                handle.write(POISON[i // 1000 - 1] + b"\n")
    brands.write_text(BRANDS_YAML, encoding="utf-8")
    return data, brands
