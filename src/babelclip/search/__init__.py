"""Multilingual image search: index a folder, query it in any language or by an image.

An index is the evaluation's embedding cache plus a file table (:mod:`.store`); a query is
``encode_texts([q], lang)`` or an image's embedding; top-k is exact on float16 vectors or, above
:data:`~.vectors.EXACT_LIMIT` images, HNSW from usearch (:mod:`.vectors`). The web page
(:mod:`.server`, ``babelclip serve``) is a thin layer over :class:`Searcher`.

    from babelclip.search import build_index, search, search_image
    build_index("~/Pictures")                                   # incremental; babel-lite by default
    for hit in search("ein Hund am Strand", lang="de", k=5):    # every indexed folder
        print(hit.score, hit.path)

Heavy parts (torch, usearch, FastAPI) load only when used; importing this package is cheap.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .auto import Choice, choose_model
from .index import IndexReport, build_index
from .query import Hit, IndexNotFoundError, Searcher, open_index

__all__ = [
    "Choice",
    "Hit",
    "IndexNotFoundError",
    "IndexReport",
    "Searcher",
    "build_index",
    "choose_model",
    "open_index",
    "search",
    "search_image",
]


def search(query: str, lang: str, k: int = 20, *, index: str | os.PathLike | Sequence[str] | None = None,
           model: str | Any = None, results: Sequence[str | os.PathLike] = (), **kw: Any) -> list[Hit]:
    """The ``k`` indexed images closest to ``query`` in language ``lang`` (one-shot: opens the
    index, queries, closes; keep a :func:`open_index` searcher for many queries)."""
    with open_index(index, model, lang=lang, results=results, **kw) as s:
        return s.text(query, lang, k)


def search_image(path: str | os.PathLike, k: int = 20, *, index: str | os.PathLike | Sequence[str] | None = None,
                 model: str | Any = None, **kw: Any) -> list[Hit]:
    """The ``k`` indexed images closest to the image at ``path`` (itself left out)."""
    with open_index(index, model, **kw) as s:
        return s.image(path, k)
