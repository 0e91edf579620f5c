"""Readers for parallel text: every format becomes a :class:`ParallelCorpus` of (English, target) pairs.

Formats (the ones parallel data is shipped in):

- TSV: ``english<TAB>target`` per line (an optional header line is detected and skipped);
- JSONL: one object per line with the English text under ``"en"`` (or ``"source"``) and the
  target under the language's code (or ``"target"``);
- Moses-style aligned files (OPUS downloads): two files, one sentence per line, line *i* of one
  the translation of line *i* of the other;
- Tatoeba exports: ``sentences.csv`` (``id<TAB>lang<TAB>text``, ISO 639-3 codes) with
  ``links.csv`` (``id<TAB>id``), or the pair TSV the Tatoeba download page produces
  (``id<TAB>text<TAB>id<TAB>text``).

The language is always resolved through :func:`babelclip.languages.get_language`, so ``sw``,
``swh``, ``swh_Latn`` and ``SW`` are one language. Bad input (empty files, files whose line
counts differ, unknown languages) raises :class:`ParallelDataError` naming the files and counts.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BabelclipError
from ..languages import Language, get_language

log = logging.getLogger(__name__)

PathLike = str | os.PathLike


class ParallelDataError(BabelclipError):
    """Parallel data that cannot be used as given (empty, misaligned, malformed)."""


#: The language of a corpus that mixes languages (ISO 639-2 ``mul``): only a text side whose
#: embeddings do not depend on the language can be trained on one (:func:`babelclip.train.distill.distill` checks).
MULTILINGUAL = Language("mul", "multiple languages", "mul")


@dataclass
class ParallelCorpus:
    """Pairs ``(english, target)`` for one target language, with where they came from.

    ``licence`` travels with the pairs so a training run can record (and refuse) data whose
    terms do not allow the intended use.
    """

    lang: Language
    pairs: list[tuple[str, str]]
    source: str  # a path or a named source ("cldr:sw", "bible:h-4")
    licence: str = "unknown"
    meta: dict[str, str] = field(default_factory=dict)  # e.g. {"independent": "yes"}: see leakage.py

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def deduplicated(self) -> ParallelCorpus:
        """The same corpus with exact duplicate pairs and pairs with an empty side removed."""
        seen = dict.fromkeys((e.strip(), t.strip()) for e, t in self.pairs if e.strip() and t.strip())
        return ParallelCorpus(self.lang, list(seen), self.source, self.licence, dict(self.meta))

    def merged(self, other: ParallelCorpus) -> ParallelCorpus:
        """Both corpora's pairs (same language required), sources and licences joined."""
        if other.lang != self.lang:
            raise ParallelDataError(f"cannot merge {self.lang.tag} pairs with {other.lang.tag} pairs")
        return ParallelCorpus(
            self.lang,
            self.pairs + other.pairs,
            f"{self.source}+{other.source}",
            self.licence if self.licence == other.licence else f"{self.licence}; {other.licence}",
            {k: v for k, v in self.meta.items() if other.meta.get(k) == v},  # what holds for both
        )


def _lines(path: PathLike) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"parallel file not found: {p}")
    data = p.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ParallelDataError(
            f"{p}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x} at byte {e.start}, column {col} of line {line}: "
            f"{e.reason}); parallel data must be UTF-8 — convert it, e.g. iconv -f LATIN1 -t UTF-8"
        ) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln.rstrip("\r") for ln in lines]


