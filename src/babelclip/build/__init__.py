"""Build multilingual label sets for any WordNet class set from lexical sources (BabelNet, OMW)."""
from __future__ import annotations

from .builder import build_labelset
from .sources import LexicalSource, Sense, parse_wnid

__all__ = ["LexicalSource", "Sense", "build_labelset", "parse_wnid"]
