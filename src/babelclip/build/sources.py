"""The lexical-source protocol: where a builder gets the words for a synset in a language.

A source answers :meth:`LexicalSource.senses` for a WordNet 3.0 synset id (an ImageNet-style
wnid such as ``n01440764``: part of speech + 8-digit offset) and a BCP-47 tag, with senses in the
source's own preference order and the flags the Babel-ImageNet rules need.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

_WNID = re.compile(r"^([nvarsNVARS])(\d{8})$")


@dataclass(frozen=True)
class Sense:
    lemma: str
    source: str = ""  # the source's own name for where the sense came from (e.g. BabelNet "WIKI")
    is_machine_translated: bool = False
    from_wikipedia_redirect: bool = False
    from_wikidata_alias: bool = False


@runtime_checkable
class LexicalSource(Protocol):
    name: str  # e.g. "babelnet", "omw"
    licence: str  # licence of the data the source returns

    def senses(self, synset: str, lang: str) -> list[Sense]:
        """Senses of ``synset`` (a wnid) in ``lang`` (a BCP-47 tag), best first; [] when none."""
        ...


def parse_wnid(wnid: str) -> tuple[str, str]:
    """``"n01440764"`` -> (``"01440764"``, ``"n"``); ValueError naming the allowed form."""
    m = _WNID.match(wnid.strip())
    if not m:
        raise ValueError(
            f"synset id {wnid!r} is not a WordNet 3.0 wnid; allowed: a POS letter n/v/a/r/s and 8 digits, e.g. n01440764"
        )
    return m.group(2), m.group(1).lower()
