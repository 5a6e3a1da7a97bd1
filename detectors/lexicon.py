"""Multilingual crisis lexicon: which crisis concepts ("breach", "boycott", "death", …) a text mentions.

Every concept has a severity ``weight`` (0–1, used by `detectors.risk`) and surface forms in English,
Spanish, French, German, Italian, Portuguese, Arabic, Hindi (Devanagari) and romanised Hindi
("Hinglish"). `find_crisis_terms` returns the concept ids a text hits, in order of first appearance.

Form syntax (one comma-separated string per language):

* ``leak`` – a whole word (case-insensitive, Unicode-aware word boundaries, so "Bleach" is not "leak");
* ``boycott*`` – a stem: any word that starts with it ("boycotted", "#BoycottAcme");
* ``data leak`` – words joined by spaces also match with ``-``, ``_``, ``.``, an apostrophe or nothing
  in between ("data-leak", "#dataleak");
* ``!hackathon*`` – an exclusion: a word that would otherwise hit but is not a crisis term;
* ``=tué`` – no accent-stripped variant ("tue" would hit the English "Tuesday").

Variants are generated for common ways people type: accents dropped ("demissao"), German umlauts as
``ae/oe/ue`` and ``ß`` as ``ss``, Arabic clitic prefixes (و، ب، ل، ف، ك with or without ال), bare alef and
ة/ه spellings, and Devanagari with or without nukta. All forms compile into one trie-shaped regular
expression, so a text is scanned once; "hackathon" is deliberately *not* a hit (see the exclusions).
"""

from __future__ import annotations

import bisect
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "ar", "hi", "hi-latn")
"""Languages covered; ``hi-latn`` is romanised Hindi (Hinglish). Hindi texts in Latin script also hit
the English forms, which Hinglish borrows freely ("data leak", "fraud", "boycott")."""


@dataclass(frozen=True)
class Concept:
    """One crisis concept: a canonical id, a severity weight in [0, 1] and its surface forms."""

    id: str
    weight: float
    label: str
    forms: dict[str, tuple[str, ...]] = field(default_factory=dict)


