"""Top-k over unit-norm vectors: exact on float16 rows up to ``EXACT_LIMIT``, HNSW above it.

Exact search keeps the index as one ``(n, d)`` float16 matrix (half the memory of float32; the
cosines move by < 1e-3) and scores a query against every row (:func:`exact_top_k`). Its cost
grows linearly; ``bench/search_latency.py`` measured the size where it stops being fast (see
``EXACT_LIMIT``).

Above that, an approximate index from `usearch <https://github.com/unum-cloud/usearch>`_
(HNSW, Malkov & Yashunin 2018, arXiv:1603.09320), chosen over faiss-cpu because it stores
float16 vectors natively, adds **and removes** single keys in an HNSW graph (faiss's
``IndexHNSWFlat`` cannot remove), saves/loads/memory-maps one file, and is a ~2 MB wheel with
no BLAS or OpenMP runtime to ship. The index file is kept with the vector snapshot
(:mod:`.snapshot`, which memory-maps it when current) and updated incrementally: keys of
vectors gone from the folder are removed, new ones added, with usearch's own threads (all
cores). Its recall@10 against exact search is measured on every update (:func:`recall_at_k`)
and logged.

Keys are 63-bit integers derived from the content hash (:func:`key_of`), so the same image
has the same key in every index and a moved file keeps its place.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Largest index searched exactly; above it, HNSW (bench/README.md: exact top-20 over 100k x
#: 512-d float16 takes ~40-50 ms on two cores and grows linearly; HNSW stays near 1-2 ms).
EXACT_LIMIT = 100_000
#: HNSW settings: graph degree, and candidate-list sizes while adding and searching (usearch's
#: defaults are 16/128/64). Searching with 256, recall@10 against exact was 0.998-1.000 at
#: 10k-100k but 0.977-0.989 at 1M; with 384 it was 0.993 at 1M for p50 2.05 ms / p95 4.09 ms
#: (512: no better) — bench/README.md. ``expansion_search`` is a search-time setting (no rebuild).
CONNECTIVITY = 16
EXPANSION_ADD = 128
EXPANSION_SEARCH = 384
_CHUNK_ROWS = 32768  # rows converted to float32 at once in exact search (~64 MB at 512-d)


def key_of(sha256_hex: str) -> int:
    """A 63-bit integer key for a content hash (collisions: ~1e-7 at a billion pairs)."""
    return int(sha256_hex[:16], 16) >> 1


def exact_top_k(matrix: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``matrix`` with the highest dot product for each query: ``(rows, scores)``, each
    ``(m, min(k, n))``, best first.

    Brute force over every row, with usearch's SIMD float16 kernels when usearch is installed
    (float32 accumulation; 10x faster than converting float16 chunks with NumPy, which has no
    vectorised float16 conversion: 68 ms per 10k x 512 rows on our CPUs), else NumPy.
    """
    q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    n = matrix.shape[0]
    k = min(int(k), n)
    if k <= 0:
        return np.zeros((len(q), 0), np.int64), np.zeros((len(q), 0), np.float32)
    try:
        from usearch.index import MetricKind, search
    except ImportError:
        return _numpy_top_k(matrix, q, k)
    m = search(np.ascontiguousarray(matrix, dtype=np.float16), q.astype(np.float16), k, MetricKind.IP, exact=True,
               threads=os.cpu_count() or 1)
    rows = np.asarray(m.keys, dtype=np.int64).reshape(len(q), -1)
    return rows, 1.0 - np.asarray(m.distances, dtype=np.float32).reshape(len(q), -1)


