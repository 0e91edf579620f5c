"""Build a :class:`~babelclip.data.labels.LabelSet` for any WordNet class set from lexical sources.

The rules are those of Babel-ImageNet (Geigle et al., 2024, Sec. 3), made reusable for any list of
WordNet 3.0 synsets (ImageNet-1k, CIFAR-100's synsets, a custom set):

1. drop machine-translated senses (BabelNet's automatic translations);
2. outside English, drop a sense whose lemma equals any English lemma of any class in the set
   (English words leaking into other languages; compared case-insensitively after ``_`` -> space);
3. prefer a sense that is not from a Wikipedia redirect or a Wikidata alias, else take the first;
4. write the lemma with ``_`` replaced by a space;
5. a class left without a sense has no label in that language; a language left empty is dropped.

Sources are queried in the order given; their senses are concatenated in that order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from collections.abc import Iterable, Sequence

from ..data.labels import LabelSet
from ..languages import get_language
from .sources import LexicalSource, Sense, parse_wnid

log = logging.getLogger(__name__)


def lemma_text(lemma: str) -> str:
    return lemma.replace("_", " ").strip()


def _key(lemma: str) -> str:
    return lemma_text(lemma).casefold()


@dataclass
class Choice:
    sense: Sense
    source: str


def choose(senses: list[tuple[Sense, str]], english: set[str], is_english: bool) -> Choice | None:
    """Apply rules 1-3 to one class in one language; ``senses`` are (sense, source name) pairs."""
    kept = [(s, n) for s, n in senses if not s.is_machine_translated and lemma_text(s.lemma)]
    if not is_english:
        kept = [(s, n) for s, n in kept if _key(s.lemma) not in english]
    if not kept:
        return None
    preferred = [
        (s, n) for s, n in kept if not (s.from_wikipedia_redirect or s.from_wikidata_alias)
    ]
    s, n = (preferred or kept)[0]
    return Choice(s, n)


def build_labelset(
    wnids: Sequence[str],
    languages: Iterable[str],
    sources: Sequence[LexicalSource],
    *,
    name: str = "custom",
) -> LabelSet:
    """Labels for ``wnids`` in ``languages`` (any codes) from ``sources``, by the rules above.

    Provenance per label: ``"<source>:<sense source>"`` plus ``+redirect``/``+alias`` when the
    fallback in rule 3 took such a sense. The licence lists every source's licence.
    """
    for w in wnids:
        parse_wnid(w)
    if not sources:
        raise ValueError("build_labelset needs at least one lexical source")
    tags = list(dict.fromkeys(get_language(c).tag for c in languages))

    def collect(wnid: str, tag: str) -> list[tuple[Sense, str]]:
        return [(s, src.name) for src in sources for s in src.senses(wnid, tag)]

    # Rule 2 needs every English lemma of every class, whatever languages are built.
    english: set[str] = set()
    for w in wnids:
        english |= {_key(s.lemma) for s, _ in collect(w, "en") if not s.is_machine_translated}
    labels: dict[str, dict[int, str]] = {}
    provenance: dict[str, dict[int, str]] = {}
    for tag in tags:
        per_class: dict[int, str] = {}
        prov: dict[int, str] = {}
        for i, w in enumerate(wnids):
            c = choose(collect(w, tag), english, tag == "en")
            if c is None:
                continue
            per_class[i] = lemma_text(c.sense.lemma)
            flags = (
                "+redirect"
                if c.sense.from_wikipedia_redirect
                else "+alias"
                if c.sense.from_wikidata_alias
                else ""
            )
            prov[i] = f"{c.source}:{c.sense.source}{flags}"
        if per_class:
            labels[tag], provenance[tag] = per_class, prov
        else:
            log.info("%s: no label for any class; language dropped", tag)
    licence = "; ".join(f"{src.name}: {src.licence}" for src in sources)
    return LabelSet(
        name=name, wnids=tuple(wnids), labels=labels, provenance=provenance, licence=licence
    )