# (weight, label, {language: "form, form*, multi word, !exclusion"})
_RAW: dict[str, tuple[float, str, dict[str, str]]] = {
    "breach": (0.9, "security breach", {
        "en": "breach, breaches, breached, data breach*",
        "es": "brecha de seguridad, brecha de datos, violación de datos, violación de seguridad",
        "fr": "violation de données, faille de sécurité, failles de sécurité, brèche*",
        "de": "datenpanne*, sicherheitslücke*, datenschutzverletzung*, sicherheitsvorfall*",
        "it": "violazione dei dati, violazione di dati, falla di sicurezza",
        "pt": "violação de dados, brecha de segurança, falha de segurança",
        "ar": "خرق, خروقات, خرق أمني",
        "hi": "सेंधमारी, डेटा उल्लंघन, सुरक्षा में सेंध",
        "hi-latn": "suraksha mein sendh, sendhmari",
    }),
    "hack": (0.85, "hack / cyber-attack", {
        "en": "hack, hacks, hacked, hacker, hackers, hacking, ransomware, cyberattack*, cyber attack*, malware, "
              "!hackathon*, !life hack*, !lifehack*",
        "es": "hackeo*, hackead*, hackear*, hackearon, ciberataque*, pirateo, pirateado*, ataque informático",
        "fr": "piratage*, =piraté, =piratée, =piratés, =piratées, pirater, hacké*, cyberattaque*, "
              "attaque informatique",
        "de": "gehackt, hackerangriff*, cyberangriff*, cyberattacke*",
        "it": "attacco hacker, hackerat*, attacco informatico, attacchi informatici",
        "pt": "ataque hacker, invasão hacker, sistema invadido",
        "ar": "اختراق, مخترق, مخترقة, اخترق, اخترقوا, هاكر, هاكرز, قرصنة, مقرصن, مقرصنة, هجوم إلكتروني, "
              "هجوم سيبراني, هجمات إلكترونية",
        "hi": "हैक, हैकर, हैकरों, हैकिंग, साइबर हमला, साइबर हमले, साइबर अटैक",
        "hi-latn": "hack ho gaya, hack ho gayi, hack kar liya",
    }),
    "data_leak": (0.95, "data leak", {
        "en": "data leak*, leaked data, data exposed, data exposure, stolen data, data stolen, data theft",
        "es": "filtración de datos, fuga de datos, robo de datos, datos filtrados",
        "fr": "fuite de données, fuites de données, vol de données, données volées",
        "de": "datenleck*, datendiebstahl, daten geleakt",
        "it": "fuga di dati, furto di dati, dati rubati",
        "pt": "vazamento de dados, vazamentos de dados, dados vazados, roubo de dados",
        "ar": "تسريب بيانات, تسريب البيانات, تسرب بيانات, تسرب البيانات, تسريبات بيانات",
        "hi": "डेटा लीक, डाटा लीक",
        "hi-latn": "data leak ho gaya, data chori",
    }),
    "leak": (0.55, "leak", {
        "en": "leak, leaks, leaked, leaking, leaker*",
        "es": "filtración*, filtraciones, filtraron, se filtró, fuga, fugas",
        "fr": "fuite, fuites, fuité*",
        "de": "leck, lecks, geleakt, durchgesickert, !leck mich",
        "it": "trapelat*",
        "pt": "vazamento*, vazou, vazaram, vazad*",
        "ar": "تسريب, تسريبات, تسرب, مسرب, مسربة, تسربت",
        "hi": "लीक",
        "hi-latn": "leak ho gaya, leak ho gayi",
    }),
    "outage": (0.7, "outage", {
        "en": "outage*, downtime, is down, are down, was down, went down, still down, down again, not working, "
              "stopped working, service down, server down, servers down, blackout*, keeps crashing, "
              "app crashed, app crashing, app crashes, crashed again",
        "es": "caída del servicio, está caído, está caída, se cayó, no funciona, sin servicio, apagón, apagones, "
              "fuera de servicio, interrupción del servicio",
        "fr": "panne, pannes, en panne, ne fonctionne pas, ne fonctionne plus, ne marche pas, ne marche plus, "
              "hors service, coupure*, dysfonctionnement*",
        "de": "störung*, ausfall, ausfälle, ausgefallen, funktioniert nicht, totalausfall, netzausfall, "
              "serverausfall",
        "it": "disservizio, disservizi, non funziona, non funzionano, interruzione del servizio, guasto, guasti, "
              "fuori servizio",
        "pt": "fora do ar, instabilidade, não funciona, caiu, apagão, sem sinal, sem serviço",
        "ar": "عطل, أعطال, انقطاع, انقطاع الخدمة, توقف الخدمة, لا يعمل, لا تعمل, معطل, معطلة, خارج الخدمة",
        "hi": "ठप, ठप्प, सर्वर डाउन, आउटेज, काम नहीं कर रहा, काम नहीं कर रही, नहीं चल रहा, बंद पड़ा",
        "hi-latn": "kaam nahi kar raha, kaam nahi kar rahi, nahi chal raha, nahi chal rahi, band pada",
    }),
    "recall": (0.8, "product recall", {
        "en": "recall, recalls, recalled, recalling",
        "es": "retirada del mercado, retira del mercado, retiran del mercado, retiró del mercado, "
              "retiro del mercado, llamado a revisión, retirada de productos",
        "fr": "rappel de produit*, rappel conso, rappel massif, rappel de, retrait du marché, "
              "retiré de la vente, retirés de la vente, retiré des rayons, retirés des rayons",
        "de": "rückruf*, zurückgerufen",
        "it": "richiamo, richiami, richiamat*, ritiro dal mercato, ritirato dal mercato, ritirati dal mercato, "
              "ritirato dagli scaffali, ritirati dagli scaffali",
        "pt": "retirada do mercado, recolhimento",
        "ar": "سحب منتج, سحب منتجات, سحب المنتج, سحب المنتجات, استدعاء",
        "hi": "रिकॉल, वापस मंगाए, वापस मंगाया",
        "hi-latn": "wapas mangaya, wapas mangwaya, wapas mangwaye",
    }),
    "lawsuit": (0.7, "lawsuit", {
        "en": "lawsuit*, sue, sues, sued, suing, class action, legal action, litigation",
        "es": "demanda colectiva, demandad*, demandar*, demandó, demandan a, demandaron, querella*, "
              "acción legal, denuncia*",
        "fr": "procès, poursuites judiciaires, poursuivi en justice, poursuit en justice, porte plainte, "
              "porter plainte, plainte*, action collective, action de groupe, recours collectif, "
              "attaque en justice",
        "de": "klage, klagen, verklagt, verklagen, sammelklage*, gerichtsverfahren, anzeige erstattet",
        "it": "causa legale, fare causa, fa causa, faremo causa, citato in giudizio, azione legale, querela*",
        "pt": "processar, vou processar, processo judicial, processo contra, ação judicial, ação coletiva",
        "ar": "دعوى, دعوى قضائية, دعاوى, مقاضاة, يقاضي, تقاضي, رفع دعوى",
        "hi": "मुकदमा, मुकदमे, केस दर्ज",
        "hi-latn": "mukadma*, mukadama*, mukaddama*, case darj",
    }),
    "boycott": (0.8, "boycott", {
        "en": "boycott*",
        "es": "boicot*",
        "fr": "boycott*",
        "de": "boykott*",
        "it": "boicott*",
        "pt": "boicot*",
        "ar": "مقاطعة, قاطعوا",
        "hi": "बहिष्कार*",
        "hi-latn": "bahishkar*, bahiskar*",
    }),
    "scam": (0.75, "scam", {
        "en": "scam*, rip off, con artist*, !scampi*, !scamper*",
        "es": "estafa*, timador*",
        "fr": "arnaque*, arnaqué*, escroquerie*, escroc*",
        "de": "abzocke*, abgezockt",
        "it": "truffa*, truffat*",
        "pt": "golpe*, golpista*, trambique*",
        "ar": "نصاب, نصابين, نصب واحتيال",
        "hi": "घोटाला, घोटाले, ठग*",
        "hi-latn": "ghotala, ghotale, ghotaala, thagi, thag liya, thag liye, chuna laga*",
    }),
    "fraud": (0.85, "fraud", {
        "en": "fraud*, embezzl*",
        "es": "fraude*",
        "fr": "frauduleu*",
        "de": "betrug*, betrüger*, betrogen, betrügerisch*",
        "it": "frode*, frodi, fraudolent*",
        "pt": "fraudulent*",
        "ar": "احتيال, غش, تزوير, محتال, محتالين",
        "hi": "धोखाधड़ी, धोखा, धोखे, फ्रॉड, जालसाज़ी",
        "hi-latn": "dhokha, dhokhe, dhoka, dhokhadhadi, dhokebaaz*, dhokebaz*",
    }),
    "racism": (0.9, "racism", {
        "en": "racism, racist*, racial slur*",
        "es": "racismo, racista*",
        "fr": "racisme, raciste*",
        "de": "rassismus, rassist*",
        "it": "razzismo, razzist*",
        "pt": "racismo, racista*",
        "ar": "عنصرية, عنصري, عنصريه",
        "hi": "नस्लवाद, नस्लवादी, नस्लभेद, नस्लीय, जातिवाद, जातिवादी",
        "hi-latn": "jaativaad*, jativad*, naslvaad*",
    }),
    "discrimination": (0.8, "discrimination", {
        "en": "discriminat*, sexism, sexist*, homophob*, transphob*, misogyn*, xenophob*, hate speech",
        "es": "discrimina*, machista*, homófob*, xenófob*",
        "fr": "discrimin*, xénophob*",
        "de": "diskriminier*, sexistisch*, sexismus, fremdenfeindlich*, frauenfeindlich*",
        "it": "sessist*, omofob*, xenofob*",
        "pt": "homofóbic*",
        "ar": "تمييز, تمييز عنصري, خطاب كراهية",
        "hi": "भेदभाव",
        "hi-latn": "bhedbhav",
    }),
    "harassment": (0.85, "harassment", {
        "en": "harass*, sexual assault*, sexual misconduct, metoo",
        "es": "acoso*, acosad*, acosó",
        "fr": "harcèlement*, harcel*, harcèl*, agression sexuelle",
        "de": "belästig*, mobbing, sexuelle übergriffe, übergriff*",
        "it": "molestie, molestia, molestat*",
        "pt": "assédio*, assedia*",
        "ar": "تحرش, تحرش جنسي, متحرش",
        "hi": "उत्पीड़न, छेड़छाड़, यौन शोषण, यौन उत्पीड़न",
        "hi-latn": "chhedchhad, chedchad, chhed chhad, utpeedan, utpidan",
    }),
    "strike": (0.55, "strike / walkout", {
        "en": "on strike, strike action, walkout*, picket line*, general strike, workers strike",
        "es": "huelga*, huelguista*",
        "fr": "grève*, gréviste*",
        "de": "streik*, bestreikt, warnstreik*",
        "it": "sciopero, scioperi, sciopera*",
        "pt": "greve*, grevista*, paralisação",
        "ar": "إضراب, إضرابات, مضربون, مضربين",
        "hi": "हड़ताल, हड़ताली",
        "hi-latn": "hadtal*, hartal*, hadtaal*, hartaal*",
    }),
    "bankruptcy": (0.9, "bankruptcy", {
        "en": "bankrupt*, insolven*, chapter 11, receivership, going bust, went bust, goes bust",
        "es": "quiebra*, bancarrota*, insolvencia, concurso de acreedores",
        "fr": "faillite*, liquidation judiciaire, redressement judiciaire, dépôt de bilan, "
              "cessation de paiement*",
        "de": "insolvenz*, pleite*, bankrott*, konkurs*, zahlungsunfähig*",
        "it": "bancarotta, fallimento, fallit*",
        "pt": "falência*, faliu, falid*, recuperação judicial",
        "ar": "إفلاس, مفلس, مفلسة, أفلست, أفلس",
        "hi": "दिवालिया, दिवाला, दिवालियापन",
        "hi-latn": "diwaliya*, divaliya*, diwala",
    }),
    "contamination": (0.9, "contamination / poisoning", {
        "en": "contaminat*, poison*, salmonella, listeria, e coli, tainted",
        "es": "contaminad*, contaminación, intoxicación*, intoxicad*, envenenad*, envenenamiento*, salmonela",
        "fr": "contamin*, intoxication*, intoxiqué*, empoisonn*, salmonelle*, listéria",
        "de": "verunreinig*, kontaminiert*, vergiftung*, vergiftet*, verseucht*, salmonellen, listerien",
        "it": "contaminazione, intossicazion*, intossicat*, avvelenament*, avvelenat*",
        "pt": "contaminação, intoxicação, envenenamento",
        "ar": "تلوث, ملوث, ملوثة, تسمم, تسمم غذائي, مسموم, مسمومة",
        "hi": "मिलावट, मिलावटी, दूषित, ज़हर, ज़हरीला, ज़हरीली, विषाक्त, फूड पॉइज़निंग",
        "hi-latn": "milawat*, zeher*, zehar*, zehr*, jahar*, jahreela, jahrila",
    }),
    "injury": (0.85, "injuries", {
        "en": "injur*, hospitalized, hospitalised, wounded",
        "es": "herido*, herida*, lesionad*",
        "fr": "=blessé, =blessés, =blessée, =blessées, blessure*",
        "de": "verletzt*, verletzung*",
        "it": "ferito, feriti, ferita, ferite, infortunat*",
        "pt": "ferido*",
        "ar": "إصابة, إصابات, مصاب, مصابين, مصابون, جرحى, جريح",
        "hi": "घायल, ज़ख़्मी",
        "hi-latn": "ghayal, zakhmi, jakhmi",
    }),
    "death": (1.0, "deaths", {
        "en": "death, deaths, died, killed, fatal, fatalities, fatality, !killed it",
        "es": "muerto*, muerta*, muerte*, murió, murieron, fallecid*, falleció, fallecieron",
        "fr": "mort, morts, décès, décéd*, =tué, =tués, =tuée, =tuées, !mort de rire",
        "de": "tot, toten, todesfall*, todesopfer, gestorben, tödlich*, ums leben",
        "it": "morto, morti, morta, morte, decess*, decedut*, vittime",
        "pt": "morte*, morto*, morreu, morreram, óbito*",
        "ar": "وفاة, وفيات, مقتل, قتلى, قتيل, موت, توفي, ماتوا, مات",
        "hi": "मौत, मौतें, मृत्यु, मारे गए",
        "hi-latn": "maut, mauten, mare gaye",
    }),
    "explosion": (0.95, "explosion", {
        "en": "explosion*, exploded, explodes",
        "es": "explosión, explosiones, explotó, estalló",
        "fr": "=explosé, =explosée",
        "de": "explodiert*, detoniert",
        "it": "esplosion*, esploso, esplosa, esplosi, scoppio",
        "pt": "explosão, explosões, explodiu",
        "ar": "انفجار, انفجارات, انفجر, تفجير",
        "hi": "विस्फोट, धमाका, धमाके",
        "hi-latn": "dhamaka, dhamake, visphot",
    }),
    "fire": (0.75, "fire", {
        "en": "caught fire, catches fire, catch fire, burned down, burnt down, blaze, in flames, fire broke out, "
              "factory fire, warehouse fire, store fire, plant fire, wildfire*",
        "es": "incendio*, incendió, en llamas",
        "fr": "incendie*, en flammes, a pris feu",
        "de": "großbrand*, brand ausgebrochen, in flammen, feuer, brandstiftung, abgebrannt",
        "it": "incendi, in fiamme, rogo",
        "pt": "incêndio*, em chamas, pegou fogo",
        "ar": "حريق, حرائق, احتراق, اشتعال, احترق, نيران",
        "hi": "आग, आगजनी, आग लगी",
        "hi-latn": "aag lagi, aag lag gayi, aag lag gai, aagjani",
    }),
    "layoffs": (0.65, "layoffs", {
        "en": "layoff*, laid off, lay off, job cuts, redundancies, mass firing*",
        "es": "despido*, despide*, recorte de empleos, recorte de plantilla",
        "fr": "licenciement*, licencié*, plan social, plans sociaux, suppressions d'emplois, "
              "suppression d'emplois, suppressions de postes, suppression de postes",
        "de": "entlassung*, stellenabbau, kündigungswelle*, massenentlassung*, jobabbau, arbeitsplatzabbau, "
              "entlassen",
        "it": "licenziament*, licenziat*, esuberi, tagli al personale",
        "pt": "demissão, demissões, demitid*, demite, corte de funcionários",
        "ar": "تسريح, تسريح العمال, تسريح موظفين, فصل موظفين, فصل الموظفين, فصل تعسفي",
        "hi": "छंटनी, छँटनी, नौकरी से निकाला, नौकरी से निकाले",
        "hi-latn": "chhatni, chhantni, chantni, naukri se nikal*, job se nikal*",
    }),
    "scandal": (0.8, "scandal", {
        "en": "scandal*, cover up, misconduct",
        "es": "escándalo*, encubrimiento",
        "fr": "scandale*, scandaleu*",
        "de": "skandal*, vertuschung*",
        "it": "insabbiament*",
        "pt": "escândalo*",
        "ar": "فضيحة, فضائح, فضيحه",
        "hi": "कांड, स्कैंडल",
        "hi-latn": "kaand",
    }),
    "ban": (0.55, "ban", {
        "en": "ban, bans, banned, banning",
        "es": "prohibid*, prohibición, prohíbe*, vetad*, veto",
        "fr": "interdit*, interdiction*",
        "de": "verbot*, verboten",
        "it": "vietat*, divieto, divieti, messo al bando",
        "pt": "proibid*, proibição, banid*",
        "ar": "حظر, محظور, محظورة",
        "hi": "प्रतिबंध, बैन, पाबंदी",
        "hi-latn": "pratibandh, pabandi, paabandi, !ban gaya, !ban gayi, !ban gaye, !ban gai, !ban jaye, "
                   "!ban jayega, !ban ke, !ban raha, !ban rahi, !ban sakta, !ban sakti",
    }),
    "penalty": (0.6, "fine / penalty", {
        "en": "fined, penalty, penalties, record fine, hefty fine, sanction*, !penalty kick*, "
              "!penalty shootout*, !penalty shoot out, !penalty box, !penalty area",
        "es": "multa*, multad*, sanción, sanciones, sancionad*",
        "fr": "amende, amendes",
        "de": "bußgeld*, geldstrafe*, strafzahlung*, geldbuße*",
        "it": "multe, sanzion*",
        "pt": "penalidade*, sanção, sanções",
        "ar": "غرامة, غرامات, عقوبة, عقوبات",
        "hi": "जुर्माना, जुर्माने",
        "hi-latn": "jurmana, jurmane",
    }),
    "investigation": (0.6, "investigation", {
        "en": "investigat*, probe, probes, probed, probing, inquiry, subpoena*, raided",
        "es": "investiga*, investigación",
        "fr": "enquête*, perquisition*, mis en examen",
        "de": "ermittlung*, ermittelt, untersuchung*, razzia*, staatsanwaltschaft",
        "it": "indagin*, indagat*, inchiesta, inchieste, perquisizion*",
        "pt": "investigação, inquérito*",
        "ar": "تحقيقات, تحقيق في, تحقيقا في, فتح تحقيق, قيد التحقيق",
        "hi": "जांच, जाँच",
        "hi-latn": "jaanch, janch",
    }),
    "protest": (0.6, "protest", {
        "en": "protest*, demonstrators",
        "es": "protesta*, manifestantes",
        "fr": "manifestant*, manif, manifs",
        "de": "demonstrant*, kundgebung*",
        "it": "protest*, manifestant*",
        "pt": "protesto*, manifestante*",
        "ar": "احتجاج, احتجاجات, مظاهرة, مظاهرات, تظاهرات, متظاهرين, متظاهرون",
        "hi": "विरोध, विरोध प्रदर्शन, धरना, आंदोलन",
        "hi-latn": "virodh, dharna, andolan",
    }),
    "corruption": (0.8, "corruption / bribery", {
        "en": "corrupt*, brib*, kickback*",
        "es": "corrupción, soborno*, sobornad*, coima*",
        "fr": "corrompu*, pot de vin, pots de vin",
        "de": "korruption*, korrupt*, bestechung*, bestochen, schmiergeld*",
        "it": "corruzion*, corrott*, tangenti, tangentopoli, mazzett*",
        "pt": "corrupção, suborno*",
        "ar": "فساد, رشوة, رشاوى, مرتشي",
        "hi": "भ्रष्टाचार, भ्रष्ट, रिश्वत, घूस",
        "hi-latn": "bhrashtachar*, bhrasht, rishwat*, ghoos, ghooskhor*",
    }),
    "accident": (0.75, "accident / crash", {
        "en": "accident, accidents, plane crash, car crash, train crash, derail*",
        "es": "accidente*",
        "fr": "déraill*",
        "de": "unfall, unfälle, unglück",
        "it": "incidente, incidenti",
        "pt": "acidente*",
        "ar": "حادث, حادثة, حوادث",
        "hi": "दुर्घटना, हादसा, हादसे",
        "hi-latn": "hadsa, hadse, durghatna",
    }),
    "defect": (0.65, "product defect", {
        "en": "defect, defects, defective, faulty, malfunction*, safety hazard*, safety issue*",
        "es": "defectuos*, defecto de fábrica, fallo de fabricación",
        "fr": "défectueu*, défaut de fabrication, vice caché, vices cachés",
        "de": "defekt*, mangelhaft*, sicherheitsmangel, sicherheitsmängel",
        "it": "difettos*, difetto, difetti",
        "pt": "defeituos*, defeito*",
        "ar": "خلل, معيب, معيبة, عيوب",
        "hi": "ख़राबी, दोषपूर्ण",
        "hi-latn": "kharabi",
    }),
    "abuse": (0.8, "abuse / exploitation", {
        "en": "abuse, abused, abusive, abuses, child labor, child labour, forced labor, forced labour, "
              "sweatshop*, animal cruelty, mistreat*",
        "es": "abuso*, maltrato*, trabajo infantil, explotación laboral",
        "fr": "abus, maltraitance*, maltraité*, travail des enfants, travail forcé",
        "de": "missbrauch*, misshandl*, kinderarbeit, zwangsarbeit, ausbeutung",
        "it": "abusato, abusata, maltrattament*, lavoro minorile, sfruttamento",
        "pt": "maus tratos, trabalho infantil, trabalho escravo",
        "ar": "إساءة, انتهاك, انتهاكات, سوء معاملة, عمالة الأطفال",
        "hi": "दुर्व्यवहार, शोषण, बाल श्रम",
        "hi-latn": "shoshan, durvyavhar",
    }),
    "outrage": (0.6, "outrage / backlash", {
        "en": "backlash, outrage*, shitstorm*, controvers*, uproar",
        "es": "indignación, indignad*, polémica*",
        "fr": "polémique*, =tollé, scandalisé*",
        "de": "=empört*, empoert*, empörung, aufschrei, entrüstung",
        "it": "polemiche, bufera, indignazion*, indignat*",
        "pt": "polêmica*, revolta, indignação",
        "ar": "غضب, استياء, جدل, سخط",
        "hi": "आक्रोश, बवाल, विवाद",
        "hi-latn": "bawaal, bawal, aakrosh, akrosh",
    }),
    "deception": (0.6, "misleading / deception", {
        "en": "misleading, false advertising, greenwash*, deceptive, deceiv*",
        "es": "publicidad engañosa, engaño*, engañad*, engañan",
        "fr": "publicité mensongère, mensonger*, trompeu*",
        "de": "irreführend*, täuschung*, verbrauchertäuschung",
        "it": "pubblicità ingannevole, ingannevol*, ingannat*, inganno",
        "pt": "propaganda enganosa",
        "ar": "تضليل, مضلل, مضللة, خداع",
        "hi": "गुमराह, भ्रामक",
        "hi-latn": "gumrah, gumraah",
    }),
    "arrest": (0.7, "arrest / charges", {
        "en": "arrest, arrested, arrests, indicted, indictment, charged with",
        "es": "detenid*, arrestad*, arresto*, imputad*",
        "fr": "interpellé*, garde à vue, inculpé*",
        "de": "festgenommen, verhaftet*, festnahme*, verhaftung*, angeklagt*, anklage",
        "it": "arrestat*",
        "pt": "detid*, prisão, indiciad*, foi preso, foram presos",
        "ar": "اعتقال, اعتقل, القبض على, توقيف",
        "hi": "गिरफ्तार, गिरफ्तारी",
        "hi-latn": "giraftar*, giraftaar*",
    }),
    "privacy": (0.7, "privacy violation", {
        "en": "privacy violation*, privacy breach*, spyware, spying on, selling our data, sold our data, "
              "selling user data",
        "es": "violación de la privacidad, espionaje, nos espían",
        "fr": "atteinte à la vie privée, espionnage",
        "de": "datenschutzverstoß*, datenschutzskandal*, ausspioniert, spioniert*",
        "it": "violazione della privacy, spiat*",
        "pt": "violação de privacidade, espionagem",
        "ar": "انتهاك الخصوصية, تجسس",
        "hi": "जासूसी, निजता का उल्लंघन",
        "hi-latn": "jasoosi, jasusi",
    }),
    "resignation": (0.5, "resignation", {
        "en": "resign, resigns, resigned, resignation, steps down, stepped down, stepping down",
        "es": "dimite, dimisión, dimitió, renuncia*, renunció",
        "fr": "démission*",
        "de": "rücktritt*, tritt zurück, zurückgetreten",
        "it": "dimission*, si dimette, dimesso",
        "pt": "renúncia, renunciou",
        "ar": "استقالة, استقال, استقالت",
        "hi": "इस्तीफा, इस्तीफ़ा, इस्तीफे",
        "hi-latn": "istifa*, isteefa",
    }),
}

