"""Text→image retrieval where a text has several relevant images: keyword → emoji (Babel-Emoji).

:mod:`babelclip.eval.retrieval` scores captions that each describe one image. A CLDR keyword
("animal", "face") is carried by many emoji, so here a query is a keyword and its relevant
images are every emoji whose keyword list holds it (:class:`~babelclip.data.emoji.KeywordQueries`).
Candidates of a language are the images with at least one keyword there.

Metrics (:func:`multi_relevant_metrics`), each with a 95% percentile-bootstrap interval over the
queries (``_ci_low``/``_ci_high``, :func:`~babelclip.eval.metrics.bootstrap_ci`):

- ``t2i_r@k``: fraction of queries with *any* relevant image ranked < k (ranks as in
  :func:`~babelclip.eval.metrics.target_ranks`: the best relevant image's position in a stable
  descending sort); ``t2i_chance@k``: the same under a random order, the mean over queries of
  1 − C(n − m, k)/C(n, k) for a query with m relevant of n candidates;
- ``map``: mean average precision (the mean over queries of the mean, over its relevant images,
  of the precision at each one's rank); ``map_chance``: its expected value under a random order,
  the mean over queries of ``(m − 1)/(n − 1) + (n − m)/(n − 1)·H_n/n`` (H_n the n-th harmonic
  number: a relevant image at position j, uniform, has on average (m − 1)(j − 1)/(n − 1) other
  relevant images above it, so its expected precision is 1/j + (m − 1)/(n − 1)·(1 − 1/j)).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..languages import get_language
from .cache import EmbeddingCache
from .encode import ImageEmbeddings, encode_texts
from .metrics import _any_in_top_k_chance, _check_ks, bootstrap_ci
from .results import Result
from .retrieval import scored_text

if TYPE_CHECKING:  # pragma: no cover
    from ..data.emoji import KeywordQueries
    from ..models.base import Encoder

log = logging.getLogger(__name__)

TASK = "retrieval"
PROTOCOL = "keywords"


def _map_chance(n: int, m: np.ndarray) -> float:
    """Expected average precision of a random order, mean over queries (m relevant of n)."""
    harmonic = float(np.sum(1.0 / np.arange(1, n + 1)))
    m = m.astype(np.float64)
    ap = (m - 1) / (n - 1) + (n - m) / (n * (n - 1)) * harmonic if n > 1 else np.ones_like(m)
    return float(np.mean(ap))


def multi_relevant_metrics(
    scores: np.ndarray, relevant: Sequence[Sequence[int]], *, ks: Sequence[int] = (1, 5, 10), n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Recall@k (any relevant in the top k) and mAP of ``scores`` (queries × candidates)."""
    ks = _check_ks(ks)
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] < 2:
        raise ValueError(f"scores must be (n_queries >= 1, n_candidates >= 2), got shape {scores.shape}")
    n_q, n = scores.shape
    if len(relevant) != n_q or any(not r for r in relevant):
        raise ValueError(f"relevant must give {n_q} non-empty lists of candidate positions, one per query")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN; check that the embeddings are finite and L2-normalised")
    is_rel = np.zeros((n_q, n), dtype=bool)
    for i, r in enumerate(relevant):
        if min(r) < 0 or max(r) >= n:
            raise ValueError(f"query {i}: relevant positions must lie in 0..{n - 1}, got {sorted(r)}")
        is_rel[i, list(r)] = True
    order = np.argsort(-scores, axis=1, kind="stable")  # stable: equal scores keep index order
    hits = np.take_along_axis(is_rel, order, axis=1)  # hits[i, j]: the j-th ranked candidate is relevant
    best = hits.argmax(axis=1)  # rank of the best relevant image
    m = is_rel.sum(axis=1)
    cum = np.cumsum(hits, axis=1)
    ap = (np.where(hits, cum / np.arange(1, n + 1), 0.0).sum(axis=1)) / m
    out: dict[str, float] = {}
    for k in ks:
        hit = best < min(k, n)
        out[f"t2i_r@{k}"] = float(hit.mean())
        out[f"t2i_chance@{k}"] = _any_in_top_k_chance(n, m, k)
        if n_boot:
            out[f"t2i_r@{k}_ci_low"], out[f"t2i_r@{k}_ci_high"] = bootstrap_ci(hit, n_boot=n_boot, seed=seed)
    out["map"] = float(ap.mean())
    out["map_chance"] = _map_chance(n, m)
    if n_boot:
        out["map_ci_low"], out["map_ci_high"] = bootstrap_ci(ap, n_boot=n_boot, seed=seed)
    return out


