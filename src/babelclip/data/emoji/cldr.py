"""CLDR emoji annotations per language: read, resolved through CLDR's locale inheritance.

A locale file lists only what differs from its parent (``de_CH.xml`` holds the ~140 Swiss
spellings; everything else is ``de``'s), so a locale's annotations are resolved through its
parent chain: the explicit ``<parentLocales>`` of ``supplemental/supplementalData.xml``
(``en_AU`` → ``en_001``; ``nn`` → ``no``; ``zh_Hant`` → ``root``), else the locale with its last
``_`` part removed (``de_CH`` → ``de``), ending at ``root``. The name (``type="tts"``) and the
keyword list of an emoji are resolved independently: the first locale of the chain that has a
value gives it. An inheritance marker ``↑↑↑`` is no value (the entry is absent in that file).

Code points are normalised on reading (:func:`emoji_id`): variation selectors are dropped, so
``☺️`` and ``☺`` are one emoji. Languages are the records of :mod:`babelclip.languages` with a
CLDR code; locale files of no record (``de_CH``, ``es_MX``...) are regional variants the table
does not name, and are left out (:func:`language_locales` lists them).
"""
from __future__ import annotations

import functools
import logging
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ...languages import all_languages

log = logging.getLogger(__name__)

CLDR_ROOT = Path("/usr/share/unicode/cldr/common")  # Debian unicode-cldr-core
CLDR_LICENCE = "Unicode-DFS-2016 (CLDR annotations)"
INHERIT = "↑↑↑"
VARIATION_SELECTORS = ("\ufe0e", "\ufe0f")


class CldrDataError(ValueError):
    """A CLDR file that is missing or not in the layout of a CLDR release."""


def cldr_root(path: str | os.PathLike | None = None) -> Path:
    """The CLDR ``common`` folder: ``path``, ``$BABELCLIP_CLDR``, else Debian's."""
    d = Path(path or os.environ.get("BABELCLIP_CLDR", CLDR_ROOT))
    if not (d / "annotations").is_dir():
        raise FileNotFoundError(
            f"CLDR annotations not found: {d / 'annotations'} is missing; install Debian's unicode-cldr-core "
            "(apt-get install unicode-cldr-core) or pass the common/ folder of a CLDR release "
            "(or set BABELCLIP_CLDR); expected layout: common/annotations/LOCALE.xml and "
            "common/supplemental/supplementalData.xml"
        )
    return d


def emoji_id(cp: str) -> str:
    """The emoji's id: its code points without variation selectors, lowercase hex joined by ``-``.

    ``"😶\u200d🌫️"`` → ``"1f636-200d-1f32b"``; ``"☺️"`` and ``"☺"`` → ``"263a"``.
    """
    points = [f"{ord(c):x}" for c in cp if c not in VARIATION_SELECTORS]
    if not points:
        raise ValueError(f"{cp!r} has no code point besides variation selectors")
    return "-".join(points)


def emoji_text(eid: str) -> str:
    """The characters of an emoji id (no variation selector): ``"263a"`` → ``"☺"``."""
    return "".join(chr(int(h, 16)) for h in eid.split("-"))


def read_annotation_file(path: str | os.PathLike) -> tuple[dict[str, str], dict[str, list[str]]]:
    """``(names, keywords)`` of one annotations file, keyed by :func:`emoji_id`.

    Entries that are empty or the inheritance marker are absent. Keywords are split on ``|``
    and stripped, order kept, duplicates dropped.
    """
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise CldrDataError(f"{path}: not a readable CLDR annotations file ({e})") from None
    names: dict[str, str] = {}
    keywords: dict[str, list[str]] = {}
    for el in root.iter("annotation"):
        cp, text = el.get("cp"), (el.text or "").strip()
        if not cp or not text or text == INHERIT:
            continue
        eid = emoji_id(cp)
        if el.get("type") == "tts":
            names[eid] = text
        elif el.get("type") is None:
            kws = [k.strip() for k in text.split("|") if k.strip() and k.strip() != INHERIT]
            if kws:
                keywords[eid] = list(dict.fromkeys(kws))
    return names, keywords


@functools.lru_cache(maxsize=4)
def parent_locales(root: str) -> dict[str, str]:
    """CLDR's explicit parents: ``{locale: parent}`` from ``supplementalData.xml``."""
    path = Path(root) / "supplemental" / "supplementalData.xml"
    if not path.exists():
        raise CldrDataError(f"{path} is missing: CLDR's parent locales are read from it")
    out: dict[str, str] = {}
    for el in ET.parse(path).getroot().iter("parentLocale"):
        for loc in (el.get("locales") or "").split():
            out[loc] = el.get("parent", "root")
    return out


def parent_chain(locale: str, parents: dict[str, str]) -> list[str]:
    """``locale`` and its ancestors, nearest first, ending at ``root``: ``de_CH`` → de_CH, de, root."""
    chain = [locale]
    while chain[-1] != "root":
        loc = chain[-1]
        nxt = parents.get(loc) or (loc.rsplit("_", 1)[0] if "_" in loc else "root")
        if nxt in chain:  # a cycle would be a broken file; stop rather than loop
            raise CldrDataError(f"CLDR parent locales form a cycle at {loc} -> {nxt}")
        chain.append(nxt)
    return chain


@dataclass
class LocaleAnnotations:
    """One language's resolved annotations: names and keyword lists by emoji id."""

    tag: str  # BCP-47
    locale: str  # CLDR locale
    names: dict[str, str] = field(default_factory=dict)
    keywords: dict[str, list[str]] = field(default_factory=dict)
    own_names: int = 0  # names written in the locale's own file (the rest inherited)
    chain: tuple[str, ...] = ()


def language_locales(root: str | os.PathLike | None = None) -> tuple[dict[str, str], list[str]]:
    """``({BCP-47 tag: CLDR locale}, [locale files no language record names])``."""
    return annotation_locales(cldr_root(root) / "annotations")


def annotation_locales(annotations: str | os.PathLike) -> tuple[dict[str, str], list[str]]:
    """:func:`language_locales` of one folder of annotation files (``LOCALE.xml``)."""
    files = {p.stem for p in Path(annotations).glob("*.xml")}
    tags = {lang.tag: lang.cldr for lang in all_languages() if lang.cldr in files}
    named = set(tags.values())
    return tags, sorted(files - named - {"root"})


@functools.lru_cache(maxsize=2)
def _files(root: str) -> dict[str, tuple[dict[str, str], dict[str, list[str]]]]:
    return {p.stem: read_annotation_file(p) for p in sorted((Path(root) / "annotations").glob("*.xml"))}


def load_annotations(root: str | os.PathLike | None = None) -> dict[str, LocaleAnnotations]:
    """Every language's resolved annotations, ``{BCP-47 tag: LocaleAnnotations}`` in tag order."""
    base = cldr_root(root)
    files = _files(str(base))
    parents = parent_locales(str(base))
    tags, unnamed = language_locales(base)
    if unnamed:
        log.info("CLDR locales without a language record (regional variants, left out): %s", " ".join(unnamed))
    out: dict[str, LocaleAnnotations] = {}
    for tag, locale in sorted(tags.items()):
        chain = [loc for loc in parent_chain(locale, parents) if loc in files]
        names: dict[str, str] = {}
        keywords: dict[str, list[str]] = {}
        for loc in reversed(chain):  # nearest last, so it overrides
            n, k = files[loc]
            names.update(n)
            keywords.update(k)
        out[tag] = LocaleAnnotations(tag, locale, names, keywords, len(files[locale][0]), tuple(chain))
    return out
