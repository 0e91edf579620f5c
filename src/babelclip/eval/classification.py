"""Zero-shot image classification in every language of a label set.

Protocol (Geigle et al., 2024, Babel-ImageNet): language L is scored on the images of the
classes it has labels for, and the scores are restricted to those classes (candidates = classes
with a label in L *and* at least one image in the source — with a full ImageNet validation set
this is exactly the paper's protocol; with partial image sets such as Tux Paint it avoids
classes no image could ever be). The class embedding of a prompt set is the mean of the
L2-normalised text embeddings of its templates filled with the label, re-normalised (the
prompt ensembling of Radford et al., 2021, as open_clip's ``build_zero_shot_classifier``).

Prompt sets are :class:`~babelclip.data.prompts.PromptSet` objects (anything with ``name`` and
``templates(lang)``); :func:`ensemble` joins several into one. For each language every prompt
string of every prompt set is gathered first and encoded once (see
:func:`babelclip.eval.encode.encode_texts`), so "{}" filled with a label is encoded once even
when label-only and an ensemble both use it.

``scoring="paper"`` reproduces the Babel-ImageNet reference code (``compute_accuracy`` of its
``eval_babel_imagenet.py``): the class embedding is the mean of the text embeddings *as the model
returns them*, normalised only when there are several templates, so a single prompt of a model
whose text embeddings are not unit-norm (M-CLIP, sentence-transformers created with
``protocol="paper"``) is scored unnormalised. The default always normalises.

Results say what they measured in ``protocol``: the task's protocol (``babel-imagenet`` for
Babel-ImageNet, ``zero-shot`` elsewhere), or ``fixed-k=K``.

Fixed-K mode (:class:`FixedK`) makes languages with 18 and 973 classes comparable: K classes
are sampled per repetition with a fixed seed (the same draws for every model), each
repetition is scored on its K classes, and the mean and standard deviation over repetitions
are reported (``metric`` and ``metric_sd``). Languages with fewer than K classes are skipped.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..languages import get_language
from ..models.base import l2_normalize
from .cache import EmbeddingCache
from .encode import ImageEmbeddings, encode_texts
from .results import Result

if TYPE_CHECKING:  # pragma: no cover
    from ..data.labels import LabelSet
    from ..models.base import Encoder

log = logging.getLogger(__name__)

TASK = "zeroshot_classification"
SLOT = "{}"
SCORINGS = ("default", "paper")


class Prompts(Protocol):
    name: str

    def templates(self, lang: str) -> list[str]: ...


@dataclass(frozen=True)
class FixedK:
    """Sample ``k`` classes per language, ``repeats`` times, from ``numpy.random.default_rng([seed, r])``."""

    k: int
    repeats: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.k < 2 or self.repeats < 1:
            raise ValueError(f"fixed-K needs k >= 2 and repeats >= 1, got k={self.k}, repeats={self.repeats}")

    @property
    def protocol(self) -> str:
        return f"fixed-k={self.k}"


@dataclass
class Ensemble:
    """Several prompt sets as one: per language, the union of their templates (first-seen order)."""

    parts: Sequence[Prompts]
    name: str = "ensemble"

    def templates(self, lang: str) -> list[str]:
        return list(dict.fromkeys(t for p in self.parts for t in p.templates(lang)))


def ensemble(parts: Sequence[Prompts], name: str = "ensemble") -> Ensemble:
    return Ensemble(list(parts), name)


def fill(template: str, label: str) -> str:
    """The template with its slot replaced (``str.replace``, so braces in labels are safe)."""
    return template.replace(SLOT, label, 1)


def classifier_weights(text_vecs: dict[str, np.ndarray], labels: Sequence[str], templates: Sequence[str]) -> np.ndarray:
    """``(n_classes, dim)``: per class the re-normalised mean of its normalised prompt embeddings.

    One gather of a ``(n_classes, n_templates, dim)`` block instead of a loop over classes."""
    row: dict[str, int] = {}
    idx = np.array([[row.setdefault(fill(t, label), len(row)) for t in templates] for label in labels], dtype=np.int64)
    return _weights(np.stack([text_vecs[t] for t in row]), idx)


def _weights(vecs: np.ndarray, idx: np.ndarray, scoring: str = "default") -> np.ndarray:
    """Class ``c``: the re-normalised mean of the normalised rows ``vecs[idx[c]]``; ``paper``: the
    mean of the rows as they are, normalised only when there are several (module docstring)."""
    if scoring == "paper":
        mean = vecs[idx].mean(axis=1)
        return l2_normalize(mean) if idx.shape[1] > 1 else mean
    return l2_normalize(l2_normalize(vecs[idx]).mean(axis=1))


def _image_classes(images: ImageEmbeddings, source_classes: Sequence[str], label_set: LabelSet) -> np.ndarray:
    """Each image's class as an index into ``label_set.wnids`` (-1 when it has none there)."""
    pos = {w: i for i, w in enumerate(label_set.wnids)}
    if not source_classes:
        raise ValueError("the image source has no classes; zero-shot classification needs labelled images")
    mapping = np.array([pos.get(w, -1) for w in source_classes] + [-1], dtype=np.int64)
    if (mapping[:-1] < 0).all():
        raise ValueError(
            f"none of the image source's {len(source_classes)} classes (e.g. {source_classes[0]!r}) is a class "
            f"of label set {label_set.id!r} (e.g. {label_set.wnids[0]!r})"
        )
    return mapping[images.labels]  # label -1 indexes the trailing -1


