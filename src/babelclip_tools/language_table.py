"""Build ``babelclip/_data/languages.tsv``: babelclip's table of languages.

``babelclip-tools language-table [--check] [--reference DIR]``; ``--check`` rebuilds in memory and
fails if the shipped table differs (an audit). Every field comes from a machine-readable source
(:mod:`.language_sources`); the few hand decisions are the constants below, each with its reason.

Tags: the shortest ISO 639 code of the language (639-1 if it has one), then a script subtag when
the table holds the language in more than one script (zh-Hans/zh-Hant, sr-Cyrl/sr-Latn,
ks-Arab/ks-Deva, also counting FLORES-200's scripts) or when the script differs from CLDR's
likely script for the language (nan-Latn: the Min Nan labels are Pe̍h-ōe-jī), then a region,
variant or private-use part where one system names a regional or orthographic variety.
"""
from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field
from pathlib import Path

import babelclip

from .language_sources import (
    load_babel,
    load_cldr_locales,
    load_cldr_names,
    load_iso,
    load_likely,
    load_nllb,
    load_tux,
    load_xm3600,
    reference_dir,
)

OUT = Path(babelclip.__file__).parent / "_data" / "languages.tsv"


# --- hand decisions, each with its reason ---------------------------------------------------

# Babel-ImageNet (BabelNet/Wikipedia) codes whose lower-cased form is not the ISO code of the
# language they denote: code -> (language subtag, extra tag part, ISO 639-3, English name, note).
BABEL_SPECIAL: dict[str, tuple[str, str, str, str, str]] = {
    "ALS": ("gsw", "", "gsw", "Alemannic",
            "Wikipedia 'als' is Alemannic (ISO gsw); ISO 639-3 'als' is Tosk Albanian"),
    "BAT_SMG": ("sgs", "", "sgs", "Samogitian", "Wikipedia code bat-smg"),
    "BE_X_OLD": ("be", "tarask", "bel", "Belarusian (Taraškievica)",
                 "Wikipedia be-x-old; IANA variant subtag 'tarask' (Taraškievica orthography)"),
    "BH": ("bh", "", "", "Bihari languages", "ISO 639-2/5 collection 'bih'; no ISO 639-3 code"),
    "EML": ("eml", "", "", "Emilian-Romagnol",
            "'eml' was retired from ISO 639-3 (split into egl, rgn); kept as BabelNet's code"),
    "FIU_VRO": ("vro", "", "vro", "Võro", "Wikipedia code fiu-vro"),
    "GMQ_BOT": ("gmq", "x-bot", "", "Westrobothnian",
                "no ISO code; ISO 639-5 'gmq' (North Germanic) + private use 'bot'"),
    "NAH": ("nah", "", "", "Nahuatl languages", "ISO 639-2/5 collection; no ISO 639-3 code"),
    "NDS_NL": ("nds", "NL", "nds", "Dutch Low Saxon", "Wikipedia nds-nl: Low German of the Netherlands"),
    "NO": ("nb", "", "nob", "Norwegian Bokmål", "Babel 'NO' is Bokmål (language_mapping.json)"),
    "ROA_RUP": ("rup", "", "rup", "Aromanian", "Wikipedia code roa-rup"),
    "SIMPLE": ("en", "x-simple", "eng", "Simple English", "Simple English Wikipedia; private-use subtag"),
    "ZH_CLASSICAL": ("lzh", "", "lzh", "Literary Chinese", "Wikipedia zh-classical"),
    "ZH_MIN_NAN": ("nan", "", "nan", "Min Nan Chinese", "Wikipedia zh-min-nan"),
    "ZH_YUE": ("yue", "", "yue", "Cantonese", "Wikipedia zh-yue"),
}