def _numpy_top_k(matrix: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`exact_top_k` in NumPy, float32 chunks of the float16 rows (ties: lower row first)."""
    n = matrix.shape[0]
    scores = np.empty((len(q), n), np.float32)
    for s in range(0, n, _CHUNK_ROWS):
        scores[:, s : s + _CHUNK_ROWS] = q @ matrix[s : s + _CHUNK_ROWS].astype(np.float32).T
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (len(q), 1))
    top = np.take_along_axis(scores, part, 1)
    order = np.lexsort((part, -top), axis=1)
    rows = np.take_along_axis(part, order, 1)
    return rows.astype(np.int64), np.take_along_axis(top, order, 1)


class VectorIndex:
    """Keys and their float16 vectors; ``search`` is exact up to ``exact_limit`` rows, else HNSW
    (kept in ``ann_path`` when given, and updated there incrementally).

    ``vectors`` may be a memory-mapped array (:mod:`.snapshot`): nothing here copies it. ``ann``:
    an HNSW index already holding exactly ``keys`` (loaded or memory-mapped by the caller), used
    as it is, with ``recall`` the recall@10 the caller measured for it."""

    def __init__(self, keys: Sequence[int] | np.ndarray, vectors: np.ndarray, *, exact_limit: int = EXACT_LIMIT,
                 ann_path: str | os.PathLike | None = None, quiet: bool = True, ann: Any = None,
                 recall: float | None = None):
        self.keys = np.asarray(keys, dtype=np.int64)
        self.matrix = np.ascontiguousarray(vectors, dtype=np.float16)
        if self.matrix.ndim != 2 or len(self.keys) != len(self.matrix):
            raise ValueError(f"{len(self.keys)} keys but vectors of shape {self.matrix.shape}")
        self._order: np.ndarray | None = None  # argsort of keys, made on the first vector() call
        self.ann = ann
        self.recall = recall
        if ann is None and len(self.keys) > exact_limit:
            path = None if ann_path is None else Path(ann_path)
            self.ann, changed = sync_ann(self.keys, self.matrix, path, quiet=quiet)
            self.recall = None if changed or path is None else _saved_recall(path, len(self))
            if self.recall is None:  # measured whenever the graph changed, and kept beside it
                self.recall = recall_at_k(self)
                if path is not None:
                    path.with_suffix(".recall.json").write_text(json.dumps({"n": len(self), "recall@10": self.recall}))
            log.info("approximate index (usearch HNSW) over %d vectors: recall@10 against exact %.4f",
                     len(self.keys), self.recall)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def kind(self) -> str:
        return "hnsw" if self.ann is not None else "exact"

    def row(self, key: int) -> int | None:
        """The row of ``key``, or ``None`` (a binary search: no dict of a million keys to build)."""
        if self._order is None:
            self._order = np.argsort(self.keys, kind="stable")
        i = int(np.searchsorted(self.keys, key, sorter=self._order))
        if i < len(self._order) and self.keys[self._order[i]] == key:
            return int(self._order[i])
        return None

    def vector(self, key: int) -> np.ndarray | None:
        r = self.row(int(key))
        return None if r is None else self.matrix[r].astype(np.float32)

    def search(self, query: np.ndarray, k: int, *, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(keys, scores)`` of the ``k`` nearest rows to one query vector, best first."""
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if self.ann is None or exact:
            rows, scores = exact_top_k(self.matrix, q, k)
            return self.keys[rows[0]], scores[0]
        m = self.ann.search(q.astype(np.float16), min(k, len(self)))
        keys = np.asarray(m.keys, dtype=np.int64)
        return keys, 1.0 - np.asarray(m.distances, dtype=np.float32)  # "ip" distance is 1 - dot


def _new_ann(dim: int):
    from usearch.index import Index

    return Index(ndim=dim, metric="ip", dtype="f16", connectivity=CONNECTIVITY,
                 expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)


def _saved_recall(path: Path, n: int) -> float | None:
    try:
        saved = json.loads(path.with_suffix(".recall.json").read_text())
        return float(saved["recall@10"]) if saved.get("n") == n else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def sync_ann(keys: np.ndarray, matrix: np.ndarray, path: Path | None, *, quiet: bool = True):
    """``(index, changed)``: an HNSW index holding exactly ``keys`` — the one saved at ``path``
    with gone keys removed and new ones added (saved back atomically), or a new one — and
    whether it differs from the saved one."""
    try:
        import usearch  # noqa: F401
    except ImportError as e:
        raise ImportError(f"an index of more than {EXACT_LIMIT} images searches approximately with usearch "
                          "(not installed): pip install 'babelclip[search]'") from e
    dim = matrix.shape[1]
    ann = None
    if path is not None and path.exists():
        ann = _new_ann(dim)
        try:
            ann.load(str(path))
        except Exception as e:  # noqa: BLE001 - a damaged or foreign file is rebuilt, never fatal
            log.warning("approximate index %s unreadable (%s): rebuilt", path, e)
            ann = None
        else:
            if ann.ndim != dim:
                ann = None
    if ann is None:
        ann = _new_ann(dim)
    have = np.asarray(ann.keys, dtype=np.int64) if len(ann) else np.zeros(0, np.int64)
    gone = np.setdiff1d(have, keys)
    new = ~np.isin(keys, have)
    if len(gone):
        ann.remove(gone.astype(np.uint64))
    if new.any():
        ann.add(keys[new].astype(np.uint64), matrix[new], threads=os.cpu_count() or 1, log=not quiet)
    ann.expansion_search = EXPANSION_SEARCH
    changed = bool(len(gone) or new.any())
    if path is not None and changed:
        tmp = path.with_suffix(".tmp")
        ann.save(str(tmp))
        os.replace(tmp, path)
    log.info("approximate index: %d kept, %d added, %d removed", len(keys) - int(new.sum()), int(new.sum()), len(gone))
    return ann, changed


def recall_at_k(index: VectorIndex, *, k: int = 10, n_queries: int = 200, seed: int = 0,
                noise: float = 0.5) -> float:
    """Mean fraction of the exact top-``k`` that the approximate search returns, over queries
    made from stored vectors plus Gaussian noise (so the query itself is not trivially first)."""
    if index.ann is None:
        return 1.0
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(index), size=min(n_queries, len(index)), replace=False)
    q = index.matrix[rows].astype(np.float32)
    q += rng.normal(0, noise / np.sqrt(q.shape[1]), q.shape).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    exact_rows, _ = exact_top_k(index.matrix, q, k)
    got = index.ann.search(q.astype(np.float16), k)
    approx = np.asarray(got.keys, dtype=np.int64).reshape(len(q), -1)
    truth = index.keys[exact_rows]
    return float(np.mean([len(set(a) & set(t)) / len(t) for a, t in zip(approx, truth)]))
