"""Short multilingual phrases the scenario generator wraps around real tweets.

Every phrase names the brand through ``{b}`` (and a second brand through ``{y}`` in competitor
phrases). Phrases that must carry a crisis concept are checked against `detectors.lexicon` by the
tests, so a crisis story always contains a term the enrichment recognises in that language.

Languages are the eight of UMSAB: ``en es fr de it pt ar hi`` (UMSAB's Hindi tweets are romanised,
so the Hindi phrases are too).
"""

from __future__ import annotations

LANGS = ("en", "es", "fr", "de", "it", "pt", "ar", "hi")

STORIES = ("data_breach", "recall", "explosion", "fraud", "contamination")
"""Crisis stories and, per language, noun phrases naming them (each hits the lexicon concept in `STORY_CONCEPT`)."""

STORY_CONCEPT = {
    "data_breach": ("data_leak", "breach", "hack", "leak"),
    "recall": ("recall",),
    "explosion": ("explosion",),
    "fraud": ("fraud",),
    "contamination": ("contamination",),
}

STORY_NOUNS: dict[str, dict[str, tuple[str, ...]]] = {
    "data_breach": {
        "en": ("data breach", "customer data leak", "massive data breach"),
        "es": ("filtración de datos", "robo de datos de clientes"),
        "fr": ("fuite de données", "vol de données clients"),
        "de": ("Datenleck", "Datendiebstahl bei Kunden"),
        "it": ("furto di dati", "fuga di dati dei clienti"),
        "pt": ("vazamento de dados", "dados vazados de clientes"),
        "ar": ("تسريب بيانات العملاء", "خرق أمني"),
        "hi": ("data leak", "customer data chori"),
    },
    "recall": {
        "en": ("recall", "product recall", "nationwide recall"),
        "es": ("retirada del mercado", "retirada de productos"),
        "fr": ("rappel de produits", "rappel massif"),
        "de": ("Rückruf", "Rückrufaktion"),
        "it": ("richiamo dei prodotti", "ritiro dal mercato"),
        "pt": ("recolhimento de produtos", "retirada do mercado"),
        "ar": ("سحب المنتجات من الأسواق", "استدعاء المنتجات"),
        "hi": ("product recall", "recall"),
    },
    "explosion": {
        "en": ("factory explosion", "explosion at the plant", "warehouse explosion"),
        "es": ("explosión en la fábrica", "explosión en la planta"),
        "fr": ("explosion à l'usine", "l'usine a explosé"),
        "de": ("Explosion im Werk", "Fabrik explodiert"),
        "it": ("esplosione in fabbrica", "esplosione nello stabilimento"),
        "pt": ("explosão na fábrica", "explosão na usina"),
        "ar": ("انفجار في المصنع", "انفجار ضخم"),
        "hi": ("factory mein dhamaka", "dhamaka"),
    },
    "fraud": {
        "en": ("accounting fraud", "fraud scandal", "billing fraud"),
        "es": ("fraude contable", "fraude masivo"),
        "fr": ("fraude comptable", "fraude massive"),
        "de": ("Betrugsskandal", "Betrug im großen Stil"),
        "it": ("frode contabile", "maxi frode"),
        "pt": ("fraude contábil", "fraude bilionária"),
        "ar": ("احتيال مالي", "عملية احتيال"),
        "hi": ("fraud", "dhokhadhadi"),
    },
    "contamination": {
        "en": ("salmonella contamination", "contaminated products", "poisoning cases"),
        "es": ("intoxicación alimentaria", "productos contaminados"),
        "fr": ("intoxication alimentaire", "produits contaminés"),
        "de": ("Salmonellen in Produkten", "Vergiftungsfälle"),
        "it": ("intossicazione alimentare", "prodotti contaminati"),
        "pt": ("intoxicação alimentar", "produtos contaminados"),
        "ar": ("تسمم غذائي", "منتجات ملوثة"),
        "hi": ("milawat", "zeher wala khana"),
    },
}