# --- matching machinery ----------------------------------------------------------------------------

_MARKS = "\u0900-\u0963\u0966-\u097f\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed"
_WORD = f"[\\w{_MARKS}]"
"""A word character: letters, digits and the combining marks of Devanagari and Arabic (which
Python's ``\\w`` does not count, so ``\\b`` would split "हिंसा" inside the word)."""
_SEP_CHARS = " \t\n\r\f\v-_.'’"
_SEP = "[\\s\\-_.'’]*"
_SEP_STRIP = re.compile(r"[\s\-_.'’]+")
_AR_PREFIXES = ("وال", "فال", "بال", "كال", "ولل", "فلل", "ال", "لل", "و", "ف", "ب", "ل", "ك")
"""Arabic clitics (and, so, with, for, like; the article) glued to the front of a word, longest first."""
_AR_PREFIX_RE = "(?:[وفبك]?ال|[وف]?لل|[وف]?[بلك]|[وف]|)"
_AR_RANGE = re.compile("[\u0600-\u06ff]")
_DEVA_RANGE = re.compile("[\u0900-\u097f]")
_NUKTA = "\u093c"
_NUKTA_LETTERS = {
    "\u0915\u093c": "\u0958", "\u0916\u093c": "\u0959", "\u0917\u093c": "\u095a", "\u091c\u093c": "\u095b",
    "\u0921\u093c": "\u095c", "\u0922\u093c": "\u095d", "\u092b\u093c": "\u095e", "\u092f\u093c": "\u095f",
}
_EXCLUDED = ""
_DISPATCH_OVER = 12
_NEEDS_NFKC = re.compile("[\ufb00-\uffff\U0001d400-\U0001d7ff]")
"""Presentation forms, ligatures, full-width and "mathematical" letters: NFKC folds them to plain ones."""
_NUL = re.compile("\x00")


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))


