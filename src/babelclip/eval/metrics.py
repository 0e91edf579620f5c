"""Metrics of zero-shot classification and retrieval, computed from a score matrix.

Everything here is plain NumPy on a precomputed score matrix (cosine similarities of
L2-normalised embeddings), so the same numbers come out whatever model or device produced the
scores, and the metric code can be checked against open_clip's and CLIP_benchmark's on identical
inputs (``tests/test_metrics.py``).

**Ties.** A candidate's rank is the number of candidates with a strictly higher score plus the
number with an equal score and a *lower index*; a hit at k means rank < k. This is a stable
descending sort (``np.argsort(-s, kind="stable")``) and agrees with ``argmax`` (first maximum) in
NumPy and PyTorch, which CLIP_benchmark uses for its predictions (``logits.argmax``, hence its
mean per-class recall). CLIP_benchmark's top-k and recall@k go through ``torch.topk``, whose
order among exactly equal scores is unspecified; with real-valued embeddings exact ties do not
occur, and on any input without ties both definitions agree exactly.

**Confidence intervals.** Percentile bootstrap (Efron & Tibshirani 1993, ch. 13) over the
evaluated items — images for classification, the queries for retrieval (texts for text→image,
images for image→text): the per-item correctness vector is resampled with
replacement ``n_boot`` times and the 2.5th/97.5th percentiles of the resampled means form the
95% interval. For a 0/1 vector the sum of a resample is exactly Binomial(n, p̂), so it is drawn
directly (O(n_boot) instead of O(n_boot·n)); any other vector is resampled by index in chunks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

log = logging.getLogger(__name__)

__all__ = [
    "bootstrap_ci",
    "bootstrap_means",
    "classification_metrics",
    "retrieval_metrics",
    "target_ranks",
]

# Rows of the score matrix handled at once: bounds the temporary boolean matrices to ~32 MB.
_CHUNK_CELLS = 1 << 25


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(int(k) for k in ks)
    if not ks or any(k < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {ks!r}")
    return ks


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of ``targets[i]`` within row ``i`` of ``scores`` (higher score = better).

    rank = #{j : s[i, j] > s[i, t]} + #{j < t : s[i, j] == s[i, t]} — the position of the target
    in a stable descending sort, computed without sorting (O(n·C) comparisons, chunked by rows).
    """
    scores = np.asarray(scores)
    targets = np.asarray(targets)
    if scores.ndim != 2:
        raise ValueError(
            f"scores must be a 2-d array (items, candidates), got shape {scores.shape}"
        )
    n, c = scores.shape
    if targets.shape != (n,):
        raise ValueError(
            f"targets must have shape ({n},) to match scores {scores.shape}, got {targets.shape}"
        )
    if not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"targets must be integer positions 0..{c - 1}, got dtype {targets.dtype}")
    if n and (targets.min() < 0 or targets.max() >= c):
        raise ValueError(
            f"targets must lie in 0..{c - 1} (the columns of scores); got {targets.min()}..{targets.max()}"
        )
    if np.isnan(scores).any():
        raise ValueError(
            "scores contain NaN; check that the embeddings are finite and L2-normalised"
        )
    ranks = np.empty(n, dtype=np.int64)
    cols = np.arange(c)
    step = max(1, _CHUNK_CELLS // max(c, 1))
    for start in range(0, n, step):
        s = scores[start : start + step]
        t = targets[start : start + step]
        own = s[np.arange(len(t)), t][:, None]
        ranks[start : start + step] = (s > own).sum(1) + (
            (s == own) & (cols[None, :] < t[:, None])
        ).sum(1)
    return ranks


def bootstrap_means(values: np.ndarray, *, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement, same size) of ``values``; deterministic in ``seed``."""
    values = np.asarray(values, dtype=np.float64).ravel()
    n = values.size
    if n == 0:
        raise ValueError("cannot bootstrap an empty sample")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    if np.isin(values, (0.0, 1.0)).all():
        # Sum of n draws with replacement from a 0/1 vector with mean p is Binomial(n, p).
        return rng.binomial(n, values.mean(), size=n_boot) / n
    out = np.empty(n_boot)
    step = max(1, _CHUNK_CELLS // (4 * n))
    for start in range(0, n_boot, step):
        m = min(step, n_boot - start)
        out[start : start + m] = values[rng.integers(0, n, size=(m, n))].mean(1)
    return out


def bootstrap_ci(
    values: np.ndarray, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of ``values`` (see module docstring)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    means = bootstrap_means(values, n_boot=n_boot, seed=seed)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)


def classification_metrics(
    scores: np.ndarray,
    targets: np.ndarray,
    *,
    ks: Sequence[int] = (1, 5),
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Zero-shot classification metrics from image-by-class scores.

    ``scores`` is (n_images, n_classes), ``targets`` the class position of each image. Keys:

    - ``top{k}`` for k in ``ks`` (k capped at n_classes; the key keeps the requested k): the
      fraction of images whose class ranks < k; ``top{k}_chance`` = min(k, C)/C.
    - ``mean_per_class_recall``: the mean over classes *with at least one image* of the fraction
      of that class's images predicted (top-1) correctly — sklearn's ``balanced_accuracy_score``.
    - ``chance`` = 1/C; ``top1_norm`` = (top1 − chance)/(1 − chance), so 0 is chance and 1 perfect
      whatever the number of classes (languages of Babel-ImageNet have 18 to 1000 classes).
    - ``top1_ci_low``/``top1_ci_high`` and ``top1_norm_ci_low``/``_high``: percentile-bootstrap
      95% intervals over images (``n_boot`` resamples, ``seed``); ``n_boot=0`` leaves them out.
    """
    ks = _check_ks(ks)
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] < 2:
        raise ValueError(
            f"scores must be (n_images >= 1, n_classes >= 2), got shape {scores.shape}"
        )
    n_classes = scores.shape[1]
    targets = np.asarray(targets)
    ranks = target_ranks(scores, targets)
    out: dict[str, float] = {}
    for k in ks:
        kk = min(k, n_classes)
        out[f"top{k}"] = float((ranks < kk).mean())
        out[f"top{k}_chance"] = kk / n_classes
    correct = ranks == 0
    per_class = np.bincount(targets, weights=correct, minlength=n_classes)
    support = np.bincount(targets, minlength=n_classes)
    present = support > 0
    out["mean_per_class_recall"] = float((per_class[present] / support[present]).mean())
    chance = 1.0 / n_classes
    top1 = float(correct.mean())
    out["top1"] = top1
    out["chance"] = chance
    out["top1_norm"] = (top1 - chance) / (1 - chance)
    if n_boot:
        lo, hi = bootstrap_ci(correct, n_boot=n_boot, seed=seed)
        out["top1_ci_low"], out["top1_ci_high"] = lo, hi
        out["top1_norm_ci_low"] = (lo - chance) / (1 - chance)
        out["top1_norm_ci_high"] = (hi - chance) / (1 - chance)
    return out


