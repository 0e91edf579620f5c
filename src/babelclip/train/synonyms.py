"""Synonym sets: the data of the lexical objective (:mod:`babelclip.train.lexical`).

A :class:`SynonymSet` is one concept (an emoji, a BabelNet synset, a user's entry) with its
texts in any number of languages: every member names the same thing, so any two are positives
of each other and the members of other sets in a batch are negatives. :class:`SynonymSets`
carries them with their source, licence and provenance (``meta["independent"]``, read by the
leakage guard as for parallel corpora, :mod:`babelclip.train.leakage`).

Sources:

- CLDR emoji annotations, offline: :func:`babelclip.train.sources.cldr_synonym_sets`;
- a lexical source of the label builder (BabelNet for users with a key, Open Multilingual
  Wordnet), asked for given synsets: :func:`lexicon_sets` — it takes any object with the
  builder's ``senses(synset, lang)`` (:class:`~babelclip.build.sources.LexicalSource`), so
  training needs no import of the builder;
- a JSONL file of the user's own sets (:func:`read_synonyms`), one set per line::

      {"id": "dog", "members": {"en": ["dog", "domestic dog"], "sw": "mbwa", "deu_Latn": ["Hund"]}}

  ``id`` is optional (the line number otherwise); language codes are any code the language
  table knows, stored as BCP-47 tags.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..languages import Language, get_language
from .parallel import ParallelDataError, json_lines

log = logging.getLogger(__name__)

Member = tuple[str, str]  # (BCP-47 tag, text)


class SynonymDataError(ParallelDataError):
    """Synonym sets that cannot be used as given (empty, malformed, too few for a batch)."""


@dataclass(frozen=True)
class SynonymSet:
    """One concept's texts: ``members`` are ``(tag, text)``, without repeats, order kept."""

    key: str  # the concept: "cldr:1f436", "babelnet:n02084071", a user's id
    members: tuple[Member, ...]

    def texts(self, tag: str) -> list[str]:
        return [t for g, t in self.members if g == tag]


def make_set(key: str, members: Iterable[Member]) -> SynonymSet:
    """A :class:`SynonymSet` with stripped texts, empty ones and exact repeats dropped."""
    clean = dict.fromkeys((tag, " ".join(text.split())) for tag, text in members if text and text.strip())
    return SynonymSet(key, tuple(clean))


@dataclass
class SynonymSets:
    """Synonym sets with where they came from (see the module docstring)."""

    sets: list[SynonymSet]
    source: str
    licence: str = "unknown"
    meta: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sets)

    def __iter__(self) -> Iterator[SynonymSet]:
        return iter(self.sets)

    def n_members(self) -> int:
        return sum(len(s.members) for s in self.sets)

    def languages(self) -> Counter:
        """Members per language tag."""
        return Counter(tag for s in self.sets for tag, _ in s.members)

    def replaced(self, sets: list[SynonymSet], **meta: str) -> SynonymSets:
        return SynonymSets(sets, self.source, self.licence, {**self.meta, **meta})

    def merged(self, other: SynonymSets) -> SynonymSets:
        """Both collections' sets (not joined: two sources' concepts are not known to be one)."""
        return SynonymSets(
            self.sets + other.sets, f"{self.source}+{other.source}",
            self.licence if self.licence == other.licence else f"{self.licence}; {other.licence}",
            {k: v for k, v in self.meta.items() if other.meta.get(k) == v},
        )

    def for_language(self, lang: str | Language, anchor_langs: Sequence[str] | None = None) -> SynonymSets:
        """The sets usable to train ``lang``: each keeps its members in ``lang`` and in
        ``anchor_langs`` (every other language when None), and is kept only with at least one
        member in ``lang`` and one in another language."""
        tag = get_language(lang).tag
        anchors = None if anchor_langs is None else {get_language(a).tag for a in anchor_langs} - {tag}
        out = []
        for s in self.sets:
            members = [(g, t) for g, t in s.members if g == tag or anchors is None or g in anchors]
            if any(g == tag for g, _ in members) and any(g != tag for g, _ in members):
                out.append(SynonymSet(s.key, tuple(members)))
        anchor_meta = ",".join(sorted(anchors)) if anchors is not None else "all"
        return self.replaced(out, target=tag, anchor_langs=anchor_meta)


