"""Encode images and texts through the embedding cache: each one once per model, ever.

Images: only items the cache lacks are read. Decoding and preprocessing run in
``torch.utils.data.DataLoader`` workers (``num_workers``) while the model encodes the previous
batch; a file that fails to decode is skipped, recorded in the cache with its reason and
reported, never fatal. Each batch is committed to the cache as it finishes, so a killed run
resumes where it stopped. Batches are fixed slices of the ordered list of missing items, so a
resumed run encodes exactly the batches an uninterrupted run would have, and results are
bitwise identical whatever the model's batch-size sensitivity.

Under ``torchrun`` (``torch.distributed`` initialised, world size > 1; gloo on CPU, NCCL on
GPU) the missing items are split into contiguous, batch-aligned shards, one per rank; each rank
encodes and caches its shard and the embeddings are gathered so every rank (rank 0 writes the
results) holds the full set — the same vectors one process would compute.

Texts: de-duplicated within a call, looked up by ``(lang, text)``, the rest encoded in batches
sorted by length (so a tokenizer that pads to the longest text in a batch wastes little), then
cached. A model that declares ``text_language_agnostic = True`` (no language token in its text
input; :class:`~babelclip.models.base.EncoderCapabilities`) shares text embeddings across
languages: they are cached under the language ``"*"``. Text embeddings are cached as the encoder
returns them: unit rows, or raw rows where it declares ``text_normalized = False`` (a protocol
option; its fingerprint, and so its cache, differs).
"""
from __future__ import annotations

import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import gc_pause
from ..data.images import ImageItem, ImageSource, decode, read_bytes
from ..models.base import PixelEncoder, capabilities
from .cache import EmbeddingCache

if TYPE_CHECKING:  # pragma: no cover
    from ..models.base import Encoder

log = logging.getLogger(__name__)

ANY_LANGUAGE = "*"
# Texts handed to the encoder per call (and committed to the cache per transaction), in model
# batches of ``batch_size``: large calls let an encoder share work across texts (open_clip's
# causal towers compute each shared token prefix once) and cut per-transaction overhead.
TEXT_CHUNK_BATCHES = 64


@dataclass
class ImageEmbeddings:
    """Unit-norm embeddings of the images of a source that decoded, in source order."""

    ids: list[str]
    vectors: np.ndarray  # (len(ids), dim) float32
    labels: np.ndarray  # (len(ids),) class positions in the source's classes, -1 if none
    failed: dict[str, str] = field(default_factory=dict)  # id -> why it was skipped
    n_encoded: int = 0  # images that went through the model in this run (all ranks)
    n_cached: int = 0  # images read from the cache

    def row_of(self) -> dict[str, int]:
        return {i: r for r, i in enumerate(self.ids)}


class _Decoded:
    """A picklable top-level dataset: item → (position, pixels or PIL image, error, lasting).

    ``lasting`` tells a failure of the bytes themselves (they were read and do not decode: the
    same bytes will fail again, so the cache remembers it) from a failure to read them
    (permissions, a vanished file, an I/O error: perhaps transient, so tried again next run).
    """

    def __init__(self, items: Sequence[ImageItem], loader: Any, preprocess: Any):
        self.items, self.loader, self.preprocess = list(items), loader, preprocess

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        item = self.items[i]
        try:
            data = read_bytes(item)
        except OSError as e:
            return i, None, f"{type(e).__name__}: {e.strerror or e} (reading {item.id})", False
        try:
            im = (self.loader or decode)(item.path, data)
            return i, (self.preprocess(im) if self.preprocess is not None else im), "", False
        except Exception as e:  # noqa: BLE001 - corrupt, truncated, not an image: skipped, counted
            return i, None, f"{type(e).__name__}: {e}", True


def _collate(batch):
    return batch  # a list of (position, data, error); stacking happens in the main process


def _dist() -> tuple[int, int]:
    """(rank, world size) of a running ``torch.distributed`` group, else (0, 1). A process that
    never imported torch cannot have initialised one, so a fully cached run does not import it."""
    if "torch" not in sys.modules:
        return 0, 1
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return 0, 1
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _shard(n: int, batch_size: int, rank: int, world: int) -> range:
    """Contiguous, batch-aligned share of ``n`` items for ``rank``."""
    per = math.ceil(math.ceil(n / batch_size) / world) * batch_size
    return range(min(n, rank * per), min(n, (rank + 1) * per))


