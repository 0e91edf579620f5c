"""Unicode scripts of labels, Simplified vs Traditional Chinese, Serbian Latin -> Cyrillic.

Label audits need to know in which script a label is written. Python's :mod:`unicodedata` has no
script property, so babelclip ships two tables derived from the Unicode Character Database
(Unicode 15.0, Unicode License v3, which permits redistribution with the copyright notice kept
in the table headers):

- ``_data/unicode_scripts.tsv``: code point ranges -> ISO 15924 script code (from ``Scripts.txt``
  and ``PropertyValueAliases.txt``).
- ``_data/unihan_zh_variants.tsv``: per Han character its ``kSimplifiedVariant`` and
  ``kTraditionalVariant`` (from ``Unihan_Variants.txt``, UAX #38).

Both are regenerated with :func:`generate_tables` from a UCD directory (Debian package
``unicode-data`` installs one at ``/usr/share/unicode``)::

    python -m babelclip.data.scripts_unicode /usr/share/unicode src/babelclip/_data

Simplified vs Traditional is decided character by character: a character whose simplified
variant is another character is Traditional-only (e.g. 貓 -> 猫); one whose traditional variant
is another character is Simplified-only. Characters written the same in both (e.g. 狗) are
neutral. Conversion is character-level too (first listed variant); phrase-level conversion
(OpenCC) is more accurate for one-to-many cases (发 -> 發/髮) and is not needed for the
Traditional -> Simplified direction used by the audit, which is many-to-one.
"""

from __future__ import annotations

import bisect
import bz2
import functools
import re
import sys
from collections import Counter
from importlib import resources
from pathlib import Path

# Script codes that carry no information about which script a text is written in.
NEUTRAL_SCRIPTS = frozenset({"Zyyy", "Zinh", "Zzzz"})

# A tag's script (ISO 15924) may be a union of Unicode scripts.
SCRIPT_COMPONENTS: dict[str, frozenset[str]] = {
    "Jpan": frozenset({"Hani", "Hira", "Kana"}),
    "Kore": frozenset({"Hang", "Hani"}),
    "Hans": frozenset({"Hani"}),
    "Hant": frozenset({"Hani"}),
    "Hanb": frozenset({"Hani", "Bopo"}),
}


def _read_data(name: str) -> list[str]:
    text = resources.files("babelclip").joinpath(f"_data/{name}").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@functools.lru_cache(maxsize=1)
def _script_ranges() -> tuple[list[int], list[int], list[str]]:
    starts, ends, codes = [], [], []
    for line in _read_data("unicode_scripts.tsv"):
        lo, hi, code = line.split("\t")
        starts.append(int(lo, 16))
        ends.append(int(hi, 16))
        codes.append(code)
    return starts, ends, codes


def char_script(ch: str) -> str:
    """ISO 15924 code of one character's Unicode Script property (``Zzzz`` when unassigned)."""
    starts, ends, codes = _script_ranges()
    cp = ord(ch)
    i = bisect.bisect_right(starts, cp) - 1
    if i >= 0 and cp <= ends[i]:
        return codes[i]
    return "Zzzz"


def text_scripts(text: str) -> Counter[str]:
    """Characters per script in ``text``, ignoring Common/Inherited (digits, spaces, punctuation)."""
    return Counter(s for s in map(char_script, text) if s not in NEUTRAL_SCRIPTS)


@functools.lru_cache(maxsize=1)
def _zh_variants() -> tuple[dict[str, str], dict[str, str], frozenset[str], frozenset[str]]:
    """(char -> simplified, char -> traditional, Traditional-only chars, Simplified-only chars).

    A character is X-only when its variant list for the other script does not contain itself
    (貓: kSimplifiedVariant 猫 -> Traditional-only). Conversion maps to the first listed variant
    other than the character itself (头: kTraditionalVariant 头 頭 -> 頭), so 头 converts but is
    not evidence of Simplified script on its own.
    """
    to_simp: dict[str, str] = {}
    to_trad: dict[str, str] = {}
    trad_only: set[str] = set()
    simp_only: set[str] = set()
    for line in _read_data("unihan_zh_variants.tsv"):
        ch, simp, trad = (line.split("\t") + ["", ""])[:3]
        for variants, conv, only in (
            (simp.split(), to_simp, trad_only),
            (trad.split(), to_trad, simp_only),
        ):
            others = [v for v in variants if v != ch]
            if others:
                conv[ch] = others[0]
            if variants and ch not in variants:
                only.add(ch)
    return to_simp, to_trad, frozenset(trad_only), frozenset(simp_only)


def han_variant(text: str) -> str:
    """``"Hant"`` if the text has Traditional-only and no Simplified-only characters, ``"Hans"``
    for the reverse, ``"mixed"`` when it has both, ``"neutral"`` when it has neither."""
    _, _, trad_only, simp_only = _zh_variants()
    trad = any(c in trad_only for c in text)
    simp = any(c in simp_only for c in text)
    if trad and simp:
        return "mixed"
    return "Hant" if trad else "Hans" if simp else "neutral"


def to_simplified(text: str) -> str:
    """Traditional -> Simplified, character by character (Unihan kSimplifiedVariant)."""
    to_simp = _zh_variants()[0]
    return "".join(to_simp.get(c, c) for c in text)


def to_traditional(text: str) -> str:
    """Simplified -> Traditional, character by character (first Unihan kTraditionalVariant).

    One-to-many cases (发 -> 發 or 髮) take the first listed variant; see the module docstring.
    """
    to_trad = _zh_variants()[1]
    return "".join(to_trad.get(c, c) for c in text)


