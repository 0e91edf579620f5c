"""Memory-mapped snapshots of a search's vectors, so that opening an index reads no vector.

Reading every vector of a large index from the embedding cache (one SQLite row each) takes
seconds at a million images; ``babelclip search`` pays that on every call, the server on every
start. A snapshot keeps what a :class:`~babelclip.search.query.Searcher` needs, per model
fingerprint and set of folders, beside the file table (``<store>/snapshots/<name>.*``):

* ``.keys.npy`` — the 63-bit keys (:func:`~.vectors.key_of`), ascending (int64);
* ``.sha.npy`` — each key's content hash, 32 raw bytes (to find the files of a hit);
* ``.f16.npy`` — the unit vectors, float16, row for row; opened with ``numpy.load(mmap_mode="r")``;
* ``.usearch`` — above the exact-search limit, the HNSW index, opened with usearch's
  ``Index.restore(view=True)`` (memory-mapped, not read);
* ``.json`` — written last: the *stamp* the vectors were built from (model fingerprint, dim,
  and each folder's change counter, :meth:`~.store.FileTable.generations`, raised by every scan
  that changed rows and every index run that encoded), the content keys that had no vector then,
  and a check of every file above.

A snapshot is used only when its stamp equals the current one, none of its missing contents has
gained a vector since (an interrupted index resumed elsewhere), and every file passes its check:
the size and a BLAKE2 digest of 64 blocks of 4 KiB spread over the file (whole files below
256 KiB). That catches a truncated, replaced or overwritten file at the cost of reading 256 KiB;
a single flipped bit inside a vector is not caught (a full digest would read the whole file,
~1 GiB per million 512-d vectors, on every search). Anything else is rebuilt from the embedding
cache, with a warning when a file was damaged; a snapshot is never trusted after an error.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .store import FileRow, content_key
from .vectors import EXACT_LIMIT, EXPANSION_SEARCH, VectorIndex, key_of

log = logging.getLogger(__name__)

FORMAT = 1
_PARTS = ("keys", "sha", "f16")
_BLOCK, _SAMPLES = 4096, 64


def file_check(path: Path) -> dict[str, Any]:
    """``{"size", "blake2b"}`` of a file: its size and a digest of sampled blocks (module docstring)."""
    size = path.stat().st_size
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        if size <= _BLOCK * _SAMPLES:
            h.update(f.read())
        else:
            for i in range(_SAMPLES):
                f.seek((size - _BLOCK) * i // (_SAMPLES - 1))
                h.update(f.read(_BLOCK))
    return {"size": size, "blake2b": h.hexdigest()}


@dataclass
class Vectors:
    """The vectors of a search, ascending by key (arrays may be memory-mapped)."""

    keys: np.ndarray  # int64 (n,)
    digests: np.ndarray  # uint8 (n, 32): the SHA-256 of each row's content
    matrix: np.ndarray  # float16 (n, d), unit rows
    missing: list[str]  # content keys of the files that had no vector (undecodable, or not encoded yet)

    def __len__(self) -> int:
        return len(self.keys)

    def sha256(self, row: int) -> str:
        return bytes(self.digests[row]).hex()


def vectors_from_cache(rows: Sequence[FileRow], cache: Any) -> Vectors:
    """The vectors of ``rows``' distinct contents, read from the embedding cache (the slow path)."""
    hashes = list(dict.fromkeys(r.sha256 for r in rows))
    found = cache.get_images([content_key(h) for h in hashes])
    have = [h for h in hashes if content_key(h) in found]
    missing = [content_key(h) for h in hashes if content_key(h) not in found]
    keys = np.fromiter((key_of(h) for h in have), np.int64, len(have))
    order = np.argsort(keys, kind="stable")
    digests = np.frombuffer(b"".join(bytes.fromhex(h) for h in have), np.uint8).reshape(-1, 32)
    dim = next(iter(found.values())).shape[0] if found else 0
    matrix = np.empty((len(have), dim), np.float16)
    for i, j in enumerate(order):
        matrix[i] = found[content_key(have[j])]
    return Vectors(keys[order], digests[order], matrix, missing)


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


