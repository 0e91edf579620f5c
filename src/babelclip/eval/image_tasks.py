"""Image→image retrieval and k-NN classification on a labelled image set: the image tower alone.

Both use the images' own embeddings (no text), so they measure what search by example and
linear/k-NN probes see, and need only a dataset with classes (ImageNet val, Tux Paint stamps
mapped to ImageNet classes, any labelled folder).

* **Image→image retrieval** (leave-one-out, as in metric-learning benchmarks; Musgrave et al.
  2020, "A Metric Learning Reality Check", arXiv:2003.08505): every image with at least one
  other image of its class is a query; the candidates are all *other* images; an image of the
  same class is relevant. ``i2i_r@k``: fraction of queries with a relevant image in the top k;
  ``i2i_map@r``: MAP@R (R = the query's number of relevant images). ``i2i_chance@k`` is the
  same recall under a random ranking (hypergeometric, as for text retrieval).
* **k-NN classification** (weighted vote of DINO, Caron et al. 2021, arXiv:2104.14294, §A:
  the k nearest neighbours vote for their class with weight ``exp(cos / T)``, T = 0.07):
  leave-one-out on one set (in :func:`image_task_results` the queries are the images with another
  image of their class, as for retrieval), or a train set voting for a test set. The votes form an
  (images × classes) score matrix handed to :func:`~.metrics.classification_metrics`, so the
  keys (``top1``, ``top5``, ``mean_per_class_recall``, ``top1_norm``, bootstrap CIs) mean what
  they mean for zero-shot classification.

Ties follow :mod:`.metrics`: among equal scores the lower index ranks first.
Bootstrap 95% intervals are over the queries (``n_boot`` resamples from ``seed``).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from .metrics import _any_in_top_k_chance, _check_ks, bootstrap_ci, classification_metrics
from .results import Result

log = logging.getLogger(__name__)

IMAGE_RETRIEVAL = "image_retrieval"
KNN = "knn_classification"
#: BCP-47 "no linguistic content": the language of a result that involves no text.
NO_LANGUAGE = "zxx"
_ROWS = 1024  # queries scored at once (bounds the temporary score block)


def _unit(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"{what} must be a non-empty (n, dim) array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{what} contain NaN or infinity")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _labels(y: Any, n: int, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{what} must be {n} integer class ids, got shape {y.shape} dtype {y.dtype}")
    if n and y.min() < 0:
        raise ValueError(f"{what} must be >= 0 (an unlabelled image, -1, cannot be evaluated): drop those first")
    return y


def _neighbours(queries: np.ndarray, base: np.ndarray, k: int, exclude: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosines of the ``k`` nearest ``base`` rows per query, best first (stable: lower
    index first among ties); query ``i`` never retrieves base row ``exclude[i]`` when given."""
    k = min(k, len(base) - int(exclude is not None))
    idx = np.empty((len(queries), k), np.int64)
    sims = np.empty((len(queries), k), np.float32)
    for s in range(0, len(queries), _ROWS):
        block = queries[s : s + _ROWS] @ base.T
        if exclude is not None:
            block[np.arange(len(block)), exclude[s : s + _ROWS]] = -np.inf
        order = np.argsort(-block, axis=1, kind="stable")[:, :k]
        idx[s : s + len(block)] = order
        sims[s : s + len(block)] = np.take_along_axis(block, order, 1)
    return idx, sims