def label_script(text: str, tag_script: str) -> str:
    """The script a label is written in, in the terms of a tag's script.

    Returns ``tag_script`` when every script-bearing character belongs to it (for Han tags:
    also no character of the other Chinese variant), ``"none"`` when the label has no
    script-bearing character, else the dominant foreign script (``"Hant"`` in a ``zh-Hans``
    label set, ``"Latn"`` in a Russian one) or ``"mixed:A+B"`` naming the scripts present.
    """
    scripts = text_scripts(text)
    if not scripts:
        return "none"
    allowed = SCRIPT_COMPONENTS.get(tag_script, frozenset({tag_script}))
    if tag_script in ("Hans", "Hant") and set(scripts) <= allowed:
        v = han_variant(text)
        return (
            tag_script if v in ("neutral", tag_script) else "mixed:Hans+Hant" if v == "mixed" else v
        )
    if set(scripts) <= allowed:
        return tag_script
    if len(scripts) == 1:
        return next(iter(scripts))
    return "mixed:" + "+".join(sorted(scripts))


# Serbian Latin (Gaj's alphabet) -> Cyrillic (Vuk's alphabet): a one-to-one standard mapping;
# the digraphs lj, nj, dž are single letters and are matched first.
_SR_DIGRAPHS = {
    "Lj": "Љ",
    "LJ": "Љ",
    "lj": "љ",
    "Nj": "Њ",
    "NJ": "Њ",
    "nj": "њ",
    "Dž": "Џ",
    "DŽ": "Џ",
    "dž": "џ",
}
_SR_LETTERS = dict(
    zip(
        "ABVGDĐEŽZIJKLMNOPRSTĆUFHCČŠabvgdđežzijklmnoprstćufhcčš",
        "АБВГДЂЕЖЗИЈКЛМНОПРСТЋУФХЦЧШабвгдђежзијклмнопрстћуфхцчш",
    )
)
_SR_RE = re.compile("|".join(sorted(_SR_DIGRAPHS, key=len, reverse=True)) + "|.", re.DOTALL)


def serbian_latin_to_cyrillic(text: str) -> str:
    """Transliterate Serbian Latin to Cyrillic. Digraphs ``lj/nj/dž`` become one letter.

    Words that are not Serbian (Latin binomials such as "Canis lupus") are transliterated too;
    callers that must keep them should not apply this policy to such labels.
    """
    return "".join(_SR_DIGRAPHS.get(m, _SR_LETTERS.get(m, m)) for m in _SR_RE.findall(text))


# ---------------------------------------------------------------------------------------------
# Table generation from a Unicode Character Database directory (maintainers only).

_HEADER = (
    "# Derived from the Unicode Character Database {version} ({source}).\n"
    "# © Unicode, Inc. Distributed under the Unicode License v3: https://www.unicode.org/license.txt\n"
    "# Regenerate: python -m babelclip.data.scripts_unicode UCD_DIR OUT_DIR\n"
)


def generate_tables(ucd_dir: str | Path, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``unicode_scripts.tsv`` and ``unihan_zh_variants.tsv`` from a UCD directory."""
    ucd, out = Path(ucd_dir), Path(out_dir)
    scripts_txt = (ucd / "Scripts.txt").read_text(encoding="utf-8")
    version = re.search(r"Scripts-([\d.]+)\.txt", scripts_txt)
    version_s = version.group(1) if version else "unknown version"
    aliases = {}
    for line in (ucd / "PropertyValueAliases.txt").read_text(encoding="utf-8").splitlines():
        parts = [p.strip() for p in line.split("#")[0].split(";")]
        if len(parts) >= 3 and parts[0] == "sc":
            aliases[parts[2]] = parts[1]
    ranges: list[list] = []
    for line in scripts_txt.splitlines():
        body = line.split("#")[0].strip()
        if not body:
            continue
        cps, name = (p.strip() for p in body.split(";"))
        lo, _, hi = cps.partition("..")
        ranges.append([int(lo, 16), int(hi or lo, 16), aliases[name]])
    ranges.sort()
    merged: list[list] = []
    for r in ranges:
        if merged and merged[-1][2] == r[2] and merged[-1][1] + 1 == r[0]:
            merged[-1][1] = r[1]
        else:
            merged.append(r)
    p1 = out / "unicode_scripts.tsv"
    p1.write_text(
        _HEADER.format(version=version_s, source="Scripts.txt, PropertyValueAliases.txt")
        + "".join(f"{lo:04X}\t{hi:04X}\t{code}\n" for lo, hi, code in merged),
        encoding="utf-8",
    )
    variants: dict[str, dict[str, list[str]]] = {}
    path = ucd / "Unihan_Variants.txt"
    raw = (
        path.read_text(encoding="utf-8")
        if path.exists()
        else bz2.decompress((ucd / "Unihan_Variants.txt.bz2").read_bytes()).decode("utf-8")
    )
    for line in raw.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1] in ("kSimplifiedVariant", "kTraditionalVariant"):
            ch = chr(int(parts[0][2:], 16))
            vals = [chr(int(v.split("<")[0][2:], 16)) for v in parts[2].split()]
            variants.setdefault(ch, {})[parts[1]] = vals
    p2 = out / "unihan_zh_variants.tsv"
    p2.write_text(
        _HEADER.format(version=version_s, source="Unihan_Variants.txt")
        + "# char\tkSimplifiedVariant\tkTraditionalVariant (space-separated)\n"
        + "".join(
            f"{ch}\t{' '.join(v.get('kSimplifiedVariant', []))}\t{' '.join(v.get('kTraditionalVariant', []))}\n"
            for ch, v in sorted(variants.items())
        ),
        encoding="utf-8",
    )
    return p1, p2


if __name__ == "__main__":  # pragma: no cover
    for p in generate_tables(sys.argv[1], sys.argv[2]):
        print(p)