def _german_transliteration(text: str) -> str:
    return text.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")


def _arabic_variants(form: str) -> set[str]:
    """Spellings of an Arabic form without its clitic prefixes (those are matched by the regex)."""
    core = form[2:] if form.startswith("ال") and len(form) > 4 else form
    spellings = {core, re.sub("[إأآ]", "ا", core)}
    return spellings | {re.sub("ة(?=\\s|$)", "ه", s) for s in spellings}


def _devanagari_variants(form: str) -> set[str]:
    decomposed = unicodedata.normalize("NFD", form)  # precomposed nukta letters are composition exclusions
    precomposed = unicodedata.normalize("NFC", decomposed)
    for pair, letter in _NUKTA_LETTERS.items():
        precomposed = precomposed.replace(pair, letter)
    return {form, decomposed, precomposed, decomposed.replace(_NUKTA, "")}


def _variants(form: str, language: str, keep_accents: bool) -> set[str]:
    if _AR_RANGE.search(form):
        return _arabic_variants(form)
    if _DEVA_RANGE.search(form):
        return _devanagari_variants(form)
    variants = {form}
    if not keep_accents:
        variants.add(_strip_accents(form))
        if language == "de":
            variants.add(_german_transliteration(form))
    return variants


def _normalise_form(form: str) -> str:
    return " ".join(_SEP_STRIP.sub(" ", form.lower()).split())