def image_retrieval_metrics(vectors: np.ndarray, labels: Sequence[int], *, ks: Sequence[int] = (1, 5, 10),
                            n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Leave-one-out image→image retrieval by class (module docstring); keys ``i2i_r@k``,
    ``i2i_r@k_ci_low/high``, ``i2i_chance@k``, ``i2i_map@r`` (+ CI), ``queries``."""
    ks = _check_ks(ks)
    x = _unit(vectors, "image embeddings")
    y = _labels(labels, len(x), "labels")
    support = np.bincount(y)
    relevant = support[y] - 1  # other images of the same class
    queries = np.flatnonzero(relevant > 0)
    if queries.size == 0:
        raise ValueError("no class has two or more images: image→image retrieval needs at least one pair")
    if queries.size < len(x):
        log.warning("%d of %d images are alone in their class: candidates, not queries", len(x) - queries.size, len(x))
    r_max = int(relevant[queries].max())
    idx, _ = _loo(x, queries, max(max(ks), r_max))
    hit = y[idx] == y[queries][:, None]  # (q, K) relevance of each ranked neighbour
    out: dict[str, float] = {}
    n_cand = len(x) - 1
    for k in ks:
        found = hit[:, : min(k, n_cand)].any(1).astype(np.float64)
        out[f"i2i_r@{k}"] = float(found.mean())
        if n_boot:
            out[f"i2i_r@{k}_ci_low"], out[f"i2i_r@{k}_ci_high"] = bootstrap_ci(found, n_boot=n_boot, seed=seed)
        out[f"i2i_chance@{k}"] = _any_in_top_k_chance(n_cand, relevant[queries], k)
    # MAP@R: for each query, mean over the first R positions of precision@i at relevant positions, / R
    r = relevant[queries]
    pos = np.arange(1, hit.shape[1] + 1)
    within = pos[None, :] <= r[:, None]
    prec = np.cumsum(hit, 1) / pos[None, :]
    ap = (prec * hit * within).sum(1) / r
    out["i2i_map@r"] = float(ap.mean())
    if n_boot:
        out["i2i_map@r_ci_low"], out["i2i_map@r_ci_high"] = bootstrap_ci(ap, n_boot=n_boot, seed=seed)
    out["queries"] = float(queries.size)
    return out


def _loo(x: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest neighbours of the rows ``queries`` of ``x`` among the other rows of ``x``."""
    return _neighbours(x[queries], x, k, exclude=queries)


def knn_classification_metrics(vectors: np.ndarray, labels: Sequence[int], *, test_vectors: np.ndarray | None = None,
                               test_labels: Sequence[int] | None = None, k: int = 20, temperature: float = 0.07,
                               n_classes: int | None = None, ks: Sequence[int] = (1, 5), n_boot: int = 1000,
                               seed: int = 0, queries: Sequence[int] | None = None) -> dict[str, float]:
    """Weighted k-NN classification (module docstring): the train set ``vectors``/``labels``
    votes for ``test_vectors``/``test_labels``, or, without a test set, each image is classified
    by the others (leave-one-out; ``queries``: only those rows are classified, every row votes).
    Keys of :func:`classification_metrics` plus ``k``."""
    if k < 1 or temperature <= 0:
        raise ValueError(f"k must be >= 1 and temperature > 0, got k={k}, temperature={temperature}")
    base = _unit(vectors, "image embeddings")
    y = _labels(labels, len(base), "labels")
    loo = test_vectors is None
    if loo:
        if len(base) < 2:
            raise ValueError("leave-one-out k-NN needs at least two images")
        rows = np.arange(len(base)) if queries is None else np.asarray(queries, dtype=np.int64)
        q, qy = base[rows], y[rows]
        idx, sims = _loo(base, rows, k)
    else:
        q = _unit(test_vectors, "test image embeddings")
        qy = _labels(test_labels, len(q), "test labels")
        idx, sims = _neighbours(q, base, k)
    c = int(n_classes or max(y.max(), qy.max()) + 1)
    if c < 2:
        raise ValueError("k-NN classification needs at least two classes")
    votes = np.zeros((len(q), c), np.float64)
    np.add.at(votes, (np.repeat(np.arange(len(q)), idx.shape[1]), y[idx].ravel()), np.exp(sims.ravel() / temperature))
    out = classification_metrics(votes, qy, ks=ks, n_boot=n_boot, seed=seed)
    out["k"] = float(min(k, len(base) - int(loo)))
    return out


def image_task_results(vectors: np.ndarray, labels: Sequence[int], *, model: str, fingerprint: str, dataset: str,
                       knn_k: int = 20, n_boot: int = 1000, seed: int = 0) -> list[Result]:
    """Both tasks on one labelled image set, as :class:`Result` rows (language ``zxx``:
    no linguistic content). Images labelled -1 (no class) are left out. The queries of both are
    the images with another image of their class (one alone in its class can be neither found
    by class nor classified right leave-one-out); every image is a candidate and a voter."""
    y = np.asarray(labels)
    keep = y >= 0
    x, y = np.asarray(vectors)[keep], y[keep]
    counts = {"images": int(keep.sum()), "classes": len(np.unique(y))}
    ret = image_retrieval_metrics(x, y, n_boot=n_boot, seed=seed)
    paired = np.flatnonzero(np.bincount(y)[y] >= 2)
    knn = knn_classification_metrics(x, y, k=knn_k, n_boot=n_boot, seed=seed, queries=paired)
    common = {"model": model, "fingerprint": fingerprint, "dataset": dataset, "language": NO_LANGUAGE}
    return [
        Result(task=IMAGE_RETRIEVAL, metrics=ret, counts={**counts, "queries": int(ret.pop("queries"))},
               protocol="leave-one-out", **common),
        Result(task=KNN, metrics=knn, counts={**counts, "queries": len(paired)}, protocol=f"leave-one-out k={knn_k}",
               **common),
    ]