CRISIS: dict[str, tuple[str, ...]] = {
    "en": (
        "{b} {n}?! This is bad.",
        "Just heard about the {b} {n}.",
        "{b} {n} is all over the news",
        "So the {b} {n} is real...",
        "Unbelievable: {b} {n}",
    ),
    "es": (
        "{b}: {n}. Qué vergüenza.",
        "¿Es verdad lo de {b}? {n}",
        "Última hora {b}: {n}",
        "Lo de {b}: {n}, increíble",
    ),
    "fr": ("{b} : {n}. Quelle honte.", "C'est vrai pour {b} ? {n}", "Urgent {b} : {n}", "Affaire {b} : {n}"),
    "de": ("{b}: {n}. Unglaublich.", "Stimmt das mit {b}? {n}", "Eilmeldung {b}: {n}", "Was ist bei {b} los? {n}"),
    "it": ("{b}: {n}. Che vergogna.", "È vero di {b}? {n}", "Ultim'ora {b}: {n}", "Cosa succede da {b}? {n}"),
    "pt": ("{b}: {n}. Que vergonha.", "É verdade sobre a {b}? {n}", "Urgente {b}: {n}", "O que houve na {b}? {n}"),
    "ar": ("{b}: {n}. فضيحة", "هل صحيح ما حدث مع {b}؟ {n}", "عاجل {b}: {n}", "ماذا يحدث في {b}؟ {n}"),
    "hi": (
        "{b} {n}?! bahut bura hai",
        "{b} ka {n} sach hai kya?",
        "{b} {n} news dekhi?",
        "yaar {b} {n}, ab kya karein",
    ),
}
"""Crisis story phrases: ``{b}`` the brand, ``{n}`` a noun phrase of the story (`STORY_NOUNS`)."""

COMPETITOR: dict[str, tuple[str, ...]] = {
    "en": (
        "After the {x} {n} I'm moving to {y}",
        "{x} {n}... switching to {y} today",
        "Glad I use {y} and not {x} after this {n}",
    ),
    "es": ("Después de lo de {x} ({n}) me cambio a {y}", "Con lo de {x} ({n}), me paso a {y}"),
    "fr": ("Après l'affaire {x} ({n}), je passe chez {y}", "Avec cette histoire {x} ({n}), je pars chez {y}"),
    "de": ("Nach dem Ärger mit {x} ({n}) wechsle ich zu {y}", "{x}: {n}. Ich gehe zu {y}"),
    "it": ("Dopo il caso {x} ({n}) passo a {y}", "Con la storia {x} ({n}) passo a {y}"),
    "pt": ("Depois do caso {x} ({n}) vou mudar para {y}", "Com essa da {x} ({n}), vou para {y}"),
    "ar": ("بعد ما حدث مع {x} ({n}) سأنتقل إلى {y}", "بسبب {x} ({n}) انتقلت إلى {y}"),
    "hi": ("{x} {n} ke baad main {y} pe shift ho raha hoon", "{x} ka {n}, ab {y} hi best hai"),
}
"""A competitor's crisis that names this brand in passing: ``{x}`` the brand in crisis, ``{y}`` this brand."""

VIRAL: dict[str, tuple[str, ...]] = {
    "en": ("{b} just made my day", "obsessed with the new {b} ad", "{b} you absolute legends", "{b} did it again 🙌"),
    "es": ("{b} me alegró el día", "el nuevo anuncio de {b} es genial", "¡Grande {b}!"),
    "fr": ("{b} a illuminé ma journée", "la nouvelle pub {b} est géniale", "Bravo {b} !"),
    "de": ("{b} hat meinen Tag gerettet", "die neue {b} Werbung ist genial", "Stark, {b}!"),
    "it": ("{b} mi ha svoltato la giornata", "il nuovo spot di {b} è geniale", "Grande {b}!"),
    "pt": ("{b} fez meu dia", "o novo comercial da {b} é incrível", "Arrasou, {b}!"),
    "ar": ("{b} أسعدتني اليوم", "إعلان {b} الجديد رائع", "أحسنتم {b}"),
    "hi": ("{b} ne din bana diya", "{b} ka naya ad zabardast hai", "{b} kamaal hai yaar"),
}