def _any_in_top_k_chance(n: int, m: np.ndarray, k: int) -> float:
    """Mean over items of P(at least one of its m relevant among the first k of a random order of n).

    1 − C(n−m, k)/C(n, k), the hypergeometric probability of no relevant item in the top k.
    """
    k = min(k, n)
    values, counts = np.unique(m, return_counts=True)
    i = np.arange(k)
    # C(n-m, k)/C(n, k) = prod_{i<k} (n-m-i)/(n-i); a factor hits 0 exactly when n-m < k.
    probs = [1.0 - max(0.0, float(np.prod((n - mi - i) / (n - i)))) for mi in values.tolist()]
    return float(np.dot(probs, counts) / counts.sum())


def retrieval_metrics(
    scores: np.ndarray,
    text_to_image: np.ndarray,
    *,
    ks: Sequence[int] = (1, 5, 10),
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Text↔image retrieval recall@k from text-by-image scores, as in CLIP-style papers.

    ``scores`` is (n_texts, n_images); ``text_to_image[i]`` is the image text ``i`` describes.
    An image without any text stays a candidate for text→image retrieval but is not an
    image→text query (a warning is logged). Keys, for k in ``ks`` (capped at the candidates):

    - ``t2i_r@k``: fraction of texts whose image ranks < k among all images.
    - ``i2t_r@k``: fraction of images with *any* of their texts ranked < k among all texts
      (CLIP_benchmark's ``text_retrieval_recall@k``: its per-image recall > 0), over the images
      that have a text.
    - ``t2i_chance@k`` = min(k, n_images)/n_images; ``i2t_chance@k`` = the mean over images of
      1 − C(n_texts − m, k)/C(n_texts, k) for an image with m texts (random ranking).
    - ``t2i_r@k_ci_low``/``_ci_high`` and ``i2t_r@k_ci_low``/``_ci_high``: percentile-bootstrap
      95% intervals (:func:`bootstrap_ci`, ``n_boot`` resamples, ``seed``) over the queries of
      each direction — texts for t2i, images with a text for i2t — the same key scheme as
      classification's ``top1_ci_low``; ``n_boot=0`` leaves them out. Texts of one image are
      resampled independently, as CLIP-style papers count each caption as a query.
    """
    ks = _check_ks(ks)
    scores = np.asarray(scores)
    t2i = np.asarray(text_to_image)
    if scores.ndim != 2 or 0 in scores.shape:
        raise ValueError(f"scores must be (n_texts >= 1, n_images >= 1), got shape {scores.shape}")
    n_texts, n_images = scores.shape
    text_ranks = target_ranks(scores, t2i)  # validates t2i
    n_per_image = np.bincount(t2i, minlength=n_images)
    queries = np.flatnonzero(n_per_image > 0)
    if queries.size < n_images:
        log.warning(
            "%d of %d images have no text: they stay candidates for text→image retrieval but are "
            "not image→text queries (nothing to retrieve)",
            n_images - queries.size,
            n_images,
        )
    # Image→text: an image's best positive is its highest-scored text (lowest index among equals);
    # "any positive in the top k" is "the best positive ranks < k".
    own = scores[np.arange(n_texts), t2i]  # each text's score with its own image
    order = np.lexsort((np.arange(n_texts), -own, t2i))  # by image, best score, lowest index
    first = np.flatnonzero(np.r_[True, t2i[order][1:] != t2i[order][:-1]])
    best_text = np.full(n_images, n_texts)  # an image without text: no competitor counts
    best_text[t2i[order[first]]] = order[first]
    best_score = np.full(n_images, np.inf, dtype=np.result_type(scores.dtype, np.float32))
    best_score[queries] = own[best_text[queries]]
    # rank of the best positive in its image's column, counted over row chunks (no transpose)
    image_ranks = np.zeros(n_images, dtype=np.int64)
    step = max(1, _CHUNK_CELLS // n_images)
    for start in range(0, n_texts, step):
        chunk = scores[start : start + step]
        rows = np.arange(start, start + len(chunk))[:, None]
        image_ranks += (chunk > best_score).sum(0)
        image_ranks += ((chunk == best_score) & (rows < best_text)).sum(0)
    image_ranks = image_ranks[queries]
    out: dict[str, float] = {}
    for direction, ranks, n_cand in (("t2i", text_ranks, n_images), ("i2t", image_ranks, n_texts)):
        for k in ks:
            hits = ranks < min(k, n_cand)
            key = f"{direction}_r@{k}"
            out[key] = float(hits.mean())
            if n_boot:
                out[f"{key}_ci_low"], out[f"{key}_ci_high"] = bootstrap_ci(hits, n_boot=n_boot, seed=seed)
    for k in ks:
        out[f"t2i_chance@{k}"] = min(k, n_images) / n_images
        out[f"i2t_chance@{k}"] = _any_in_top_k_chance(n_texts, n_per_image[queries], k)
    return out
