"""The sources of babelclip's language table (:mod:`.language_table`), each read from a local
machine-readable file.

Every field comes from a machine-readable source; the few hand decisions are the constants
below, each with its reason. Sources:

* ISO 639-3/-5, ISO 15924: Debian ``iso-codes`` (/usr/share/iso-codes/json).
* Default scripts and English display names: Unicode CLDR (Debian ``unicode-cldr-core``):
  ``supplemental/likelySubtags.xml`` and ``main/en.xml``; CLDR annotation locales from
  ``annotations/*.xml``.
* NLLB-200 / FLORES-200 codes: ``FAIRSEQ_LANGUAGE_CODES`` in transformers' NLLB tokenizer.
* Babel-ImageNet codes: keys of ``babel_imagenet-298.json`` (Geigle et al. 2024, "Babel-ImageNet:
  Massively Multilingual Evaluation of Vision-and-Language Representations"), names from its
  ``language_mapping.json``. The script of a Babel code's record is the majority Unicode script of
  its labels (counted here, labels are never copied).
* XM3600 codes: ``lang`` of the published retrieval results (Thapliyal et al. 2022).
* Tux Paint locales: the ``LANG.utf8=`` prefixes of /usr/share/tuxpaint/stamps/**/*.txt.
* CC-100 sizes: XLM-R paper (Conneau et al. 2020, "Unsupervised Cross-lingual Representation
  Learning at Scale", Appendix A, Table 6), as ``CC100_GIB`` below.

The Babel-ImageNet and XM3600 files are the shared reference data (non-commercial licence, never
copied into babelclip): ``$BABELCLIP_REFERENCE``, else ``../shared/reference`` beside the
repository (:func:`reference_dir`), or ``--reference DIR``.
"""
from __future__ import annotations

import collections
import glob
import json
import os
import re
import unicodedata
from pathlib import Path

ISO = Path("/usr/share/iso-codes/json")
CLDR = Path("/usr/share/unicode/cldr/common")
TUX = Path("/usr/share/tuxpaint/stamps")
REPO = Path(__file__).resolve().parents[2]  # src/babelclip_tools/ -> the repository


def reference_dir() -> Path:
    """The Babel-ImageNet reference folder: ``$BABELCLIP_REFERENCE/babel-imagenet``, else
    ``../shared/reference/babel-imagenet`` beside the repository."""
    root = os.environ.get("BABELCLIP_REFERENCE")
    return (Path(root) if root else REPO.parent / "shared" / "reference") / "babel-imagenet"


# Unicode character-name prefix -> ISO 15924 (for counting the script of labels).
UNICODE_SCRIPT = {
    "LATIN": "Latn", "CYRILLIC": "Cyrl", "ARABIC": "Arab", "GREEK": "Grek", "HEBREW": "Hebr",
    "DEVANAGARI": "Deva", "BENGALI": "Beng", "GURMUKHI": "Guru", "GUJARATI": "Gujr",
    "ORIYA": "Orya", "TAMIL": "Taml", "TELUGU": "Telu", "KANNADA": "Knda", "MALAYALAM": "Mlym",
    "SINHALA": "Sinh", "THAI": "Thai", "LAO": "Laoo", "TIBETAN": "Tibt", "MYANMAR": "Mymr",
    "GEORGIAN": "Geor", "HANGUL": "Hang", "ETHIOPIC": "Ethi", "KHMER": "Khmr", "MONGOLIAN": "Mong",
    "ARMENIAN": "Armn", "THAANA": "Thaa", "SYRIAC": "Syrc", "CHEROKEE": "Cher", "CANADIAN": "Cans",
    "OL": "Olck", "NEW": "Talu", "GOTHIC": "Goth", "UGARITIC": "Ugar", "TIFINAGH": "Tfng",
    "KATAKANA": "Jpan", "HIRAGANA": "Jpan", "KATAKANA-HIRAGANA": "Jpan", "CJK": "Hani",
}