def _key(surface: str) -> str:
    """What a form or a matched span is looked up by: separators removed."""
    return _SEP_STRIP.sub("", surface)


def _parse(raw: dict[str, tuple[float, str, dict[str, str]]]) -> dict[str, Concept]:
    concepts = {}
    for concept_id, (weight, label, by_language) in raw.items():
        forms = {
            lang: tuple(f.strip() for f in text.split(",") if f.strip()) for lang, text in by_language.items()
        }
        concepts[concept_id] = Concept(concept_id, weight, label, forms)
    return concepts


CONCEPTS: dict[str, Concept] = _parse(_RAW)
"""All crisis concepts by id."""


def concept_weight(concept_id: str) -> float:
    """Severity weight of a concept (0 for an unknown id)."""
    concept = CONCEPTS.get(concept_id)
    return concept.weight if concept else 0.0


class _Trie:
    __slots__ = ("children", "exact", "stem")

    def __init__(self) -> None:
        self.children: dict[str, _Trie] = {}
        self.exact = False
        self.stem = False

    def insert(self, surface: str, stem: bool) -> None:
        node = self
        for ch in surface:
            node = node.children.setdefault(ch, _Trie())
        if stem:
            node.stem = True
        else:
            node.exact = True

    def pattern(self) -> str:
        branches = [self._branch(ch) for ch in sorted(self.children)]
        if len(branches) > _DISPATCH_OVER and " " not in self.children:
            branches = self._dispatched(sorted(self.children))
        if self.stem:
            branches.append(f"{_WORD}*")
        elif self.exact:
            branches.append(f"(?!{_WORD})")
        if len(branches) == 1:
            return branches[0]
        return "(?:" + "|".join(branches) + ")"

    def _branch(self, ch: str) -> str:
        return (_SEP if ch == " " else re.escape(ch)) + self.children[ch].pattern()

    def _dispatched(self, chars: list[str]) -> list[str]:
        """Children in groups behind a one-character look-ahead: sre tries branches one by one, so a
        two-level dispatch is much cheaper than scanning a hundred first letters at every word start."""
        size = max(4, math.isqrt(len(chars)))
        groups = []
        for i in range(0, len(chars), size):
            chunk = chars[i : i + size]
            guard = "".join(re.escape(ch) for ch in chunk)
            groups.append(f"(?=[{guard}])(?:" + "|".join(self._branch(ch) for ch in chunk) + ")")
        return groups


