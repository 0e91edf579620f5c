"""Query indexed folders by text in any language, or by an image: ranked paths with cosines.

A :class:`Searcher` opens the vectors of the folders' files once: memory-mapped from their
snapshot when it is current (:mod:`babelclip.search.snapshot`), else read from the embedding
cache (float16, see :mod:`babelclip.search.vectors`) and the snapshot written; a folder changed
since (a re-index) is noticed before each query and the vectors reloaded. each query is one ``encode_texts([q], lang)``
(through the cache, so a repeated query costs no forward pass) or one image's embedding —
read from the index when the image is indexed, encoded otherwise — and one top-k.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..cache_dir import embeddings_dir
from ..eval.cache import EmbeddingCache
from ..eval.encode import encode_texts, text_cache_language
from ..languages import get_language
from ..models.base import capabilities
from .snapshot import Snapshot, vectors_from_cache
from .store import FileRow, FileTable, is_inside, sha256_file
from .vectors import EXACT_LIMIT, key_of

if TYPE_CHECKING:  # pragma: no cover
    from ..models.base import Encoder

log = logging.getLogger(__name__)


class IndexNotFoundError(FileNotFoundError):
    """No index (or an empty one) where a search looked; the message says how to build one."""


@dataclass(frozen=True)
class Hit:
    path: str  # absolute path of the image file
    score: float  # cosine similarity with the query
    folder: str  # the indexed folder it lies in
    rel: str  # its path relative to that folder

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _how_to_build(folders: Sequence[str] | None) -> str:
    where = folders[0] if folders else "FOLDER"
    return f"build one with: babelclip index {where}"


def context_tokens(encoder: Encoder) -> int | None:
    """The model's text context in tokens, when it declares one (open_clip, transformers, M-CLIP,
    babel-lite: ``EncoderCapabilities.text_context``)."""
    n = capabilities(encoder).text_context
    return n if isinstance(n, int) and n > 0 else None


def warn_if_truncated(encoder: Encoder, text: str, lang: str) -> bool:
    """Log a warning when ``text`` fills the model's whole context, so its end is cut off.

    Every family's tokenizer truncates to the context, so a long query never errors; this only
    says that the end of the query was not read. Counted with the model's own tokenizer where it
    counts (``EncoderCapabilities.count_tokens``); otherwise estimated as one token per word.
    """
    n_ctx = context_tokens(encoder)
    if n_ctx is None:
        return False
    try:
        n = capabilities(encoder).count_tokens(text, lang)
    except Exception:  # noqa: BLE001 - counting is advisory: never fail a query over it
        n = None
    if n is None:
        n = len(text.split()) + 2
    if n >= n_ctx:
        log.warning("query of %d characters fills the model's context of %d tokens: the text after that is "
                    "ignored (truncated)", len(text), n_ctx)
        return True
    return False


class Searcher:
    """Search over indexed ``folders`` (every indexed folder when ``None``) with one model.

    ``model``: a model name, an encoder, or ``None`` for the model the folders were last indexed
    with. Use :func:`babelclip.search.auto.choose_model` for ``auto``.
    """

    def __init__(self, folders: Sequence[str | os.PathLike] | None = None, model: str | Encoder | None = None, *,
                 cache_dir: str | os.PathLike | None = None, store_dir: str | os.PathLike | None = None,
                 exact_limit: int = EXACT_LIMIT, device: str = "cpu", quiet: bool = True):
        self._table = FileTable(store_dir)
        known = self._table.roots()
        if folders is None:
            if not known:
                raise IndexNotFoundError(f"no folder has been indexed yet; {_how_to_build(None)}")
            self.folders = known
        else:
            self.folders = [str(Path(f).resolve()) for f in folders]
            missing = [f for f in self.folders if f not in known]
            if missing:
                raise IndexNotFoundError(f"{missing[0]!r} has not been indexed; {_how_to_build(missing)}")
        indexed = self._table.models_of(self.folders)
        self.encoder, self.model_name = self._encoder(model, indexed, device, embeddings_dir(cache_dir))
        self._cache = EmbeddingCache(embeddings_dir(cache_dir), self.encoder.fingerprint.key, self.encoder.dim)
        self._lock = threading.Lock()  # one query at a time: the server answers from a thread pool
        self._exact_limit, self._quiet = exact_limit, quiet
        self._load()

    def _encoder(self, model: str | Encoder | None, indexed: list[tuple[str, str, int]], device: str, record_dir: Path):
        from .index import resolve_encoder

        if model is None:
            if not indexed:
                raise IndexNotFoundError(f"{self.folders[0]!r} holds no index of any model; {_how_to_build(self.folders)}")
            model = indexed[-1][1]
        # lazily: a query already in the text cache, or an indexed image, needs no weights
        encoder, name = resolve_encoder(model, device, record_dir=record_dir)
        if encoder.fingerprint.key not in {k for k, _, _ in indexed}:
            if name in {n for _, n, _ in indexed}:  # same name, other fingerprint: the weights changed
                self._table.forget_model(name, encoder.fingerprint.key)
                raise IndexNotFoundError(f"{name} has changed since {self.folders[0]!r} was indexed (new fingerprint "
                                         f"{encoder.fingerprint.key}); re-index it with: babelclip index "
                                         f"{self.folders[0]} --model {name}")
            raise IndexNotFoundError(f"{self.folders[0]!r} is not indexed with {name}; "
                                     f"build it with: babelclip index {self.folders[0]} --model {name}")
        return encoder, name

    def _stamp(self) -> dict[str, Any]:
        """What the vectors of this search are built from (read before them: a change made while
        they are read leaves an older stamp, so the next open rebuilds)."""
        return {"fingerprint": self.encoder.fingerprint.key, "dim": int(self.encoder.dim),
                "folders": self._table.generations(self.folders)}

    def _load(self) -> None:
        """The vectors from their memory-mapped snapshot (:mod:`.snapshot`) when it is current,
        else from the embedding cache (and the snapshot written for the next open)."""
        stamp = self._stamp()
        # one snapshot per model and set of folders, so searching another set never churns this one
        folders_id = hashlib.sha1("\n".join(sorted(self.folders)).encode()).hexdigest()[:10]
        name = f"{self.encoder.fingerprint.key}-{folders_id}"
        snap = Snapshot(self._table.dir / "snapshots", name)
        snap.adopt(self._table.dir / f"{name}.usearch")  # where the HNSW file lay before snapshots
        vectors = snap.read(stamp, self._cache)
        if vectors is None:
            vectors = vectors_from_cache(self._table.files(self.folders), self._cache)
            if not len(vectors):
                raise IndexNotFoundError(f"the index of {', '.join(self.folders)} is empty (no decodable images); "
                                         f"{_how_to_build(self.folders)}")
            snap.write(stamp, vectors)
        self.vectors, self._loaded = vectors, stamp
        self.index = snap.index(vectors, stamp, exact_limit=self._exact_limit, quiet=self._quiet)

    def refresh(self) -> bool:
        """Reload the vectors when a folder changed since they were loaded (a re-index while the
        server runs); one small query of the file table otherwise. Whether it reloaded."""
        if self._table.generations(self.folders) == self._loaded["folders"]:
            return False
        log.info("the index of %s changed: reloading its vectors", ", ".join(self.folders))
        self._load()
        return True

    def close(self) -> None:
        self._cache.close()
        self._table.close()

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.index)

    # -- queries -----------------------------------------------------------------------------
    def _hits(self, keys: np.ndarray, scores: np.ndarray, k: int, skip: int | None = None) -> list[Hit]:
        """The files of the top keys (looked up in the file table: only the hits' rows are read)."""
        rows = [(key, self.index.row(key)) for key in keys.tolist() if key != skip]
        sha = {key: self.vectors.sha256(r) for key, r in rows if r is not None}
        files: dict[str, list[FileRow]] = {}
        for f in self._table.rows_with(sha.values(), self.folders):
            files.setdefault(f.sha256, []).append(f)
        out: list[Hit] = []
        for key, s in zip(keys.tolist(), scores.tolist()):
            for r in files.get(sha.get(key, ""), []):
                out.append(Hit(r.path, round(float(s), 6), r.root, r.rel))
        return out[:k]

    def text(self, query: str, lang: str, k: int = 20) -> list[Hit]:
        """The ``k`` images closest to ``query`` written in ``lang`` (any code; unknown codes
        raise an error naming the closest known ones)."""
        tag = get_language(lang).tag
        query = " ".join(query.split())
        if not query:
            raise ValueError("empty query: give a few words describing the image")
        with self._lock:
            self.refresh()
            q = self._cache.get_texts(text_cache_language(self.encoder, tag), [query]).get(query)
            if q is None:  # warned when it was encoded; counting tokens would load a lazy model's weights
                warn_if_truncated(self.encoder, query, tag)
                q = encode_texts(self.encoder, [query], tag, self._cache)[0]
            return self._hits(*self.index.search(q, k), k)

    def image(self, path: str | os.PathLike, k: int = 20, *, include_self: bool = False) -> list[Hit]:
        """The ``k`` images closest to the image at ``path`` (its indexed vector when it is
        indexed; otherwise it is decoded and encoded). The image itself is left out unless
        ``include_self``."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"query image {str(path)!r} does not exist")
        key = key_of(sha256_file(path))
        with self._lock:
            self.refresh()
            v = self.index.vector(key)
            if v is None:
                from ..data.images import ImageItem, load_image

                v = np.asarray(self.encoder.encode_images([load_image(ImageItem(path.name, str(path)))]), np.float32)[0]
            skip = None if include_self else key
            return self._hits(*self.index.search(v, k + 1), k, skip=skip)

    def similar(self, folder: str, rel: str, k: int = 20) -> list[Hit]:
        """Images like the indexed file ``rel`` of ``folder`` (used by the web page)."""
        path = self.resolve(folder, rel)
        return self.image(path, k)

    def resolve(self, folder: str, rel: str) -> Path:
        """The indexed file ``rel`` under the indexed ``folder``, or :class:`PermissionError`:
        the folder must be one of this searcher's, the file must be in its table, and its real
        location (links resolved) must lie inside the folder."""
        root = str(Path(folder).resolve()) if folder else ""
        if root not in self.folders:
            raise PermissionError("not an indexed folder")
        with self._lock:
            indexed = self._table.has_file(root, rel)
        if not indexed:
            raise PermissionError("not an indexed file")
        path = Path(root, *rel.split("/"))
        if not is_inside(path, Path(root)) or not path.is_file():
            raise PermissionError("not a file inside the indexed folder")
        return path


def open_index(folders: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
               model: str | Encoder | None = None, *, lang: str | None = None,
               results: Sequence[str | os.PathLike] = (), **kw: Any) -> Searcher:
    """A :class:`Searcher`; ``model="auto"`` picks the best measured model for ``lang`` among
    those the folders are indexed with (see :func:`babelclip.search.auto.choose_model`)."""
    if isinstance(folders, (str, os.PathLike)):
        folders = [folders]
    if model == "auto":
        from .auto import choose_model

        with FileTable(kw.get("store_dir")) as t:
            roots = [str(Path(f).resolve()) for f in folders] if folders else t.roots()
            indexed = [name for _, name, _ in t.models_of(roots)]
        choice = choose_model(lang or "en", results, candidates=indexed or None)
        log.warning("%s", choice.reason)
        model = choice.model
    return Searcher(folders, model, **kw)