LAUNCH: dict[str, tuple[str, ...]] = {
    "en": ("The new {b} {p} is finally here!", "Just got the {b} {p}, first impressions: wow", "{b} {p} launch day!"),
    "es": ("¡Ya está aquí el nuevo {p} de {b}!", "Probando el {p} de {b}, primera impresión: genial"),
    "fr": ("Le nouveau {p} {b} est enfin là !", "Premier essai du {p} {b} : top"),
    "de": ("Der neue {p} von {b} ist da!", "Gerade den {b} {p} bekommen, erster Eindruck: super"),
    "it": ("Il nuovo {p} di {b} è finalmente qui!", "Appena provato il {p} di {b}: wow"),
    "pt": ("O novo {p} da {b} chegou!", "Testando o {p} da {b}, primeira impressão: top"),
    "ar": ("وصل {p} الجديد من {b}!", "جربت {p} من {b}، رائع"),
    "hi": ("{b} ka naya {p} aa gaya!", "{b} {p} try kiya, first impression: mast"),
}
PRODUCTS = ("app", "Pro", "Max", "One", "Air", "Go", "X2", "Plus")

NEWS: dict[str, tuple[str, ...]] = {
    "en": (
        "{b} reports quarterly results in line with forecasts",
        "{b} names new chief financial officer",
        "{b} settles patent lawsuit, terms not disclosed",
        "{b} opens new headquarters in {c}",
        "Regulator closes routine investigation into {b} pricing",
        "{b} shares move after analyst update",
    ),
    "es": (
        "{b} presenta resultados trimestrales en línea con lo previsto",
        "{b} nombra nuevo director financiero",
        "{b} abre nueva sede en {c}",
        "{b} cierra acuerdo en una demanda de patentes",
    ),
    "fr": (
        "{b} publie des résultats trimestriels conformes aux prévisions",
        "{b} nomme un nouveau directeur financier",
        "{b} ouvre un nouveau siège à {c}",
    ),
    "de": (
        "{b} legt Quartalszahlen im Rahmen der Erwartungen vor",
        "{b} ernennt neuen Finanzvorstand",
        "{b} eröffnet neue Zentrale in {c}",
    ),
    "it": (
        "{b} presenta risultati trimestrali in linea con le attese",
        "{b} nomina un nuovo direttore finanziario",
        "{b} apre una nuova sede a {c}",
    ),
    "pt": (
        "{b} divulga resultados trimestrais dentro do esperado",
        "{b} nomeia novo diretor financeiro",
        "{b} abre nova sede em {c}",
    ),
    "ar": ("{b} تعلن نتائجها الفصلية", "{b} تعين مديرا ماليا جديدا", "{b} تفتتح مقرا جديدا في {c}"),
    "hi": ("{b} ne quarterly results jaari kiye", "{b} ka naya CFO niyukt", "{b} ne {c} mein naya office khola"),
}
"""Neutral news headlines (some with "lawsuit"/"investigation" in a neutral report); ``{c}`` a city."""
CITIES = ("Lisbon", "Austin", "Lyon", "Munich", "Turin", "Dubai", "Pune", "Valencia", "Porto", "Leeds")

BOT: dict[str, tuple[str, ...]] = {
    "en": (
        "{b} customers: your account is at risk!! verify now",
        "Lost money with {b}? Claim your refund now, many victims",
        "{b} is a total scam, get your money back here",
    ),
    "es": ("Clientes de {b}: su cuenta está en riesgo, verifique ahora", "¿Perdiste dinero con {b}? Reclama aquí"),
    "de": ("{b} Kunden: Ihr Konto ist gefährdet, jetzt bestätigen", "Geld verloren mit {b}? Jetzt zurückholen"),
    "ar": ("عملاء {b}: حسابك في خطر، تحقق الآن", "خسرت أموالك مع {b}؟ استرجعها الآن"),
}
"""Spam/bot templates (near-identical copies, negative-ish, one with "scam")."""

