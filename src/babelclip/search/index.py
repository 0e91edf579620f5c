"""``build_index``: encode every image under a folder into the evaluation's embedding cache.

Incremental (see :mod:`babelclip.search.store`): the folder is scanned against its file table
(size + mtime, then a SHA-256 of the bytes), then only the contents the model's cache lacks
are encoded, through the same :func:`babelclip.eval.encode.encode_images` and
:class:`~babelclip.eval.cache.EmbeddingCache` as ``babelclip eval`` — decoding in workers, one
committed transaction per batch (a killed index resumes), corrupt files skipped, recorded in the
cache with their reason and counted.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cache_dir import embeddings_dir
from ..eval.cache import EmbeddingCache
from ..eval.encode import encode_images
from ..data.images import ImageItem, ImageSource
from .store import FileTable, ScanStats, content_key

if TYPE_CHECKING:  # pragma: no cover
    from ..models.base import Encoder

log = logging.getLogger(__name__)


@dataclass
class IndexReport:
    """What one ``build_index`` did."""

    folder: str
    model: str
    fingerprint: str
    files: int  # image files under the folder now
    scan: ScanStats
    encoded: int  # images that went through the model in this run
    cached: int  # distinct contents whose vector was already in the cache
    failed: dict[str, str] = field(default_factory=dict)  # relative path -> why it was skipped
    seconds: float = 0.0

    def summary(self) -> str:
        s = self.scan
        return (f"{self.folder}: {self.files} images indexed with {self.model} "
                f"({s.new} new, {s.changed} changed, {s.deleted} removed, {s.unchanged} unchanged; "
                f"{self.encoded} encoded, {self.cached} from the cache, {len(self.failed)} skipped as unreadable"
                + (f", {s.outside} links pointing outside the folder ignored" if s.outside else "")
                + f") in {self.seconds:.1f} s")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_encoder(model: str | Encoder, device: str = "cpu", *,
                    record_dir: str | os.PathLike | None = None) -> tuple[Encoder, str]:
    """``(encoder, name)`` for a model name (``create_model``) or an encoder object. With
    ``record_dir`` (the embedding cache folder), a name is built lazily where it can be
    (:func:`~babelclip.models.lazy.lazy_model`: its weights load on the first encoding)."""
    if not isinstance(model, str):
        return model, model.fingerprint.name
    if record_dir is not None:
        from ..models.lazy import lazy_model

        return lazy_model(model, record_dir, device=device)[0], model
    from ..models.registry import create_model

    return create_model(model, device=device), model


def _all_cached(cache_dir: str | os.PathLike, key: str, dim: int, items: list[str]) -> bool:
    """Whether the cache of fingerprint ``key`` holds a vector or a recorded failure for every item."""
    if not (Path(cache_dir) / f"{key}.sqlite").exists():
        return False
    with EmbeddingCache(cache_dir, key, dim) as cache:
        have = cache.get_images(items)
        rest = [k for k in items if k not in have]
        return len(cache.get_failures(rest)) == len(rest)


def _failures(cache_dir: str | os.PathLike, key: str, dim: int, first: dict[str, Any]) -> dict[str, str]:
    with EmbeddingCache(cache_dir, key, dim) as cache:
        bad = cache.get_failures([content_key(h) for h in first])
    return {r.rel: bad[content_key(h)] for h, r in first.items() if content_key(h) in bad}


def build_index(
    folder: str | os.PathLike,
    model: str | Encoder = "babel-lite",
    *,
    cache_dir: str | os.PathLike | None = None,
    store_dir: str | os.PathLike | None = None,
    batch_size: int = 32,
    num_workers: int = 0,
    device: str = "cpu",
    quiet: bool = True,
) -> IndexReport:
    """Index every image under ``folder`` with ``model`` (incrementally; see module docstring).

    ``cache_dir``: the embedding cache (default: eval's, ``~/.cache/babelclip/embeddings``);
    ``store_dir``: where the file table lives (default ``~/.cache/babelclip/search``).
    """
    t0 = time.perf_counter()
    folder = Path(folder)
    cache_dir = embeddings_dir(cache_dir)
    with FileTable(store_dir) as table:
        scan = table.scan(folder, quiet=quiet)
        rid = table.root_id(folder)
        rows = table.files([str(folder)])
        first: dict[str, Any] = {}
        for r in rows:
            first.setdefault(r.sha256, r)
        keys = [content_key(h) for h in first]
        recorded = table.recorded_model(rid, model) if isinstance(model, str) else None
        if recorded is not None and _all_cached(cache_dir, *recorded, keys):
            # Nothing to encode: no need to load the model (seconds) to learn its fingerprint.
            # Were its weights changed meanwhile, the searcher notices and asks for a re-index.
            failed = _failures(cache_dir, *recorded, first)
            return IndexReport(str(folder.resolve()), str(model), recorded[0], len(rows), scan, encoded=0,
                               cached=len(keys) - len(failed), failed=failed, seconds=time.perf_counter() - t0)
        encoder, name = resolve_encoder(model, device)
        with EmbeddingCache(cache_dir, encoder.fingerprint.key, encoder.dim) as cache:
            have = cache.get_images(keys)
            todo = [r for h, r in first.items() if content_key(h) not in have]
            emb = None
            if todo:
                source = ImageSource(f"index:{folder.name}", [ImageItem(r.rel, r.path) for r in todo])
                try:
                    emb = encode_images(encoder, source, cache, batch_size=batch_size, num_workers=num_workers,
                                        content_hash=True, quiet=quiet)
                finally:  # new vectors (even of an interrupted run) make the folder's snapshots stale
                    table.touch(rid)
            table.note_model(rid, encoder.fingerprint.key, name, encoder.dim)
        failed = dict(emb.failed) if emb is not None else {}
    report = IndexReport(str(folder.resolve()), name, encoder.fingerprint.key, len(rows), scan,
                         encoded=emb.n_encoded if emb is not None else 0, cached=len(have), failed=failed,
                         seconds=time.perf_counter() - t0)
    if failed:
        log.warning("%d images under %s could not be decoded and are not searchable; e.g. %s: %s",
                    len(failed), folder, *next(iter(failed.items())))
    return report