def _image_key(item: ImageItem, source: ImageSource, content_hash: bool) -> str:
    key = item.identity(content_hash)
    return f"{key}|{source.loader_name}" if source.loader_name else key


def encode_images(
    encoder: Encoder,
    source: ImageSource,
    cache: EmbeddingCache,
    *,
    batch_size: int = 64,
    num_workers: int = 0,
    content_hash: bool = False,
    quiet: bool = True,
) -> ImageEmbeddings:
    """Embeddings of every decodable image of ``source``, from the cache or the model.

    ``content_hash=True`` keys the cache by a SHA-256 of each file's bytes instead of path,
    size and mtime (slower to key, but survives copies and renames).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    rank, world = _dist()
    items = source.items
    keys, failed = [], {}
    for it in items:
        try:
            keys.append(_image_key(it, source, content_hash))
        except OSError as e:  # vanished or unreadable since listing: not remembered, tried next run
            keys.append("")
            failed[it.id] = f"{type(e).__name__}: {e.strerror or e} (reading {it.id})"
    cached = cache.get_images([k for k in keys if k])
    known_bad = cache.get_failures([k for k in keys if k and k not in cached])
    for it, k in zip(items, keys):
        if k in known_bad:
            failed[it.id] = known_bad[k]
    missing = [i for i, k in enumerate(keys) if k and k not in cached and k not in known_bad]
    mine = [missing[j] for j in _shard(len(missing), batch_size, rank, world)]
    fresh: dict[int, np.ndarray] = {}
    fresh_failed: dict[int, str] = {}
    if mine:  # nothing to decode: no data loader (and no torch import)
        _encode_missing(encoder, source, cache, items, keys, mine, fresh, fresh_failed,
                        batch_size=batch_size, num_workers=num_workers, progress=not quiet and rank == 0)
    if world > 1:
        fresh, fresh_failed = _gather(fresh, fresh_failed)
    for i, err in fresh_failed.items():
        failed[items[i].id] = err
    if failed and rank == 0:
        log.warning("%d of %d images of %s skipped (cannot be read or decoded); e.g. %s: %s",
                    len(failed), len(items), source.name, *next(iter(failed.items())))
    rows, ids, labels = [], [], []
    for i, (it, k) in enumerate(zip(items, keys)):
        v = cached.get(k) if k else None
        if v is None:
            v = fresh.get(i)
        if v is None:
            continue
        rows.append(v)
        ids.append(it.id)
        labels.append(it.label)
    vectors = np.stack(rows).astype(np.float32, copy=False) if rows else np.zeros((0, cache.dim), np.float32)
    return ImageEmbeddings(ids, vectors, np.asarray(labels, dtype=np.int64), failed,
                           n_encoded=len(fresh), n_cached=sum(1 for k in keys if k in cached))


def _encode_missing(encoder: Encoder, source: ImageSource, cache: EmbeddingCache, items: Sequence[ImageItem],
                    keys: list[str], mine: list[int], fresh: dict[int, np.ndarray], fresh_failed: dict[int, str],
                    *, batch_size: int, num_workers: int, progress: bool) -> None:
    """Decode (in ``num_workers`` data-loader processes) and encode (each stacked batch in pinned
    memory on CUDA, copied to the device asynchronously) the
    items at positions ``mine``, committing each batch to the cache; fills ``fresh`` and
    ``fresh_failed``."""
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    preprocess = encoder.preprocess if isinstance(encoder, PixelEncoder) else None
    dataset = _Decoded([items[i] for i in mine], source.loader, preprocess)
    mp_ctx = "fork" if num_workers > 0 and _can_fork() else None
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=_collate, multiprocessing_context=mp_ctx)
    with tqdm(total=len(mine), desc=f"images {source.name}", unit="img", disable=not progress) as bar:
        for batch in loader:
            good = [(mine[j], data) for j, data, err, _ in batch if not err]
            bad = {mine[j]: err for j, data, err, _ in batch if err}
            lasting = {keys[mine[j]]: err for j, data, err, last in batch if err and last}
            if good:
                vecs = _encode_batch(encoder, [d for _, d in good], batch_size)
            else:
                vecs = np.zeros((0, cache.dim), np.float32)
            cache.put_images([keys[i] for i, _ in good], vecs, lasting)
            for (i, _), v in zip(good, vecs):
                fresh[i] = v
            fresh_failed.update(bad)
            bar.update(len(batch))


def pin_memory(encoder: Encoder) -> bool:
    """Page-locked decode buffers: only for a model on a CUDA device (they help host-to-GPU copies)."""
    return str(capabilities(encoder).device).startswith("cuda")


def _can_fork() -> bool:
    import multiprocessing as mp

    return "fork" in mp.get_all_start_methods()


def _encode_batch(encoder: Encoder, data: list, batch_size: int) -> np.ndarray:
    if isinstance(encoder, PixelEncoder):  # the data loader ran its preprocess
        import torch

        pixels = torch.stack(data)
        if pin_memory(encoder):  # the stacked batch: pinning the items before stacking would be lost
            pixels = pixels.pin_memory()
        return np.asarray(encoder.encode_pixels(pixels), dtype=np.float32)
    return np.asarray(encoder.encode_images(data, batch_size=batch_size), dtype=np.float32)


def _gather(fresh: dict[int, np.ndarray], failed: dict[int, str]) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    """Every rank's newly encoded rows, on every rank (``all_gather_object``: gloo and NCCL)."""
    import torch.distributed as dist

    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, (fresh, failed))
    all_fresh: dict[int, np.ndarray] = {}
    all_failed: dict[int, str] = {}
    for f, b in parts:
        all_fresh.update(f)
        all_failed.update(b)
    return all_fresh, all_failed