CHATTER: dict[str, tuple[str, ...]] = {
    "en": (
        "stuck in traffic from the protest, thank god for {b} podcasts",
        "this {b} ad campaign killed me 😂",
        "watching a courtroom lawsuit drama on my {b} tablet",
        "{b} headphones till death",
        "the neighbours' barbecue caught fire again, {b} smoke alarm saved dinner",
    ),
    "es": ("atrapado por la protesta, menos mal que tengo {b}", "el anuncio de {b} me mató de risa, muerto 😂"),
    "fr": ("coincé par les manifestants, heureusement que j'ai {b}", "la pub {b} c'est mort de rire 😂 mort"),
    "de": ("Stau wegen Kundgebung, zum Glück läuft {b}", "die {b} Werbung, ich bin tot 😂"),
    "it": ("bloccato dalla protesta, per fortuna c'è {b}", "lo spot di {b} mi ha fatto morto dal ridere"),
    "pt": ("preso no trânsito do protesto, ainda bem que tenho {b}", "o anúncio da {b} me deixou morto de rir"),
    "ar": ("زحمة بسبب المظاهرات، الحمد لله على {b}", "إعلان {b} موت ضحك 😂"),
    "hi": ("dharna ki wajah se traffic, shukr hai {b} hai", "{b} ka ad dekh ke hasi se maut ho gayi 😂"),
}
"""Ordinary chatter that happens to carry crisis vocabulary (protest, death, lawsuit, fire)."""

SECTORS = ("insurer", "pharma", "bank", "telecom", "food", "automotive", "tech", "retail")

SECTOR_CONCEPT = {
    "insurer": "accident",
    "pharma": "death",
    "bank": "fraud",
    "telecom": "outage",
    "food": "contamination",
    "automotive": "recall",
    "tech": "hack",
    "retail": "scam",
}
"""The crisis concept that is ordinary business for a brand of the sector."""