class Snapshot:
    """The snapshot files ``<directory>/<name>.*`` (module docstring)."""

    def __init__(self, directory: str | os.PathLike, name: str):
        self.dir = Path(directory)
        self.name = name
        self.meta_path = self.dir / f"{name}.json"
        self.ann_path = self.dir / f"{name}.usearch"

    def adopt(self, ann_file: Path) -> None:
        """Take over an HNSW file kept elsewhere (beside the file table, before snapshots) as the
        start of this snapshot's, unless it has one."""
        if ann_file.exists() and not self.ann_path.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            os.replace(ann_file, self.ann_path)
            ann_file.with_suffix(".recall.json").unlink(missing_ok=True)

    def part(self, part: str) -> Path:
        return self.dir / f"{self.name}.{part}.npy"

    def _meta(self) -> dict[str, Any] | None:
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None

    def _write_meta(self, meta: dict[str, Any]) -> None:
        tmp = self.meta_path.with_name(f"{self.meta_path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(meta), encoding="utf-8")
        os.replace(tmp, self.meta_path)

    def read(self, stamp: dict[str, Any], cache: Any) -> Vectors | None:
        """The snapshot's vectors, memory-mapped, when it is current and intact; else ``None``."""
        meta = self._meta()
        if meta is None or meta.get("stamp") != stamp:
            return None
        try:
            for part in _PARTS:
                if file_check(self.part(part)) != meta["files"][part]:
                    log.warning("vector snapshot %s is damaged (%s does not match its check): rebuilding it",
                                self.name, self.part(part).name)
                    return None
            keys, sha, f16 = (np.load(self.part(p), mmap_mode="r", allow_pickle=False) for p in _PARTS)
            n, dim = meta["n"], stamp["dim"]
            if keys.shape != (n,) or sha.shape != (n, 32) or f16.shape != (n, dim) or f16.dtype != np.float16:
                raise ValueError(f"shapes {keys.shape}, {sha.shape}, {f16.shape} for {n} vectors of dim {dim}")
            missing = list(meta["missing"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("vector snapshot %s unreadable (%s): rebuilding it", self.name, e)
            return None
        if missing and cache.get_images(missing):
            return None  # vectors of files that had none were encoded since (an index run resumed)
        return Vectors(keys, sha, f16, missing)

    def write(self, stamp: dict[str, Any], vectors: Vectors) -> None:
        """Save ``vectors`` as the snapshot of ``stamp`` (each file atomically; the check last).
        A failure to write (a full disk) is logged: the search goes on from memory."""
        old = self._meta() or {}
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            for part, array in zip(_PARTS, (vectors.keys, vectors.digests, vectors.matrix)):
                _save_npy(self.part(part), np.ascontiguousarray(array))
            meta = {"format": FORMAT, "stamp": stamp, "n": len(vectors), "missing": vectors.missing,
                    "files": {p: file_check(self.part(p)) for p in _PARTS}}
            if "ann" in old:  # the HNSW file of older vectors: a start for an incremental update
                meta["ann"] = old["ann"]
            self._write_meta(meta)
        except OSError as e:
            log.warning("cannot write the vector snapshot %s (%s): searching from memory", self.name, e)

    def index(self, vectors: Vectors, stamp: dict[str, Any], *, exact_limit: int = EXACT_LIMIT,
              quiet: bool = True) -> VectorIndex:
        """A :class:`VectorIndex` over ``vectors``: exact up to ``exact_limit``; above it, the
        snapshot's HNSW file memory-mapped when it was built for ``stamp`` and passes its check,
        else that file updated incrementally (or a new one, when it is damaged) and saved."""
        if len(vectors) <= exact_limit:
            return VectorIndex(vectors.keys, vectors.matrix, exact_limit=exact_limit)
        meta = self._meta() or {}
        ann = meta.get("ann") or {}
        try:
            check = file_check(self.ann_path) if self.ann_path.exists() else None
        except OSError:
            check = None
        if check is not None and check == ann.get("check") and ann.get("stamp") == stamp:
            view = _view(self.ann_path)
            if view is not None and len(view) == len(vectors):
                return VectorIndex(vectors.keys, vectors.matrix, ann=view, recall=ann.get("recall"))
        if check is not None and ann and check != ann.get("check"):
            log.warning("approximate index %s does not match its check: rebuilt", self.ann_path.name)
            self.ann_path.unlink()
        # else an index file of older vectors (or one without a record): updated incrementally
        index = VectorIndex(vectors.keys, vectors.matrix, exact_limit=exact_limit, ann_path=self.ann_path, quiet=quiet)
        if meta.get("stamp") == stamp and self.ann_path.exists():
            meta["ann"] = {"stamp": stamp, "check": file_check(self.ann_path), "recall": index.recall}
            self._write_meta(meta)
        return index


def _view(path: Path) -> Any:
    """usearch's memory-mapped view of the index file at ``path``, or ``None`` when it cannot be read."""
    from usearch.index import Index

    try:
        view = Index.restore(str(path), view=True)
    except Exception as e:  # noqa: BLE001 - a damaged file is rebuilt, never fatal
        log.warning("approximate index %s unreadable (%s): rebuilt", path.name, e)
        return None
    if view is not None:
        view.expansion_search = EXPANSION_SEARCH
    return view