# Records whose ISO 639-3 + script has no exact FLORES-200 code, mapped to the variety FLORES-200
# uses for the macrolanguage (the NLLB paper's choice, also used by Babel-ImageNet's and
# CLIP_benchmark's NLLB-CLIP evaluation code): tag -> FLORES-200 code.
NLLB_MACRO = {
    "ar": "arb_Arab", "az": "azj_Latn", "fa": "pes_Arab", "lv": "lvs_Latn", "mg": "plt_Latn",
    "mn": "khk_Cyrl", "ms": "zsm_Latn", "ne": "npi_Deva", "om": "gaz_Latn", "or": "ory_Orya",
    "ps": "pbt_Arab", "sq": "als_Latn", "sw": "swh_Latn", "uz": "uzn_Latn", "yi": "ydd_Hebr",
}
# Deliberately NOT mapped (no single FLORES-200 variety is the language):
#   ku (Kurdish; FLORES has kmr_Latn and ckb_Arab, both have their own Babel codes KMR, CKB;
#       note Babel-ImageNet translated its KU prompts with ckb_Arab),
#   qu (Quechua; FLORES has only quy_Latn Ayacucho), fil (FLORES has tgl_Latn only), ff (Fulah).

# Locales of other systems that do not name their record by tag: locale -> record key.
TUX_SPECIAL = {"zh_CN": ("zh", "Hans", ""), "zh_TW": ("zh", "Hant", ""), "sr": ("sr", "Cyrl", ""),
               "sr@latin": ("sr", "Latn", ""), "ca@valencia": ("ca", "", "valencia"),
               "en_AU": ("en", "", "AU"), "en_GB": ("en", "", "GB"), "pt_BR": ("pt", "", "BR"),
               "ta": ("ta", "Taml", "")}
TUX_NOTES = {"ta": "Tux Paint's ta descriptions are Tamil in a legacy 8-bit font encoding mislabelled "
                   "utf8 (they read as Latin-1 mojibake), not Unicode Tamil"}
CLDR_SPECIAL = {"no": ("nb", "", ""), "zh": ("zh", "Hans", ""), "zh_Hant": ("zh", "Hant", ""),
                "sr": ("sr", "Cyrl", ""), "sr_Latn": ("sr", "Latn", ""),
                "en_AU": ("en", "", "AU"), "en_GB": ("en", "", "GB")}
XM3600_SPECIAL = {"no": ("nb", "", ""), "zh": ("zh", "Hans", "")}
# Codes that name a language in a released data set but belong to no standard.
ALIASES = {("ja", "", ""): ["jp"]}  # XTD captions key Japanese as 'jp' (a country code)
# English in Tux Paint is the untagged first line of a description; 'en' names it.
TUX_ENGLISH = "en"

# XLM-R's CC-100 (Conneau et al. 2020, Table 6): CC-100 code -> size in GiB. Romanised
# rows and the two Burmese rows (Unicode and Zawgyi encodings, which a transcription cannot tell
# apart) are left out; 'no' is counted for Bokmål (nb), the record 'no' resolves to.
CC100_GIB = {
    "af": 1.3, "am": 0.8, "ar": 28.0, "as": 0.1, "az": 6.5, "be": 4.3, "bg": 57.5, "bn": 8.4,
    "br": 0.1, "bs": 0.1, "ca": 10.1, "cs": 16.3, "cy": 0.8, "da": 45.6, "de": 66.6, "el": 46.9,
    "en": 300.8, "eo": 0.9, "es": 53.3, "et": 6.1, "eu": 2.0, "fa": 111.6, "fi": 54.3, "fr": 56.8,
    "fy": 0.2, "ga": 0.5, "gd": 0.1, "gl": 2.9, "gu": 1.9, "ha": 0.3, "he": 31.6, "hi": 20.2,
    "hr": 20.5, "hu": 58.4, "hy": 5.5, "id": 148.3, "is": 3.2, "it": 30.2, "ja": 69.3, "jv": 0.2,
    "ka": 9.1, "kk": 6.4, "km": 1.5, "kn": 3.3, "ko": 54.2, "ku": 0.4, "ky": 1.2, "la": 2.5,
    "lo": 0.6, "lt": 13.7, "lv": 8.8, "mg": 0.2, "mk": 4.8, "ml": 7.6, "mn": 3.0, "mr": 2.8,
    "ms": 8.5, "ne": 3.8, "nl": 29.3, "no": 49.0, "om": 0.1, "or": 0.6, "pa": 0.8, "pl": 44.6,
    "ps": 0.7, "pt": 49.1, "ro": 61.4, "ru": 278.0, "sa": 0.3, "sd": 0.4, "si": 3.6, "sk": 23.2,
    "sl": 10.3, "so": 0.4, "sq": 5.4, "sr": 9.1, "su": 0.1, "sv": 85.0, "sw": 1.6, "ta": 12.2,
    "te": 4.7, "th": 71.7, "tl": 3.1, "tr": 20.9, "ug": 0.4, "uk": 84.6, "ur": 5.7, "uz": 0.7,
    "vi": 137.3, "xh": 0.1, "yi": 0.3, "zh-Hans": 46.9, "zh-Hant": 16.6,
}
CC100_NO_SIZE = {"my"}  # in CC-100, size not attributable (see above)
HIGH_GIB, MID_GIB = 10.0, 1.0  # high >= 10 GiB > mid >= 1 GiB > low