def _members_of(obj: dict, where: str) -> list[Member]:
    members = obj.get("members", {k: v for k, v in obj.items() if k != "id"})
    if not isinstance(members, dict) or not members:
        raise SynonymDataError(f"{where}: expected an object {{\"id\": ..., \"members\": {{LANG: [texts]}}}}; found {obj!r:.120}")
    out = []
    for code, texts in members.items():
        try:
            tag = get_language(code).tag
        except (KeyError, ValueError) as e:
            raise SynonymDataError(f"{where}: unknown language code {code!r} ({e})") from None
        for text in [texts] if isinstance(texts, str) else texts:
            if not isinstance(text, str):
                raise SynonymDataError(f"{where}: the {code} members must be strings, found {text!r}")
            out.append((tag, text))
    return out


def read_synonyms(path: str | os.PathLike, licence: str = "unknown") -> SynonymSets:
    """Synonym sets from a JSONL file (format in the module docstring); sets with fewer than two
    members are dropped (a set of one has no positive), and counted in the log."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"synonym file not found: {p}")
    sets, single = [], 0
    for i, obj in json_lines(p, SynonymDataError):
        if not isinstance(obj, dict):
            raise SynonymDataError(f"{p}:{i}: expected a JSON object per line, found {type(obj).__name__}")
        s = make_set(str(obj.get("id", f"{p.name}:{i}")), _members_of(obj, f"{p}:{i}"))
        if len(s.members) >= 2:
            sets.append(s)
        else:
            single += 1
    if not sets:
        raise SynonymDataError(f"{p}: no synonym set with two or more members (lines with one: {single})")
    if single:
        log.warning("%s: %d sets with fewer than two members dropped", p, single)
    return SynonymSets(sets, str(p), licence)


class LexiconSource(Protocol):
    """What :func:`lexicon_sets` needs of a lexical source (the label builder's protocol)."""

    name: str
    licence: str

    def senses(self, synset: str, lang: str) -> list: ...


def read_synset_ids(path: str | os.PathLike) -> list[str]:
    """Synset ids, one per line (``#`` starts a comment), e.g. WordNet 3.0 wnids ``n02084071``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"synset list not found: {p}")
    ids = [ln.split("#", 1)[0].strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    ids = [i for i in ids if i]
    if not ids:
        raise SynonymDataError(f"{p}: no synset id (one per line, e.g. n02084071)")
    return ids


def lexicon_sets(source: LexiconSource, synsets: Sequence[str], langs: Sequence[str],
                 machine_translated: bool = False) -> SynonymSets:
    """One set per synset: its lemmas in ``langs`` from ``source`` (BabelNet, OMW...), ``_`` read
    as a space; automatic translations (BabelNet's BABELNET/WNTR/WIKITR senses) left out unless
    ``machine_translated``. The sets are not independent of evaluation data built from the same
    source (Babel-ImageNet's labels are BabelNet lemmas): the leakage guard drops a set that
    holds an evaluation text."""
    tags = [get_language(g).tag for g in langs]
    sets = []
    for synset in synsets:
        members = [(tag, str(s.lemma).replace("_", " ")) for tag in tags for s in source.senses(synset, tag)
                   if machine_translated or not getattr(s, "is_machine_translated", False)]
        s = make_set(f"{source.name}:{synset}", members)
        if len(s.members) >= 2:
            sets.append(s)
    if not sets:
        raise SynonymDataError(f"{source.name}: none of the {len(synsets)} synsets has two lemmas in {', '.join(tags)}")
    log.info("%s: %d synonym sets from %d synsets in %d languages", source.name, len(sets), len(synsets), len(tags))
    return SynonymSets(sets, f"{source.name}:synsets", source.licence)