def keyword_retrieval(
    encoder: Encoder, images: ImageEmbeddings, queries: KeywordQueries, cache: EmbeddingCache, *,
    languages: Sequence[str] | None = None, model_name: str = "", dataset: str = "", n_boot: int = 1000,
    seed: int = 0, batch_size: int = 256, workers: int | str = 1, quiet: bool = True, scoring: str = "default",
) -> list[Result]:
    """One :class:`Result` per language (``protocol="keywords"``, ``labels`` = the query set's name);
    text rows as :func:`~babelclip.eval.retrieval.scored_text` gives them."""
    from .workers import run_language_jobs

    rows = images.row_of()
    pos = np.array([rows.get(i, -1) for i in queries.images], dtype=np.int64)
    if (pos < 0).all():
        raise ValueError(f"none of the {len(pos)} images of {queries.name!r} (e.g. {queries.images[:1]}) was encoded")
    langs = [get_language(t).tag for t in (languages if languages is not None else queries.languages())]
    job = _KeywordJob(encoder, images, queries, pos, cache, (model_name, dataset), (n_boot, seed), batch_size, scoring)
    return run_language_jobs(job, langs, workers, desc="keyword retrieval", quiet=quiet)


@dataclass
class _KeywordJob:
    """Keyword retrieval in one language (a callable, so forked workers can run it)."""

    encoder: Encoder
    images: ImageEmbeddings
    queries: KeywordQueries
    pos: np.ndarray  # query-set image -> row of ``images`` (-1: missing)
    cache: EmbeddingCache
    names: tuple[str, str]  # model name, dataset: what each result carries
    bootstrap: tuple[int, int]  # resamples, seed
    batch_size: int
    scoring: str = "default"

    def cost(self, tag: str) -> float:
        return float(len(self.queries.queries.get(tag, ())))

    def __call__(self, tag: str) -> list[Result]:
        per = self.queries.queries.get(tag)
        if not per:
            log.warning("%s has no keywords for %s: skipped", self.queries.name, tag)
            return []
        cand = sorted({i for _, rel in per for i in rel if self.pos[i] >= 0})
        if len(cand) < 2:
            log.warning("%s: %d candidate images, too few: skipped", tag, len(cand))
            return []
        col = {i: c for c, i in enumerate(cand)}
        kept = [(kw, [col[i] for i in rel if i in col]) for kw, rel in per]
        kept = [(kw, rel) for kw, rel in kept if rel]
        txt = scored_text(self.encoder, encode_texts(self.encoder, [kw for kw, _ in kept], tag,
                                                     self.cache.in_this_process(), batch_size=self.batch_size),
                          self.scoring)
        img = self.images.vectors[self.pos[cand]]
        n_boot, seed = self.bootstrap
        metrics = multi_relevant_metrics(txt @ img.T, [rel for _, rel in kept], n_boot=n_boot, seed=seed)
        model_name, dataset = self.names
        return [Result(
            model=model_name, fingerprint=self.encoder.fingerprint.key, dataset=dataset, task=TASK,
            language=tag, metrics=metrics, counts={"images": len(cand), "texts": len(kept)},
            labels=self.queries.name, protocol=PROTOCOL,
        )]