# CLDR's script for Korean is Kore (Hangul + Han); FLORES-200 writes kor_Hang.
SCRIPT_ALIAS = {"Kore": "Hang"}

# Scripts a measured script is consistent with (Han characters in zh/ja/ko text).
COMPATIBLE = {"Hani": {"Hans", "Hant", "Jpan", "Kore"}, "Jpan": {"Jpan"}, "Hang": {"Kore"}}


# --- the table ------------------------------------------------------------------------------

@dataclass
class Rec:
    lang: str  # primary language subtag
    script: str
    extra: str  # region / variant / private-use part of the tag
    iso639_3: str = ""
    name: str = ""
    codes: dict[str, str] = field(default_factory=dict)  # system -> code
    notes: list[str] = field(default_factory=list)
    tag: str = ""


class Builder:
    def __init__(self) -> None:
        self.by3, self.two, self.coll, self.scripts15924 = load_iso()
        self.three_to_two = {v: k for k, v in self.two.items()}
        self.likely = load_likely()
        self.cldr_names, self.script_names, self.other_names = load_cldr_names()
        self.recs: dict[tuple[str, str, str], Rec] = {}

    def lang_of(self, iso3: str) -> str:
        return self.three_to_two.get(iso3, iso3)

    def iso3_of(self, lang: str) -> str:
        if len(lang) == 2:
            iso3 = self.two.get(lang, "")
            return iso3 if iso3 in self.by3 else ""
        return lang if lang in self.by3 else ""

    def rec(self, lang: str, script: str, extra: str = "") -> Rec:
        """The record of (language, script, extra); the script defaults to CLDR's likely one."""
        script = script or self.likely.get(lang, "")
        key = (lang, script, extra)
        if key not in self.recs:
            self.recs[key] = Rec(lang, script, extra, iso639_3=self.iso3_of(lang))
        return self.recs[key]

    def put(self, r: Rec, system: str, code: str) -> None:
        old = r.codes.get(system)
        if old and old != code:
            raise ValueError(f"{system}: record {r.lang}-{r.script}-{r.extra} has {old} and {code}")
        r.codes[system] = code

    def measured_script(self, lang: str, measured: str) -> str:
        """The record script for a language whose texts were measured in `measured` script."""
        likely = self.likely.get(lang, "")
        if likely and (measured == likely or likely in COMPATIBLE.get(measured, ())):
            return likely
        if measured == "Hani":  # Han without a likely script: Simplified/Traditional unknown
            return ""
        return measured

    # -- sources in priority order --
    def add_babel(self, names: dict[str, str], major: dict[str, str]) -> None:
        for code, bname in sorted(names.items()):
            if code in BABEL_SPECIAL:
                lang, extra, iso3, name, note = BABEL_SPECIAL[code]
            else:
                lang, extra, iso3, name, note = code.lower(), "", "", "", ""
                iso3 = self.iso3_of(lang)
                if not iso3:
                    raise ValueError(f"Babel code {code} ({bname}) is not an ISO 639 code: add it to BABEL_SPECIAL")
            if code == "ZH":  # Babel 'ZH' labels mix scripts; the table's zh is Simplified (CLDR zh -> zh_Hans)
                script = "Hans"
                note = "labels mix Simplified and Traditional; Babel-ImageNet translated its ZH prompts with zho_Hant"
            else:
                script = self.measured_script(lang, major[code])
            r = self.rec(lang, script, extra)
            if iso3:
                r.iso639_3 = iso3
            if name:
                r.name = name
            if note:
                r.notes.append(note)
            self.put(r, "babel", code)

    def add_xm3600(self, codes: list[str]) -> None:
        for c in codes:
            self.put(self.rec(*XM3600_SPECIAL.get(c, (c, "", ""))), "xm3600", c)

    def add_tux(self, locales: list[str], major: dict[str, str]) -> None:
        self.put(self.rec("en", ""), "tuxpaint", TUX_ENGLISH)
        for loc in locales:
            if loc in TUX_SPECIAL:
                key = TUX_SPECIAL[loc]
            else:
                if not re.fullmatch(r"[a-z]{2,3}", loc):
                    raise ValueError(f"Tux Paint locale {loc}: add it to TUX_SPECIAL")
                key = (loc, self.measured_script(loc, major[loc]) if loc in major else "", "")
            r = self.rec(*key)
            if not r.iso639_3 and loc in self.coll:
                r.name = r.name or self.coll[loc]["name"]
            if loc in TUX_NOTES:
                r.notes.append(TUX_NOTES[loc])
            self.put(r, "tuxpaint", loc)

    def add_cldr(self, locales: list[str]) -> None:
        for loc in locales:
            if loc in CLDR_SPECIAL:
                self.put(self.rec(*CLDR_SPECIAL[loc]), "cldr", loc)
            elif re.fullmatch(r"[a-z]{2,3}", loc):
                self.put(self.rec(loc, ""), "cldr", loc)
            # other regional/script locales (de_CH, pa_Arab, ...) have no record of their own

    def add_nllb(self, codes: list[str]) -> None:
        taken = set(NLLB_MACRO.values())
        for tag_lang, code in NLLB_MACRO.items():
            self.put(self.rec(tag_lang, ""), "nllb", code)
        self.put(self.rec("zh", "Hans"), "nllb", "zho_Hans")
        self.put(self.rec("zh", "Hant"), "nllb", "zho_Hant")
        taken |= {"zho_Hans", "zho_Hant"}
        for code in codes:
            if code in taken:
                continue
            iso3, script = code.split("_")
            lang = self.lang_of(iso3)
            # exact ISO 639-3 + script match with an existing record without extra part
            match = [r for (l, s, e), r in self.recs.items()
                     if not e and r.iso639_3 == iso3 and SCRIPT_ALIAS.get(s, s) == script]
            r = match[0] if len(match) == 1 else self.rec(lang, script)
            r.iso639_3 = r.iso639_3 or iso3
            self.put(r, "nllb", code)

    def add_aliases(self) -> None:
        for key, codes in ALIASES.items():
            self.rec(*key).codes["aliases"] = " ".join(codes)

    # -- derived fields --
    def finish(self, flores: list[str], xlmr92: set[str]) -> list[Rec]:
        flores_scripts: dict[str, set[str]] = collections.defaultdict(set)
        for code in flores:
            iso3, s = code.split("_")
            flores_scripts[iso3].add({v: k for k, v in SCRIPT_ALIAS.items()}.get(s, s))
        scripts_of: dict[str, set[str]] = collections.defaultdict(set)
        for (lang, script, extra), r in self.recs.items():
            if not extra and script:
                scripts_of[lang].add(script)
        for (lang, script, extra), r in self.recs.items():
            multi = len(scripts_of[lang] | flores_scripts.get(r.iso639_3, set())) > 1
            parts = [lang]
            if script and (multi or self.likely.get(lang, script) != script):
                parts.append(script)
            if extra:
                parts.append(extra)
            r.tag = "-".join(parts)
            r.name = r.name or self.name_for(r)
            if script and script not in self.scripts15924:
                raise ValueError(f"{r.tag}: {script} is not an ISO 15924 code")
        recs = sorted(self.recs.values(), key=lambda r: r.tag.lower())
        tags = collections.Counter(r.tag for r in recs)
        dup = [t for t, n in tags.items() if n > 1]
        if dup:
            raise ValueError(f"duplicate tags {dup}")
        return recs

    def name_for(self, r: Rec) -> str:
        """CLDR's English name, else ISO 639's, with script / region / variant in brackets."""
        n = self.cldr_names
        if r.extra and f"{r.lang}_{r.extra}" in n:
            return n[f"{r.lang}_{r.extra}"]
        if r.tag == f"{r.lang}-{r.script}" and f"{r.lang}_{r.script}" in n:
            return n[f"{r.lang}_{r.script}"]
        base = n.get(r.lang) or (self.by3.get(r.iso639_3) or {}).get("name") or \
            (self.coll.get(r.lang) or {}).get("name", "")
        more = []
        if f"-{r.script}" in r.tag:
            more.append(self.script_names.get(r.script, r.script))
        if r.extra:
            more.append(self.other_names.get(r.extra.upper(), r.extra))
        return base + (f" ({', '.join(more)})" if more else "")