def _tab_rows(path: PathLike, n_cols: int, layout: str, columns: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, columns)`` of each non-blank line of a tab-separated file with exactly
    ``n_cols`` columns; an empty file or a line with another count is a :class:`ParallelDataError`
    naming ``layout`` / ``columns``."""
    lines = _lines(path)
    if not lines:
        raise ParallelDataError(f"{path}: empty file (0 lines); expected {layout}")
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) != n_cols:
            raise ParallelDataError(f"{path}:{i}: expected {n_cols} {columns}, found {len(cols)}")
        yield i, cols


def _finish(lang: Language, pairs: list[tuple[str, str]], source: str, files: Sequence[PathLike], licence: str) -> ParallelCorpus:
    where = ", ".join(map(str, files))
    if not pairs:
        raise ParallelDataError(f"no {lang.tag} pairs found in {where} (empty or no matching lines)")
    usable = [(e, t) for e, t in pairs if e.strip() and t.strip()]
    if not usable:
        raise ParallelDataError(f"every one of the {len(pairs)} {lang.tag} pairs in {where} has an empty or "
                                "whitespace-only side (English or target); nothing to train on")
    if len(usable) < len(pairs):
        log.warning("%s: dropped %d of %d pairs with an empty or whitespace-only side", where,
                    len(pairs) - len(usable), len(pairs))
    corpus = ParallelCorpus(lang, usable, source, licence)
    log.info("read %d %s pairs from %s", len(pairs), lang.tag, source)
    return corpus


def read_tsv(path: PathLike, lang: str | Language, licence: str = "unknown") -> ParallelCorpus:
    """``english<TAB>target`` per line; a first line ``en<TAB>LANG`` (or ``english``/``source``) is a header."""
    language = get_language(lang)
    pairs = []
    for i, cols in _tab_rows(path, 2, "english<TAB>target per line", "tab-separated columns (english, target)"):
        if i == 1 and cols[0].strip().lower() in ("en", "eng", "english", "source", "src"):
            continue
        pairs.append((cols[0].strip(), cols[1].strip()))
    return _finish(language, pairs, str(path), [path], licence)


def json_lines(path: PathLike, error: type[ParallelDataError] = ParallelDataError) -> Iterator[tuple[int, object]]:
    """``(line number, parsed value)`` of each non-blank line of a UTF-8 JSONL file; a line that
    is not JSON raises ``error`` naming the file and line."""
    numbered = [(i, line) for i, line in enumerate(_lines(path), 1) if line.strip()]
    for i, line in numbered:
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            raise error(f"{path}:{i}: not valid JSON ({e})") from None
        yield i, value


def read_jsonl(path: PathLike, lang: str | Language, licence: str = "unknown") -> ParallelCorpus:
    """One JSON object per line: English under ``en``/``source``, target under the language code or ``target``."""
    language = get_language(lang)
    objects = list(json_lines(path))
    if not objects:
        raise ParallelDataError(f"{path}: empty file (0 JSON lines)")
    tgt_keys = ["target", "tgt", *language.codes]
    pairs = []
    for i, obj in objects:
        en = obj.get("en", obj.get("source", obj.get("src")))
        tgt = next((obj[k] for k in tgt_keys if k in obj), None)
        if en is None or tgt is None:
            raise ParallelDataError(
                f"{path}:{i}: expected keys 'en' (or 'source') and one of {tgt_keys}; found {sorted(obj)}"
            )
        pairs.append((str(en).strip(), str(tgt).strip()))
    return _finish(language, pairs, str(path), [path], licence)


def read_moses(english_path: PathLike, target_path: PathLike, lang: str | Language, licence: str = "unknown") -> ParallelCorpus:
    """Two line-aligned files (OPUS' Moses format): line *i* of one translates line *i* of the other."""
    language = get_language(lang)
    en, tgt = _lines(english_path), _lines(target_path)
    if not en or not tgt:
        raise ParallelDataError(
            f"empty parallel file: {english_path} has {len(en)} lines, {target_path} has {len(tgt)} lines"
        )
    if len(en) != len(tgt):
        raise ParallelDataError(
            f"misaligned parallel files: {english_path} has {len(en)} lines but {target_path} has {len(tgt)}; "
            "Moses-style files must have one sentence per line, in the same order"
        )
    pairs = [(e.strip(), t.strip()) for e, t in zip(en, tgt) if e.strip() and t.strip()]
    return _finish(language, pairs, f"{english_path}|{target_path}", [english_path, target_path], licence)


def read_tatoeba(
    sentences_csv: PathLike, links_csv: PathLike, lang: str | Language, licence: str = "CC BY 2.0 FR (Tatoeba)"
) -> ParallelCorpus:
    """Tatoeba's full export: ``sentences.csv`` (id, ISO 639-3 lang, text) + ``links.csv`` (id, id)."""
    language = get_language(lang)
    if not language.iso639_3:
        raise ParallelDataError(f"language {language.tag} has no ISO 639-3 code in the table; Tatoeba needs one")
    en_text: dict[str, str] = {}
    tgt_text: dict[str, str] = {}
    n_rows = 0
    for i, line in enumerate(_lines(sentences_csv), 1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) < 3:
            raise ParallelDataError(f"{sentences_csv}:{i}: expected id<TAB>lang<TAB>text, found {len(cols)} columns")
        n_rows += 1
        if cols[1] == "eng":
            en_text[cols[0]] = cols[2].strip()
        elif cols[1] == language.iso639_3:
            tgt_text[cols[0]] = cols[2].strip()
    if n_rows == 0:
        raise ParallelDataError(f"{sentences_csv}: empty file (0 sentences)")
    links = _lines(links_csv)
    if not links:
        raise ParallelDataError(f"{links_csv}: empty file (0 links)")
    pairs = []
    for line in links:
        a, _, b = line.partition("\t")
        a, b = a.strip(), b.strip()
        if a in en_text and b in tgt_text:
            pairs.append((en_text[a], tgt_text[b]))
    return _finish(language, pairs, f"tatoeba:{sentences_csv}", [sentences_csv, links_csv], licence)


def read_tatoeba_pairs(path: PathLike, lang: str | Language, licence: str = "CC BY 2.0 FR (Tatoeba)") -> ParallelCorpus:
    """Tatoeba's download-page pair TSV: ``id<TAB>english<TAB>id<TAB>target`` per line."""
    language = get_language(lang)
    pairs = []
    for _, cols in _tab_rows(path, 4, "id<TAB>english<TAB>id<TAB>target", "columns (id, english, id, target)"):
        pairs.append((cols[1].strip(), cols[3].strip()))
    return _finish(language, pairs, f"tatoeba:{path}", [path], licence)


def read_parallel(path: PathLike | Sequence[PathLike], lang: str | Language, licence: str = "unknown") -> ParallelCorpus:
    """Pick the reader from what ``path`` is.

    Two paths → Moses-style files (English first); a directory holding ``sentences.csv`` and
    ``links.csv`` → Tatoeba; ``*.jsonl`` → JSONL; ``*.tsv``/``*.txt`` with 4 columns → Tatoeba
    pairs, with 2 columns → TSV.
    """
    if isinstance(path, (list, tuple)):
        if len(path) != 2:
            raise ParallelDataError(f"expected 2 aligned files (english, target), got {len(path)}: {list(path)}")
        return read_moses(path[0], path[1], lang, licence)
    p = Path(path)
    if p.is_dir():
        s, ln = p / "sentences.csv", p / "links.csv"
        if s.exists() and ln.exists():
            return read_tatoeba(s, ln, lang)
        raise ParallelDataError(f"{p}: a directory must hold Tatoeba's sentences.csv and links.csv")
    if p.suffix == ".jsonl":
        return read_jsonl(p, lang, licence)
    if p.suffix in (".tsv", ".txt", ".csv"):
        first = next((ln for ln in _lines(p) if ln.strip()), "")
        if first.count("\t") == 3:
            return read_tatoeba_pairs(p, lang)
        return read_tsv(p, lang, licence)
    raise ParallelDataError(f"{p}: unknown parallel format; allowed: .tsv, .jsonl, two Moses files, a Tatoeba directory")

