"""Build the Unicode tables shipped in ``babelclip/_data`` from a Unicode Character Database.

``unicode_scripts.tsv`` (code point ranges -> ISO 15924 script, from ``Scripts.txt`` and
``PropertyValueAliases.txt``) and ``unihan_zh_variants.tsv`` (each Han character's
``kSimplifiedVariant`` and ``kTraditionalVariant``, from ``Unihan_Variants.txt``), read at run
time by :mod:`babelclip.data.scripts_unicode`. Debian's ``unicode-data`` installs a UCD at
``/usr/share/unicode``::

    babelclip-tools unicode-tables /usr/share/unicode
"""
from __future__ import annotations

import bz2
import re
from pathlib import Path

import babelclip

DATA_DIR = Path(babelclip.__file__).parent / "_data"


_HEADER = (
    "# Derived from the Unicode Character Database {version} ({source}).\n"
    "# © Unicode, Inc. Distributed under the Unicode License v3: https://www.unicode.org/license.txt\n"
    "# Regenerate: babelclip-tools unicode-tables UCD_DIR [OUT_DIR]\n"
)


def generate_tables(ucd_dir: str | Path, out_dir: str | Path = DATA_DIR) -> tuple[Path, Path]:
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