def cc100_key(r: Rec) -> str:
    if r.lang == "zh" and not r.extra:
        return f"zh-{r.script}"
    return "no" if r.lang == "nb" else r.lang


def build(reference: Path | None = None) -> tuple[list[str], list[Rec]]:
    """The header lines and records, from the sources; ``reference``: the Babel-ImageNet folder."""
    ref = reference or reference_dir()
    flores = load_nllb()
    b = Builder()
    names, major, small = load_babel(ref)
    tux_locales, tux_major = load_tux()
    b.add_babel(names, major)
    b.add_xm3600(load_xm3600(ref))
    b.add_tux(tux_locales, tux_major)
    b.add_cldr(load_cldr_locales())
    b.add_nllb(flores)
    b.add_aliases()
    recs = b.finish(flores, small)
    for r in recs:
        key = cc100_key(r)
        gib = CC100_GIB.get(key)
        r.codes["xlmr"] = "1" if (gib is not None or key in CC100_NO_SIZE) else "0"
        r.codes["cc100_gib"] = "" if gib is None else f"{gib:g}"
        if gib is None:
            r.codes["group"] = "" if key in CC100_NO_SIZE else "unseen"
        else:
            r.codes["group"] = "high" if gib >= HIGH_GIB else "mid" if gib >= MID_GIB else "low"
    header = [
        "# babelclip language table. GENERATED by babelclip-tools language-table: do not edit by hand.",
        "# One record per language; empty field = not known (never guessed). Sources and special cases:",
        "# docs/languages.md. tag: BCP-47; script: ISO 15924; nllb: FLORES-200; babel: Babel-ImageNet;",
        "# cldr: CLDR annotation locale; tuxpaint: Tux Paint stamp locale; xm3600: Crossmodal-3600;",
        "# aliases: codes used by released data outside any standard (XTD 'jp').",
        "# xlmr: among XLM-R's 100 CC-100 languages; cc100_gib: its CC-100 size (Conneau et al. 2020,",
        f"# Table 6); group: high >= {HIGH_GIB:g} GiB > mid >= {MID_GIB:g} GiB > low; unseen: not in CC-100;",
        "# empty group: in CC-100 but size not attributable (Burmese: Unicode and Zawgyi rows).",
    ]
    return header, recs


COLUMNS = ["tag", "name", "iso639_3", "script", "nllb", "babel", "cldr", "tuxpaint", "xm3600",
           "aliases", "xlmr", "cc100_gib", "group", "notes"]


def render(header: list[str], recs: list[Rec]) -> str:
    lines = header + ["\t".join(COLUMNS)]
    for r in recs:
        row = {"tag": r.tag, "name": r.name, "iso639_3": r.iso639_3, "script": r.script,
               "notes": "; ".join(r.notes), **r.codes}
        lines.append("\t".join(row.get(c, "") for c in COLUMNS))
    return "\n".join(lines) + "\n"


class StaleTable(RuntimeError):
    """The shipped table differs from a rebuild from its sources."""


def write_table(out: Path = OUT, *, check: bool = False, reference: Path | None = None) -> int:
    """Rebuild the table from its sources and write it to ``out`` (or, with ``check``, raise
    :class:`StaleTable` if ``out`` differs); returns the number of records."""
    header, recs = build(reference)
    text = render(header, recs)
    if check:
        if out.read_text(encoding="utf-8") != text:
            raise StaleTable(f"{out} is stale: rerun babelclip-tools language-table")
        return len(recs)
    out.write_text(text, encoding="utf-8")
    return len(recs)