@dataclass
class _Matcher:
    regex: re.Pattern[str]
    exact: dict[str, str]
    stems: dict[str, str]
    max_stem: int

    def resolve(self, span: str) -> str | None:
        key = _key(span)
        concept = self._lookup(key)
        if concept is None and _AR_RANGE.match(key):
            for prefix in _AR_PREFIXES:
                if key.startswith(prefix):
                    concept = self._lookup(key[len(prefix):])
                    if concept is not None:
                        break
        return concept or None

    def _lookup(self, key: str) -> str | None:
        concept = self.exact.get(key)
        if concept is None:
            for length in range(min(len(key), self.max_stem), 0, -1):
                concept = self.stems.get(key[:length])
                if concept is not None:
                    break
        return concept


class LexiconConflict(ValueError):
    """The same surface form was given to two different concepts."""


def _register(table: dict[str, str], key: str, concept: str, form: str) -> None:
    held = table.get(key)
    if held is not None and held != concept:
        if held == _EXCLUDED or concept == _EXCLUDED:
            table[key] = _EXCLUDED
            return
        raise LexiconConflict(f"form {form!r} belongs to both {held!r} and {concept!r}")
    table[key] = concept


def build_matcher(concepts: dict[str, Concept]) -> _Matcher:
    """Compile concepts into one trie-shaped regex plus the tables that map a match back to its concept."""
    latin_trie, arabic_trie = _Trie(), _Trie()
    exact: dict[str, str] = {}
    stems: dict[str, str] = {}
    for concept in concepts.values():
        for language, forms in concept.forms.items():
            for raw_form in forms:
                form = raw_form
                target = concept.id
                if form.startswith("!"):
                    form, target = form[1:], _EXCLUDED
                keep_accents = form.startswith("=")
                form = form.lstrip("=")
                stem = form.endswith("*")
                form = _normalise_form(form.rstrip("*"))
                if not form:
                    continue
                trie = arabic_trie if _AR_RANGE.match(form) else latin_trie
                for surface in _variants(form, language, keep_accents):
                    trie.insert(surface, stem)
                    _register(stems if stem else exact, _key(surface), target, raw_form)
    arabic = f"(?=[\u0600-\u06ff]){_AR_PREFIX_RE}{arabic_trie.pattern()}"
    regex = re.compile(f"(?<!{_WORD})(?={_WORD})(?:{arabic}|{latin_trie.pattern()})")
    max_stem = max((len(k) for k in stems), default=0)
    return _Matcher(regex, exact, stems, max_stem)