def _metrics(scores: np.ndarray, targets: np.ndarray, n_boot: int, seed: int) -> dict[str, float]:
    from .metrics import classification_metrics

    return classification_metrics(scores, targets, n_boot=n_boot, seed=seed)


def _fixed_k(img: np.ndarray, weights: np.ndarray, targets: np.ndarray, cfg: FixedK) -> tuple[dict[str, float], int]:
    """Mean and sd over repetitions of the metrics on K sampled classes; and the mean image count."""
    runs, n_imgs = [], []
    n_classes = weights.shape[0]
    for r in range(cfg.repeats):
        chosen = np.sort(np.random.default_rng([cfg.seed, r]).choice(n_classes, cfg.k, replace=False))
        sel = np.isin(targets, chosen)
        remap = np.full(n_classes, -1, dtype=np.int64)
        remap[chosen] = np.arange(cfg.k)
        runs.append(_metrics(img[sel] @ weights[chosen].T, remap[targets[sel]], 0, 0))
        n_imgs.append(int(sel.sum()))
    out: dict[str, float] = {}
    for key in runs[0]:
        vals = np.array([m[key] for m in runs])
        out[key] = float(vals.mean())
        out[f"{key}_sd"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
    return out, round(float(np.mean(n_imgs)))


def zero_shot_classification(
    encoder: Encoder,
    images: ImageEmbeddings,
    source_classes: Sequence[str],
    label_set: LabelSet,
    prompt_sets: Sequence[Prompts],
    cache: EmbeddingCache,
    *,
    languages: Sequence[str] | None = None,
    model_name: str = "",
    dataset: str = "",
    fixed_k: FixedK | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    batch_size: int = 256,
    workers: int | str = 1,
    quiet: bool = True,
    protocol: str = "zero-shot",
    scoring: str = "default",
) -> list[Result]:
    """One :class:`Result` per (language, prompt set) from already encoded images.

    ``source_classes`` names the classes of ``images.labels`` (wnids); ``languages`` defaults
    to every language of the label set. Languages with fewer than two candidate classes (or
    fewer than K in fixed-K mode) are skipped with a warning. ``workers``: languages evaluated
    in that many forked CPU processes (``"auto"``: one per available core; see
    :mod:`babelclip.eval.workers`), with the same results as one process. ``protocol``: what
    the results' ``protocol`` says; ``scoring``: ``default`` or ``paper`` (module docstring).
    """
    from .workers import run_language_jobs

    if scoring not in SCORINGS:
        raise ValueError(f"scoring={scoring!r}; allowed: {', '.join(SCORINGS)}")
    if not prompt_sets:
        raise ValueError("no prompt sets given; use e.g. babelclip.data.prompts.label_only()")
    img_cls = _image_classes(images, source_classes, label_set)
    present = set(img_cls[img_cls >= 0].tolist())
    langs = [get_language(lang).tag for lang in (languages if languages is not None else label_set.languages())]
    job = _LanguageJob(encoder, images, img_cls, present, label_set, prompt_sets, cache, model_name, dataset,
                       fixed_k, n_boot, seed, batch_size, protocol, scoring)
    return run_language_jobs(job, langs, workers, desc="classification", quiet=quiet)


@dataclass
class _LanguageJob:
    """The zero-shot evaluation of one language (a callable, so forked workers can run it)."""

    encoder: Encoder
    images: ImageEmbeddings
    img_cls: np.ndarray
    present: set[int]
    label_set: LabelSet
    prompt_sets: Sequence[Prompts]
    cache: EmbeddingCache
    model_name: str
    dataset: str
    fixed_k: FixedK | None
    n_boot: int
    seed: int
    batch_size: int
    protocol: str = "zero-shot"
    scoring: str = "default"

    def cost(self, tag: str) -> float:
        """Prompts to encode, roughly (orders the hand-out to workers)."""
        labels = self.label_set.labels.get(tag, {})
        return float(len(labels) * sum(len(p.templates(tag)) for p in self.prompt_sets)) if labels else 0.0

    def __call__(self, tag: str) -> list[Result]:
        label_set, fixed_k, encoder = self.label_set, self.fixed_k, self.encoder
        if tag not in label_set.labels:
            log.warning("label set %s has no labels for %s: skipped", label_set.id, tag)
            return []
        cls_idx, cls_labels = label_set.classes(tag)
        keep = [(c, lab) for c, lab in zip(cls_idx, cls_labels) if c in self.present]
        if len(keep) < (fixed_k.k if fixed_k else 2):
            log.warning("%s: %d candidate classes with images, too few%s: skipped", tag, len(keep),
                        f" for K={fixed_k.k}" if fixed_k else "")
            return []
        cls_idx, cls_labels = [c for c, _ in keep], [lab for _, lab in keep]
        per_set = {p.name: p.templates(tag) for p in self.prompt_sets}
        for name in [n for n, tpl in per_set.items() if not tpl]:  # a "skip" fallback: no result for the set
            log.warning("%s: prompt set %s has no templates for this language: skipped", tag, name)
            del per_set[name]
        row: dict[str, int] = {}  # distinct prompt -> row of ``vecs``; one fill per (set, template, label)
        idx = {name: np.array([[row.setdefault(fill(t, lab), len(row)) for t in tpl] for lab in cls_labels],
                              dtype=np.int64) for name, tpl in per_set.items()}
        vecs = encode_texts(encoder, list(row), tag, self.cache.in_this_process(), batch_size=self.batch_size)
        pos = np.full(len(label_set.wnids), -1, dtype=np.int64)
        pos[cls_idx] = np.arange(len(cls_idx))
        img_cls = self.img_cls
        sel = np.flatnonzero((img_cls >= 0) & (pos[np.maximum(img_cls, 0)] >= 0))
        img, targets = self.images.vectors[sel], pos[img_cls[sel]]
        results = []
        for p in self.prompt_sets:
            if p.name not in per_set:
                continue
            weights = _weights(vecs, idx[p.name], self.scoring)
            if fixed_k:
                metrics, n_img = _fixed_k(img, weights, targets, fixed_k)
                counts = {"images": n_img, "classes": fixed_k.k, "classes_available": len(cls_idx), "repeats": fixed_k.repeats}
            else:
                metrics = _metrics(img @ weights.T, targets, self.n_boot, self.seed)
                counts = {"images": len(sel), "classes": len(cls_idx)}
            counts["templates"] = len(per_set[p.name])
            extra: dict[str, Any] = {}
            if tag in getattr(p, "fallbacks", {}):
                extra["prompt_fallback"] = p.fallbacks[tag]
            results.append(Result(
                model=self.model_name, fingerprint=encoder.fingerprint.key, dataset=self.dataset, task=TASK,
                language=tag, metrics=metrics, counts=counts, prompts=p.name, labels=label_set.id,
                protocol=fixed_k.protocol if fixed_k else self.protocol, extra=extra,
            ))
        return results
