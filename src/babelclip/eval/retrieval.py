"""Text→image and image→text retrieval (R@1/5/10) in every language of a caption set.

Two protocols, each labelled in :attr:`Result.protocol`:

* ``"all-captions"`` — every caption of an image is a query, and an image is retrieved by text
  when any of its captions ranks in the top k (Babel-ImageNet's XTD/xFlickrCO evaluation);
* ``"first-caption"`` — only each image's first caption is used (CLIP_benchmark's
  multilingual retrieval datasets).

For a language, the images are those of the caption set that decoded and have at least one
caption in that language; counts record how many images and texts were used.
"""
from __future__ import annotations

import logging
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..languages import get_language
from .cache import EmbeddingCache
from .encode import ImageEmbeddings, encode_texts
from .results import Result

if TYPE_CHECKING:  # pragma: no cover
    from ..models.base import Encoder

log = logging.getLogger(__name__)

TASK = "retrieval"
PROTOCOLS = ("all-captions", "first-caption")


class Captions(Protocol):
    name: str
    images: list[str]
    captions: dict[str, list[list[str]]]


def match_images(names: Sequence[str], images: ImageEmbeddings) -> np.ndarray:
    """Row in ``images`` of each caption-set image name (by id, else by unique basename), -1 if none."""
    rows = images.row_of()
    by_base: dict[str, int] = {}
    for i, r in rows.items():
        b = posixpath.basename(i)
        by_base[b] = -2 if b in by_base else r  # -2: ambiguous basename
    out = np.full(len(names), -1, dtype=np.int64)
    for j, n in enumerate(names):
        r = rows.get(n)
        if r is None:
            r = by_base.get(posixpath.basename(n), -1)
        out[j] = r if r is not None and r >= 0 else -1
    return out


def scored_text(encoder: Encoder, vecs: np.ndarray, scoring: str = "default") -> np.ndarray:
    """Text rows as retrieval scores them: unit rows (an encoder declaring ``text_normalized =
    False`` is normalised here), or under ``scoring="paper"`` as the encoder returns them (the
    Babel-ImageNet reference code's ``compute_r_at_k``: docs/protocols.md)."""
    from ..models.base import capabilities, l2_normalize

    return vecs if scoring == "paper" or capabilities(encoder).text_normalized else l2_normalize(vecs)


def retrieval(
    encoder: Encoder,
    images: ImageEmbeddings,
    captions: Captions,
    cache: EmbeddingCache,
    *,
    languages: Sequence[str] | None = None,
    protocols: Sequence[str] = PROTOCOLS,
    model_name: str = "",
    dataset: str = "",
    n_boot: int = 1000,
    seed: int = 0,
    batch_size: int = 256,
    workers: int | str = 1,
    quiet: bool = True,
    scoring: str = "default",
) -> list[Result]:
    """One :class:`Result` per (language, protocol); text rows as :func:`scored_text` gives them.

    Metrics are those of :func:`babelclip.eval.metrics.retrieval_metrics`, with 95% bootstrap
    intervals over the queries (``n_boot`` resamples from ``seed``; ``n_boot=0``: none).
    ``workers``: languages in that many forked CPU processes (``"auto"``: one per available
    core; see :mod:`babelclip.eval.workers`).
    """
    from .workers import run_language_jobs

    bad = [p for p in protocols if p not in PROTOCOLS]
    if bad:
        raise ValueError(f"unknown retrieval protocol(s) {bad}; allowed: {', '.join(PROTOCOLS)}")
    rows = match_images(captions.images, images)
    n_unmatched = int((rows < 0).sum())
    if n_unmatched == len(rows):
        raise ValueError(
            f"none of the {len(rows)} images of caption set {captions.name!r} (e.g. {captions.images[0]!r}) "
            f"was found among the {len(images.ids)} encoded images (e.g. {images.ids[:1]})"
        )
    if n_unmatched:
        log.warning("%s: %d of %d caption-set images are missing or undecodable; left out",
                    captions.name, n_unmatched, len(rows))
    langs = [get_language(lang).tag for lang in (languages if languages is not None else list(captions.captions))]
    job = _LanguageJob(encoder, images, captions, rows, n_unmatched, cache, protocols, model_name, dataset,
                       n_boot, seed, batch_size, scoring)
    return run_language_jobs(job, langs, workers, desc="retrieval", quiet=quiet)


@dataclass
class _LanguageJob:
    """Retrieval in one language under every protocol (a callable, so forked workers can run it)."""

    encoder: Encoder
    images: ImageEmbeddings
    captions: Captions
    rows: np.ndarray  # caption-set image -> row of ``images`` (-1: missing)
    n_unmatched: int
    cache: EmbeddingCache
    protocols: Sequence[str]
    model_name: str
    dataset: str
    n_boot: int
    seed: int
    batch_size: int
    scoring: str = "default"

    def cost(self, tag: str) -> float:
        return float(sum(map(len, self.captions.captions.get(tag, []))))

    def __call__(self, tag: str) -> list[Result]:
        from .metrics import retrieval_metrics

        per_image = self.captions.captions.get(tag)
        if per_image is None:
            log.warning("caption set %s has no captions for %s: skipped", self.captions.name, tag)
            return []
        rows = self.rows
        usable = [j for j, caps in enumerate(per_image) if rows[j] >= 0 and caps]
        if len(usable) < 2:
            log.warning("%s: %d usable images with captions, too few: skipped", tag, len(usable))
            return []
        img = self.images.vectors[rows[usable]]
        results = []
        for proto in self.protocols:
            texts: list[str] = []
            owner: list[int] = []
            for k, j in enumerate(usable):
                caps = per_image[j] if proto == "all-captions" else per_image[j][:1]
                texts.extend(caps)
                owner.extend([k] * len(caps))
            txt = scored_text(self.encoder, encode_texts(self.encoder, texts, tag, self.cache.in_this_process(),
                                                         batch_size=self.batch_size), self.scoring)
            metrics = retrieval_metrics(txt @ img.T, np.asarray(owner), n_boot=self.n_boot, seed=self.seed)
            extra: dict[str, Any] = {"images_missing": self.n_unmatched} if self.n_unmatched else {}
            results.append(Result(
                model=self.model_name, fingerprint=self.encoder.fingerprint.key, dataset=self.dataset, task=TASK,
                language=tag, metrics=metrics, counts={"images": len(usable), "texts": len(texts)},
                protocol=proto, extra=extra,
            ))
        return results