def load_iso() -> tuple[dict, dict, dict, set[str]]:
    """ISO 639-3 by alpha-3, alpha-2 -> alpha-3, ISO 639-5/639-2 collections, ISO 15924 codes."""
    e3 = json.loads((ISO / "iso_639-3.json").read_text())["639-3"]
    by3 = {e["alpha_3"]: e for e in e3}
    two = {e["alpha_2"]: e["alpha_3"] for e in e3 if "alpha_2" in e}
    coll = {e["alpha_3"]: e for e in json.loads((ISO / "iso_639-5.json").read_text())["639-5"]}
    for e in json.loads((ISO / "iso_639-2.json").read_text())["639-2"]:
        if "alpha_2" in e and e["alpha_3"] not in by3:
            coll.setdefault(e["alpha_3"], e)
            two.setdefault(e["alpha_2"], e["alpha_3"])
    scripts = {e["alpha_4"] for e in json.loads((ISO / "iso_15924.json").read_text())["15924"]}
    return by3, two, coll, scripts


def load_likely() -> dict[str, str]:
    text = (CLDR / "supplemental" / "likelySubtags.xml").read_text()
    return dict(re.findall(r'from="([a-z]{2,3})" to="[a-z]{2,3}_([A-Z][a-z]{3})', text))


def load_cldr_names() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    text = (CLDR / "main" / "en.xml").read_text()
    langs = dict(re.findall(r'<language type="([A-Za-z_]+)">([^<]+)</language>', text))
    scripts = dict(re.findall(r'<script type="([A-Za-z]{4})">([^<]+)</script>', text))
    other = dict(re.findall(r'<(?:territory|variant) type="([A-Z0-9]+)">([^<]+)</', text))
    return langs, scripts, other


def load_nllb() -> list[str]:
    from transformers.models.nllb import tokenization_nllb  # the list is a module constant

    return list(tokenization_nllb.FAIRSEQ_LANGUAGE_CODES)


def script_counts(texts) -> collections.Counter:
    c: collections.Counter = collections.Counter()
    for t in texts:
        for ch in t:
            if ch.isalpha():
                try:
                    s = UNICODE_SCRIPT.get(unicodedata.name(ch).split()[0])
                except ValueError:
                    s = None
                if s:
                    c[s] += 1
    return c


def load_babel(ref: Path) -> tuple[dict[str, str], dict[str, str], set[str]]:
    """Babel code -> English name, Babel code -> majority script of its labels, the 92+EN set."""
    names = json.loads((ref / "language_mapping.json").read_text())
    data = json.loads((ref / "babel_imagenet-298.json").read_text())
    major = {k: script_counts(v[1]).most_common(1)[0][0] for k, v in data.items()}
    small = set(json.loads((ref / "babel_imagenet.json").read_text()))
    assert set(data) == set(names), "language_mapping.json and the 298 file disagree"
    return names, major, small


def load_xm3600(ref: Path) -> list[str]:
    codes: set[str] = set()
    for f in sorted((ref / "results" / "retrieval" / "xm3600").glob("*.json")):
        codes |= {r["lang"] for r in json.loads(f.read_text())["results"]}
    return sorted(codes)


def load_tux() -> tuple[list[str], dict[str, str]]:
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for f in glob.glob(str(TUX / "**" / "*.txt"), recursive=True):
        for line in Path(f).read_text(encoding="utf-8", errors="replace").splitlines():
            m = re.match(r"^([A-Za-z_@]+)\.utf8=(.*)", line)
            if m:
                counts[m.group(1)] += script_counts([m.group(2)])
    return sorted(counts), {k: c.most_common(1)[0][0] for k, c in counts.items() if c}


def load_cldr_locales() -> list[str]:
    return sorted(p.stem for p in (CLDR / "annotations").glob("*.xml") if p.stem != "root")