SECTOR: dict[str, dict[str, tuple[str, ...]]] = {
    "insurer": {
        "en": ("{b} paid my car accident claim in three days", "does {b} cover accident damage on rentals?"),
        "es": ("{b} me pagó el accidente del coche en tres días",),
        "fr": ("{b} couvre les accidents de location ?",),
        "de": ("{b} hat meinen Unfall schnell reguliert",),
        "it": ("{b} mi ha rimborsato l'incidente in tre giorni",),
        "pt": ("a {b} pagou o acidente do carro em três dias",),
        "ar": ("{b} عوضتني عن حادث السيارة بسرعة",),
        "hi": ("{b} ne car accident ka claim jaldi diya",),
    },
    "pharma": {
        "en": ("{b} study cuts heart disease deaths by a third", "new {b} trial data on death rates looks promising"),
        "es": ("estudio de {b} reduce las muertes por infarto",),
        "fr": ("une étude {b} réduit les décès cardiaques",),
        "de": ("{b} Studie: weniger Todesopfer bei Herzinfarkt",),
        "it": ("studio {b} riduce i decessi per infarto",),
        "pt": ("estudo da {b} reduz mortes por infarto",),
        "ar": ("دراسة {b} تقلل الوفيات بأمراض القلب",),
        "hi": ("{b} ki study se heart attack se maut kam",),
    },
    "bank": {
        "en": ("{b} fraud alert texted me about a purchase I did make lol", "{b} blocked a fraud attempt on my card"),
        "es": ("{b} bloqueó un intento de fraude en mi tarjeta",),
        "fr": ("{b} a bloqué un paiement frauduleux sur ma carte",),
        "de": ("{b} hat einen Betrugsversuch auf meiner Karte gestoppt",),
        "it": ("{b} ha bloccato una frode sulla mia carta",),
        "pt": ("o {b} bloqueou uma tentativa fraudulenta no meu cartão",),
        "ar": ("{b} أوقف محاولة احتيال على بطاقتي",),
        "hi": ("{b} ne mere card pe fraud rok diya",),
    },
    "telecom": {
        "en": ("wifi not working at my parents', {b} support fixed it in 5 min", "{b} outage map says all fine here"),
        "es": ("el wifi no funciona en casa de mis padres, {b} lo arregló",),
        "fr": ("le wifi ne marche pas chez mes parents, {b} a réglé ça",),
        "de": ("WLAN funktioniert nicht bei meinen Eltern, {b} hat es gelöst",),
        "it": ("il wifi non funziona dai miei, {b} ha risolto",),
        "pt": ("o wifi não funciona na casa dos meus pais, a {b} resolveu",),
        "ar": ("الواي فاي لا يعمل عند أهلي، {b} أصلحته",),
        "hi": ("wifi kaam nahi kar raha tha, {b} ne theek kiya",),
    },
    "food": {
        "en": ("{b} spicy chips are pure poison for my diet lol", "these {b} donuts are poison and I love them"),
        "es": ("las papas picantes de {b} son veneno para mi dieta, envenenado feliz",),
        "fr": ("les chips {b} c'est du poison pour mon régime, empoisonné mais content",),
        "de": ("die {b} Chips sind Gift für meine Diät, verseucht mit Kalorien",),
        "it": ("le patatine {b} sono avvelenate di calorie",),
        "pt": ("os salgadinhos da {b} são contaminados de sabor lol",),
        "ar": ("شيبس {b} مسموم لحميتي لكن لذيذ",),
        "hi": ("{b} ke chips diet ke liye zeher hain lol",),
    },
    "automotive": {
        "en": ("took my {b} in for the recall check, all fine", "is my {b} part of the recall? VIN check says no"),
        "es": ("llevé mi {b} a revisión por la retirada del mercado, todo bien",),
        "fr": ("mon {b} n'est pas concerné par le rappel de produits",),
        "de": ("mein {b} ist nicht vom Rückruf betroffen",),
        "it": ("la mia {b} non è nel richiamo, tutto ok",),
        "pt": ("meu {b} não está no recolhimento, ufa",),
        "ar": ("سيارتي {b} ليست ضمن استدعاء المنتجات",),
        "hi": ("meri {b} recall mein nahi hai, relief",),
    },
    "tech": {
        "en": ("{b} bug bounty: hackers welcome", "{b} security team explains how hackers think"),
        "es": ("{b} invita a hackers a su programa de recompensas, ciberataque simulado",),
        "fr": ("{b} organise un exercice de cyberattaque pour ses équipes",),
        "de": ("{b} übt den Cyberangriff mit seinen Teams",),
        "it": ("{b} simula un attacco informatico per formare il team",),
        "pt": ("{b} simula ataque hacker para treinar equipe",),
        "ar": ("{b} تدرب فريقها على هجوم إلكتروني تجريبي",),
        "hi": ("{b} ke security team ne hacker training di",),
    },
    "retail": {
        "en": ("beware of fake {b} gift card scam texts", "PSA: {b} never asks for your password, it's a scam"),
        "es": ("cuidado con la estafa de tarjetas regalo falsas de {b}",),
        "fr": ("attention à l'arnaque aux fausses cartes cadeaux {b}",),
        "de": ("Vorsicht vor Abzocke mit falschen {b} Gutscheinen",),
        "it": ("attenzione alla truffa dei falsi buoni {b}",),
        "pt": ("cuidado com o golpe dos falsos vales {b}",),
        "ar": ("احذروا من نصابين يبيعون بطاقات {b} مزيفة",),
        "hi": ("{b} gift card wale thagi se bacho",),
    },
}
"""Ordinary mentions carrying the crisis concept of the sector (an insurer's "accident", a bank's "fraud")."""

EMOJI = ("😂", "🙌", "❤️", "👍", "🔥", "😍", "🤔", "😅", "💯", "👀", "🙏", "✨")
HASHTAGS = ("#mood", "#monday", "#help", "#news", "#customerservice", "#tech", "#life", "#weekend", "#deal", "#update")
