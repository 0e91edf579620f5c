"""The language table: one record per language, BCP-47 inside, other code systems at the edges.

Every part of babelclip names languages by :attr:`Language.tag` (BCP-47, with a script subtag
where a language is written in more than one script: ``zh-Hans``/``zh-Hant``, ``sr-Cyrl``/
``sr-Latn``). Codes of other systems — NLLB/FLORES-200 (``zho_Hans``), Babel-ImageNet/BabelNet
(``ZH``, ``BAT_SMG``), CLDR locales (``zh_Hant``), Tux Paint locales (``zh_CN``), ISO 639-3 —
are looked up here and converted only where data enters or leaves.

The table is data (``_data/languages.tsv``); empty fields mean "not known", never a guess.
"""
from __future__ import annotations

import csv
import difflib
import functools
from dataclasses import dataclass, fields
from importlib import resources
from typing import Iterable


class UnknownLanguageError(KeyError):
    """A code no record of the table carries; the message lists the closest known codes."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain message
        return str(self.args[0])


@dataclass(frozen=True)
class Language:
    tag: str  # BCP-47
    name: str  # English name
    iso639_3: str = ""
    script: str = ""  # ISO 15924, the script the tag implies
    nllb: str = ""  # NLLB-200 / FLORES-200 code, e.g. zho_Hans
    babel: str = ""  # Babel-ImageNet (BabelNet) code, e.g. ZH, BAT_SMG
    cldr: str = ""  # CLDR locale with annotations, e.g. zh_Hant
    tuxpaint: str = ""  # Tux Paint locale in stamp descriptions, e.g. zh_CN
    xm3600: str = ""  # Crossmodal-3600 language code
    xlmr: bool = False  # among the 100 languages of XLM-R's CC-100 pre-training data
    group: str = ""  # resource group (see RESOURCE_GROUPS)

    @property
    def codes(self) -> tuple[str, ...]:
        """Every code by which this record can be found."""
        return tuple(
            c
            for c in (self.tag, self.iso639_3, self.nllb, self.babel, self.cldr, self.tuxpaint, self.xm3600)
            if c
        )


# Resource groups: described in the table file's header and the README.
RESOURCE_GROUPS = ("high", "mid", "low", "unseen")

_CODE_FIELDS = ("tag", "nllb", "babel", "cldr", "tuxpaint", "xm3600", "iso639_3")


def _norm(code: str) -> str:
    return code.strip().replace("_", "-").lower()


@functools.lru_cache(maxsize=1)
def _table() -> tuple[tuple[Language, ...], dict[str, Language]]:
    text = resources.files("babelclip").joinpath("_data/languages.tsv").read_text(encoding="utf-8")
    rows = csv.DictReader((line for line in text.splitlines() if not line.startswith("#")), delimiter="\t")
    names = {f.name for f in fields(Language)}
    records = []
    for row in rows:
        kw = {k: (v or "").strip() for k, v in row.items() if k in names}
        kw["xlmr"] = kw.get("xlmr", "") in ("1", "true", "yes")
        records.append(Language(**kw))
    index: dict[str, Language] = {}
    # Earlier fields win: a BCP-47 tag is never shadowed by another system's code.
    for field_name in _CODE_FIELDS:
        for rec in records:
            code = getattr(rec, field_name)
            if code:
                index.setdefault(_norm(code), rec)
    return tuple(records), index


def all_languages() -> tuple[Language, ...]:
    """Every record, in table order."""
    return _table()[0]


def get_language(code: str | Language) -> Language:
    """The record for any known code (BCP-47, NLLB, Babel-ImageNet, CLDR, Tux Paint, ISO 639-3).

    Case, ``-`` and ``_`` do not matter. An unknown code raises :class:`UnknownLanguageError`
    naming the closest known codes.
    """
    if isinstance(code, Language):
        return code
    records, index = _table()
    try:
        return index[_norm(code)]
    except KeyError:
        close = difflib.get_close_matches(_norm(code), list(index), n=5, cutoff=0.6)
        hint = ", ".join(index[c].tag + f" ({index[c].name})" for c in dict.fromkeys(close))
        raise UnknownLanguageError(
            f"unknown language code {code!r}"
            + (f"; closest known: {hint}" if hint else "")
            + "; `babelclip languages` lists all"
        ) from None


def resolve_languages(codes: Iterable[str] | str) -> list[Language]:
    """A list of records from codes, or a comma-separated string; errors name every bad code."""
    if isinstance(codes, str):
        codes = [c for c in codes.split(",") if c.strip()]
    out, bad = [], []
    for c in codes:
        try:
            out.append(get_language(c))
        except UnknownLanguageError as e:
            bad.append(str(e))
    if bad:
        raise UnknownLanguageError("; ".join(bad))
    return list(dict.fromkeys(out))
