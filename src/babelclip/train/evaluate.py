"""Small text-side evaluations for training runs: before/after figures with confidence intervals.

- :func:`label_alignment` — Babel-ImageNet labels, text only: does a language's label of a class
  land nearest to the English label of *its own* class, among the classes that language has?
  (The multilingual loss of CLIP-style models is mostly on the text side; the babel-lite
  prototype measured this proxy correlating r = 0.81 with zero-shot accuracy on images.)
- :func:`text_to_image_recall` — text→image R@k for one language over precomputed image
  embeddings (e.g. Tux Paint stamps), with a bootstrap CI over queries.

Both read evaluation data; neither may feed training (see :mod:`babelclip.train.leakage`).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..eval.metrics import bootstrap_ci, classification_metrics, target_ranks
from ..languages import get_language
from ..models.base import Encoder, l2_normalize


def label_alignment(encoder: Encoder, labelset, lang: str, *, reference=None, class_vectors: np.ndarray | None = None,
                    n_boot: int = 1000, batch_size: int = 256) -> dict[str, float]:
    """Top-1/top-5 of ``lang`` labels against the English labels of the same classes, with 95% CIs.

    The English side comes from ``reference`` (another label set, e.g. the CLIP class names)
    or else from ``labelset`` itself; with a reference, English itself can be scored too
    (Babel-ImageNet's BabelNet lemmas against the CLIP names). ``class_vectors`` (one row per
    class index) replaces the English side by a model's own class prototypes — for babel-lite
    the image-side embedding of each class, so "lands on its own class" is its head's argmax.
    """
    tag = labelset.resolve(lang)
    ref = reference if reference is not None else labelset
    en_tag = ref.resolve("en")
    idx, labels = labelset.classes(tag)
    en = ref.labels[en_tag]
    keep = [k for k, i in enumerate(idx) if i in en]
    if len(keep) < 2:
        raise ValueError(f"{tag}: fewer than 2 classes with both a {tag} and an English label")
    tgt_texts = [labels[k] for k in keep]
    en_texts = [en[idx[k]] for k in keep]
    t = l2_normalize(encoder.encode_texts(tgt_texts, tag, batch_size=batch_size))
    if class_vectors is not None:
        e = l2_normalize(np.asarray(class_vectors)[[idx[k] for k in keep]])
    else:
        e = l2_normalize(encoder.encode_texts(en_texts, en_tag, batch_size=batch_size))
    m = classification_metrics(t @ e.T, np.arange(len(keep)), ks=(1, 5), n_boot=n_boot)
    return {"top1": m["top1"], "top1_ci_low": m.get("top1_ci_low", np.nan), "top1_ci_high": m.get("top1_ci_high", np.nan),
            "top5": m["top5"], "chance": m["chance"], "n_classes": float(len(keep))}


def text_to_image_recall(encoder: Encoder, image_vectors: np.ndarray, texts: Sequence[str], owners: Sequence[int],
                         lang: str, *, ks: Sequence[int] = (1, 5), n_boot: int = 1000) -> dict[str, float]:
    """R@k of ``texts`` (in ``lang``) retrieving image ``owners[i]`` among ``image_vectors``, with 95% CIs."""
    tag = get_language(lang).tag
    t = l2_normalize(encoder.encode_texts(list(texts), tag))
    ranks = target_ranks(t @ l2_normalize(image_vectors).T, np.asarray(owners))
    out: dict[str, float] = {"n_texts": float(len(texts)), "n_images": float(len(image_vectors))}
    for k in ks:
        hits = (ranks < k).astype(np.float64)
        out[f"r@{k}"] = float(hits.mean())
        if n_boot:
            out[f"r@{k}_ci_low"], out[f"r@{k}_ci_high"] = bootstrap_ci(hits, n_boot=n_boot)
    return out