_MATCHER: _Matcher | None = None


def _matcher() -> _Matcher:
    """The compiled default lexicon (built on first use, about a second)."""
    global _MATCHER
    if _MATCHER is None:
        _MATCHER = build_matcher(CONCEPTS)
    return _MATCHER


def _prepare(text: str) -> str:
    if _NEEDS_NFKC.search(text):
        text = unicodedata.normalize("NFKC", text)
    if "_" in text:
        text = text.replace("_", " ")
    return text.lower()


def find_crisis_terms(text: str) -> list[str]:
    """Crisis concept ids the text mentions, each once, in order of first appearance."""
    if not text:
        return []
    matcher = _matcher()
    found: list[str] = []
    for match in matcher.regex.finditer(_prepare(text)):
        concept = matcher.resolve(match.group())
        if concept is not None and concept not in found:
            found.append(concept)
    return found


def find_crisis_terms_batch(texts: Iterable[str]) -> list[list[str]]:
    """`find_crisis_terms` for many texts at once: one scan over the joined batch, same results."""
    raw = [t or "" for t in texts]
    results: list[list[str]] = [[] for _ in raw]
    if not raw:
        return results
    matcher = _matcher()
    joined = "\x00".join(raw)  # NUL is neither a word character nor a separator: no match spans two texts
    if joined.count("\x00") != len(raw) - 1:
        raw = [t.replace("\x00", "\x01") for t in raw]  # also a non-word, non-separator character
        joined = "\x00".join(raw)
    if _NEEDS_NFKC.search(joined):
        joined = "\x00".join(unicodedata.normalize("NFKC", t) if _NEEDS_NFKC.search(t) else t for t in raw)
    joined = joined.replace("_", " ").lower() if "_" in joined else joined.lower()
    hits = [(m.start(), m.group()) for m in matcher.regex.finditer(joined)]
    if not hits:
        return results
    separators = [m.start() for m in _NUL.finditer(joined)]
    for position, span in hits:
        concept = matcher.resolve(span)
        if concept is not None:
            bucket = results[bisect.bisect_left(separators, position)]
            if concept not in bucket:
                bucket.append(concept)
    return results


def lexicon_stats() -> dict[str, int]:
    """Size of the compiled lexicon: concepts, languages, surface forms (with generated variants)."""
    matcher = _matcher()
    return {
        "concepts": len(CONCEPTS),
        "languages": len(LANGUAGES),
        "exact_forms": sum(1 for v in matcher.exact.values() if v),
        "stem_forms": sum(1 for v in matcher.stems.values() if v),
        "pattern_chars": len(matcher.regex.pattern),
    }
