"""English → X noun pairs from a FreeDict dictionary installed by Debian, as a parallel TSV.

    sudo apt-get install dict-freedict-eng-deu
    python bench/freedict_pairs.py --dict eng-deu --out bench_out/freedict-de.tsv --n 20000
    python bench/train_adapters.py --langs de --parallel bench_out/freedict-{lang}.tsv ...

FreeDict (https://freedict.org) is the only offline lexicon found whose vocabulary is at the level
of Babel-ImageNet's labels ("Dalmatian" → "Dalmatiner"). Its dictionaries are GPL-2+/GPL-3/AGPL-3
(per dictionary; read the header this script prints) and their entry formats differ: this reader
knows the Ding-derived English–German one (``word /ipa/`` then ``Übersetzung <masc> [zool.]``)
and keeps entries whose first translation is a noun (a gender tag). Pairs whose English side is an
ImageNet class name or WordNet lemma are dropped, so no class is taught by its own name; the
leakage guard of ``babelclip train`` still drops copies of evaluation texts. Used to measure
whether label-level vocabulary helps babel-lite (docs/babel-lite.md); nothing trained on it ships.
"""
from __future__ import annotations

import argparse
import gzip
import random
import re
from pathlib import Path

DICTD = Path("/usr/share/dictd")
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
NOUN = re.compile(r"<(masc|fem|neut|n)>")


def _b64(s: str) -> int:
    n = 0
    for ch in s:
        n = n * 64 + B64.index(ch)
    return n


def entries(name: str):
    """The text of every distinct entry of ``freedict-NAME`` (dictd's .index + .dict.dz)."""
    index = (DICTD / f"freedict-{name}.index").read_text(encoding="utf-8").splitlines()
    data = gzip.open(DICTD / f"freedict-{name}.dict.dz").read()
    seen = set()
    for line in index:
        word, off, size = line.split("\t")
        if word.startswith("00") or (off, size) in seen:  # 00-database-*: the header entries
            continue
        seen.add((off, size))
        yield data[_b64(off) : _b64(off) + _b64(size)].decode("utf-8", "replace")


def noun_pairs(name: str) -> list[tuple[str, str]]:
    out = []
    for entry in entries(name):
        lines = entry.split("\n")
        head = re.sub(r"\s*/[^/]*/\s*$", "", lines[0]).strip()  # drop the IPA
        if len(lines) < 2 or not head or not NOUN.search(lines[1]):
            continue
        first = re.split(r"[,;]", lines[1])[0]
        first = re.sub(r"<[^>]*>|\[[^\]]*\]|\([^)]*\)", "", first).strip()
        if first and len(first) <= 60 and len(head) <= 60 and first.lower() != head.lower():
            out.append((head, first))
    return list(dict.fromkeys(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dict", default="eng-deu", help="the dictionary: freedict-DICT.index under /usr/share/dictd")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=20000, help="pairs to keep (a seeded random sample)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from babelclip.data.imagenet import imagenet_classes

    names = {n.replace("_", " ").lower() for c in imagenet_classes() for n in (c.clip_name, *c.lemmas)}
    pairs = [p for p in noun_pairs(args.dict) if p[0].lower() not in names]
    random.Random(args.seed).shuffle(pairs)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("".join(f"{a}\t{b}\n" for a, b in pairs[: args.n]), encoding="utf-8")
    print(f"{len(pairs)} noun pairs without an ImageNet class name in freedict-{args.dict}; wrote {min(args.n, len(pairs))} "
          f"to {args.out}, e.g. {pairs[:3]}")


if __name__ == "__main__":
    main()
