"""Small text-side evaluations for training runs: before/after figures with confidence intervals.

- :func:`label_alignment` — Babel-ImageNet labels, text only: does a language's label of a class
  land nearest to the English label of *its own* class, among the classes that language has?
  (The multilingual loss of CLIP-style models is mostly on the text side; the babel-lite
  prototype measured this proxy correlating r = 0.81 with zero-shot accuracy on images.)
- :func:`text_to_image_recall` — text→image R@k for one language over precomputed image
  embeddings (e.g. Tux Paint stamps), with a bootstrap CI over queries.

- :func:`label_alignment_hits` / :func:`text_to_image_hits` — the same two evaluations as
  per-query hits, and :func:`before_after`, which turns the hits of one model before and after
  training into both figures with 95% CIs and their difference with a *paired* bootstrap CI
  (the same queries resampled on both sides, so the interval is of the gain itself).
- :func:`head_prototypes` — babel-lite's class prototypes: what decides its zero-shot.

All read evaluation data; none may feed training (see :mod:`babelclip.train.leakage`).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..eval.metrics import bootstrap_ci, classification_metrics, target_ranks
from ..languages import get_language
from ..models.base import Encoder, capabilities, l2_normalize


def _alignment_scores(encoder: Encoder, labelset, lang: str, reference, class_vectors: np.ndarray | None,
                      batch_size: int) -> np.ndarray:
    """(n, n) cosines of ``lang``'s labels (rows) against the class side (columns), same class order:
    the target of row ``i`` is column ``i``."""
    tag = labelset.resolve(lang)
    ref = reference if reference is not None else labelset
    en_tag = ref.resolve("en")
    idx, labels = labelset.classes(tag)
    en = ref.labels[en_tag]
    keep = [k for k, i in enumerate(idx) if i in en]
    if len(keep) < 2:
        raise ValueError(f"{tag}: fewer than 2 classes with both a {tag} and an English label")
    tgt_texts = [labels[k] for k in keep]
    t = l2_normalize(encoder.encode_texts(tgt_texts, tag, batch_size=batch_size))
    if class_vectors is not None:
        e = l2_normalize(np.asarray(class_vectors)[[idx[k] for k in keep]])
    else:
        e = l2_normalize(encoder.encode_texts([en[idx[k]] for k in keep], en_tag, batch_size=batch_size))
    return t @ e.T


def label_alignment(encoder: Encoder, labelset, lang: str, *, reference=None, class_vectors: np.ndarray | None = None,
                    n_boot: int = 1000, batch_size: int = 256) -> dict[str, float]:
    """Top-1/top-5 of ``lang`` labels against the English labels of the same classes, with 95% CIs.

    The English side comes from ``reference`` (another label set, e.g. the CLIP class names)
    or else from ``labelset`` itself; with a reference, English itself can be scored too
    (Babel-ImageNet's BabelNet lemmas against the CLIP names). ``class_vectors`` (one row per
    class index) replaces the English side by a model's own class prototypes — for babel-lite
    the image-side embedding of each class, so "lands on its own class" is its head's argmax.
    """
    scores = _alignment_scores(encoder, labelset, lang, reference, class_vectors, batch_size)
    m = classification_metrics(scores, np.arange(len(scores)), ks=(1, 5), n_boot=n_boot)
    return {"top1": m["top1"], "top1_ci_low": m.get("top1_ci_low", np.nan), "top1_ci_high": m.get("top1_ci_high", np.nan),
            "top5": m["top5"], "chance": m["chance"], "n_classes": float(len(scores))}


def label_alignment_hits(encoder: Encoder, labelset, lang: str, *, reference=None,
                         class_vectors: np.ndarray | None = None, ks: Sequence[int] = (1, 5),
                         batch_size: int = 256) -> dict[str, np.ndarray]:
    """:func:`label_alignment` as per-label hits: ``{"top1": 0/1 per label, "top5": ...}``."""
    scores = _alignment_scores(encoder, labelset, lang, reference, class_vectors, batch_size)
    ranks = target_ranks(scores, np.arange(len(scores)))
    return {f"top{k}": (ranks < k).astype(np.float64) for k in ks}


def _retrieval_ranks(encoder: Encoder, image_vectors: np.ndarray, texts: Sequence[str], owners: Sequence[int],
                     lang: str) -> np.ndarray:
    tag = get_language(lang).tag
    t = l2_normalize(encoder.encode_texts(list(texts), tag))
    return target_ranks(t @ l2_normalize(image_vectors).T, np.asarray(owners))


def text_to_image_recall(encoder: Encoder, image_vectors: np.ndarray, texts: Sequence[str], owners: Sequence[int],
                         lang: str, *, ks: Sequence[int] = (1, 5), n_boot: int = 1000) -> dict[str, float]:
    """R@k of ``texts`` (in ``lang``) retrieving image ``owners[i]`` among ``image_vectors``, with 95% CIs."""
    ranks = _retrieval_ranks(encoder, image_vectors, texts, owners, lang)
    out: dict[str, float] = {"n_texts": float(len(texts)), "n_images": float(len(image_vectors))}
    for k in ks:
        hits = (ranks < k).astype(np.float64)
        out[f"r@{k}"] = float(hits.mean())
        if n_boot:
            out[f"r@{k}_ci_low"], out[f"r@{k}_ci_high"] = bootstrap_ci(hits, n_boot=n_boot)
    return out


def text_to_image_hits(encoder: Encoder, image_vectors: np.ndarray, texts: Sequence[str], owners: Sequence[int],
                       lang: str, *, ks: Sequence[int] = (1, 5)) -> dict[str, np.ndarray]:
    """:func:`text_to_image_recall` as per-query hits: ``{"r@1": 0/1 per text, "r@5": ...}``."""
    ranks = _retrieval_ranks(encoder, image_vectors, texts, owners, lang)
    return {f"r@{k}": (ranks < k).astype(np.float64) for k in ks}


def before_after(before: dict[str, np.ndarray], after: dict[str, np.ndarray], *, n_boot: int = 1000,
                 seed: int = 0) -> dict[str, dict[str, float]]:
    """Both sides' means with 95% percentile-bootstrap CIs, and ``change`` = after − before.

    ``before``/``after`` hold, per metric, one hit (0/1) per query — the same queries in the same
    order on both sides. The CI of the change resamples queries *paired* (one resample applied to
    both sides), so it is the interval of the gain, narrower than two independent intervals
    suggest when most queries agree.
    """
    if set(before) != set(after):
        raise ValueError(f"before has metrics {sorted(before)}, after {sorted(after)}: they must match")
    out: dict[str, dict[str, float]] = {"before": {}, "after": {}, "change": {}}
    for key, hits in before.items():
        b, a = np.asarray(hits, np.float64), np.asarray(after[key], np.float64)
        if b.shape != a.shape or b.ndim != 1 or not len(b):
            raise ValueError(f"{key}: before and after need one hit per query, the same queries; got {b.shape} and {a.shape}")
        for side, v in (("before", b), ("after", a), ("change", a - b)):
            out[side][key] = float(v.mean())
            if n_boot:
                out[side][f"{key}_ci_low"], out[side][f"{key}_ci_high"] = bootstrap_ci(v, n_boot=n_boot, seed=seed)
    out["before"]["n"] = out["after"]["n"] = float(len(b))
    return out


def head_prototypes(encoder: Encoder) -> np.ndarray | None:
    """The encoder's class prototypes — each class's image-side unit vector, one row per class
    (babel-lite's) — or ``None`` for an encoder whose text side is not a distribution over classes
    (:meth:`~babelclip.models.base.EncoderCapabilities.class_prototypes`).

    A text's cosine to these rows ranks the classes as its head's logits do, so label alignment
    against them measures what decides babel-lite's zero-shot (its own argmax), where alignment
    against English names measures agreement with another text.
    """
    return capabilities(encoder).class_prototypes()


def percent_cell(m: dict[str, float], key: str, signed: bool = False) -> str:
    """``m[key]`` of a :func:`before_after` side as a percentage, with its 95% CI where present."""
    f = "{:+.1f}" if signed else "{:.1f}"
    if f"{key}_ci_low" not in m:
        return f.format(100 * m[key])
    return f"{f.format(100 * m[key])} [{f.format(100 * m[key + '_ci_low'])}, {f.format(100 * m[key + '_ci_high'])}]"


def before_after_table(evaluation: dict[str, dict]) -> list[str]:
    """Lines of a small before → after table (percentages, 95% CIs) of ``train_language``'s
    ``evaluation``: one row per evaluation and metric, ``what`` it measures above its rows."""
    rows = [("", "before", "after", "change")]
    for ev in evaluation.values():
        b, a, c = ev["before"], ev["after"], ev["change"]
        rows.append((f"{ev.get('what', '')} (n={b['n']:.0f})", "", "", ""))
        rows += [(f"  {key}", percent_cell(b, key), percent_cell(a, key), percent_cell(c, key, signed=True))
                 for key in b if key != "n" and not key.endswith(("_ci_low", "_ci_high"))]
    widths = [max(len(r[i]) for r in rows if r[1]) for i in range(4)]  # section titles run over
    return ["  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))).rstrip()
            if r[1] else r[0] for r in rows]