def text_cache_language(encoder: Encoder, lang: str) -> str:
    """The language under which ``encoder``'s text embeddings are cached (see module docstring)."""
    return ANY_LANGUAGE if capabilities(encoder).text_language_agnostic else lang


def encode_texts(
    encoder: Encoder,
    texts: Sequence[str],
    lang: str,
    cache: EmbeddingCache,
    *,
    batch_size: int = 256,
) -> np.ndarray:
    """``(len(texts), dim)`` embeddings as the encoder returns them (unit rows unless it declares
    ``text_normalized = False``); each distinct text reaches the model at most once.

    A call whose ordered distinct texts were all seen together before is answered from one
    cached block (:meth:`EmbeddingCache.get_text_block`), with no per-text lookups. Otherwise
    the distinct texts are sorted by length (lexicographically for an encoder that declares
    ``text_prefix_sharing``) and cut into fixed chunks of ``batch_size * TEXT_CHUNK_BATCHES``
    (the encoder batches them by ``batch_size``); chunks whose texts are
    all cached are skipped, so a resumed call encodes the same chunks as an uninterrupted one;
    then the call's block is stored.
    """
    if isinstance(texts, str):
        raise TypeError("encode_texts expects a sequence of strings, got a single str")
    key_lang = text_cache_language(encoder, lang)
    unique = list(dict.fromkeys(texts))
    if not unique:
        return np.zeros((0, cache.dim), np.float32)
    digest = cache.texts_digest(unique)
    block = cache.get_text_block(key_lang, unique, digest)
    if block is None:
        block = _encode_unique(encoder, unique, key_lang, lang, cache, batch_size)
        cache.put_text_block(key_lang, unique, block, digest)
    if len(unique) == len(texts):  # no duplicates: unique is texts, in order
        return block if block.flags.writeable else block.copy()
    row = {t: i for i, t in enumerate(unique)}
    return block[np.fromiter((row[t] for t in texts), dtype=np.int64, count=len(texts))]


def _encode_unique(encoder: Encoder, unique: list[str], key_lang: str, lang: str, cache: EmbeddingCache,
                   batch_size: int) -> np.ndarray:
    """Embeddings of distinct ``unique`` texts from the per-text cache rows, encoding the rest."""
    have = cache.get_texts(key_lang, unique)
    if len(have) == len(unique):
        order: list[str] = []
    elif capabilities(encoder).text_prefix_sharing:
        order = sorted(unique)  # texts that begin alike in the same call (one group split per chunk at most)
    else:
        order = sorted(unique, key=lambda t: (len(t), t))  # little padding per batch
    chunk = batch_size * TEXT_CHUNK_BATCHES
    for i in range(0, len(order), chunk):
        batch = order[i : i + chunk]
        if all(t in have for t in batch):
            continue
        with gc_pause.paused():  # thousands of objects per chunk and no cycles (gc_pause.py)
            vecs = np.asarray(encoder.encode_texts(batch, lang, batch_size=batch_size), dtype=np.float32)
            cache.put_texts(key_lang, batch, vecs)
        for t, v in zip(batch, vecs):
            have.setdefault(t, v)
    return np.stack([have[t] for t in unique])
