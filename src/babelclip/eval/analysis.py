"""Analysis over languages: resource-group aggregates, the classification-vs-retrieval
correlation, and the published Babel-ImageNet results read into our :class:`Result` schema.

Babel-ImageNet (Geigle et al. 2024, "Babel-ImageNet: Massively Multilingual Evaluation of
Vision-and-Language Representations", ACL) reports per-language zero-shot accuracy beside
retrieval on XTD, xFlickr&CO and XM3600 and finds them strongly correlated across languages; the
same comparison (Pearson and Spearman with p-values) is :func:`classification_vs_retrieval`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..languages import RESOURCE_GROUPS, UnknownLanguageError, get_language
from .metrics import bootstrap_ci
from .results import Result

log = logging.getLogger(__name__)

__all__ = [
    "PRIMARY_METRIC",
    "CrossTaskCorrelation",
    "classification_vs_retrieval",
    "correlation",
    "dataset_family",
    "group_aggregates",
    "group_of",
    "load_published",
    "matching_published",
    "protocol_key",
]

# The metric a chart or an aggregate shows for each task unless told otherwise.
PRIMARY_METRIC = {"zeroshot_classification": "top1", "retrieval": "t2i_r@1", "image_retrieval": "i2i_r@1",
                  "knn_classification": "top1"}
# Group order in tables and charts; "unknown" = a language whose table record has no group.
GROUP_ORDER = (*RESOURCE_GROUPS, "unknown")

# Names other tools give the same datasets (CLIP_benchmark, the Babel-ImageNet release).
_DATASET_ALIASES = {
    "babel_imagenet": "babel-imagenet",
    "crossmodal3600": "xm3600",
    "xtd10": "xtd",
    "xflickr&co": "xflickrco",
}
# Published prompt-set names -> ours (babelclip.data.prompts names its sets the same way).
_PUBLISHED_PROMPTS = {"label": "label", "nllb_dist13b_prompts": "nllb"}
_PUBLISHED_RETRIEVAL = ("xtd", "xflickrco", "xm3600")
# Babel-ImageNet computes retrieval with every caption of an image (its released evaluation code).
PUBLISHED_RETRIEVAL_PROTOCOL = "all-captions"
PUBLISHED_LABELS = "babel-imagenet/raw"
# Classification on every class a language has labels for (babelclip.eval.classification's name).
FULL_CLASS_SET_PROTOCOL = "babel-imagenet"


def group_of(language: str) -> str:
    """The resource group of a language tag from the language table, ``"unknown"`` if none."""
    try:
        return get_language(language).group or "unknown"
    except UnknownLanguageError:
        return "unknown"


def dataset_family(name: str) -> str:
    """One name per dataset whatever its source calls it: ``babel-imagenet-92``, ``-298`` and
    CLIP_benchmark's ``babel_imagenet`` are one benchmark (the 92-language labels are the
    298-language file's rows, identical), ``crossmodal3600`` is ``xm3600``, ``xtd10`` is ``xtd``."""
    n = name.strip().lower()
    n = _DATASET_ALIASES.get(n, n).replace("_", "-")
    return re.sub(r"^babel-imagenet(-\d+)?$", "babel-imagenet", n)


def protocol_key(r: Result) -> tuple[str, str, str, str, str]:
    """What must agree for two results to be comparable: dataset family, task, prompt set,
    protocol (empty counts as ``babel-imagenet``, the full class set, for classification), and
    label cleaning policy (the part of ``labels`` after ``/``; empty counts as ``raw``, the
    labels as released)."""
    policy = r.labels.rpartition("/")[2] if r.labels else "raw"
    protocol = r.protocol or (
        FULL_CLASS_SET_PROTOCOL if r.task == "zeroshot_classification" else ""
    )
    return (dataset_family(r.dataset), r.task, r.prompts, protocol, policy)


#: The columns that identify a setting: a model is its name *and* its fingerprint (babel-lite
#: float32 and int8 share the name ``babel-lite``; their numbers must never be pooled).
SETTING_COLUMNS = ("model", "fingerprint", "dataset", "task", "prompts", "protocol", "labels")


def _setting_key(r: Result) -> tuple[str, ...]:
    return (r.model, r.fingerprint, r.dataset, r.task, r.prompts, r.protocol, r.labels)


def display_names(results: Iterable[Result]) -> dict[tuple[str, str], str]:
    """A display name per model ``(name, fingerprint)``: the name itself when only one
    fingerprint carries it, else ``name [fingerprint]`` so every model reads differently."""
    fps: dict[str, list[str]] = {}
    for r in results:
        if r.fingerprint not in fps.setdefault(r.model, []):
            fps[r.model].append(r.fingerprint)
    return {(name, fp): name if len(fs) == 1 else f"{name} [{fp or 'no fingerprint'}]"
            for name, fs in fps.items() for fp in fs}


# ------------------------------------------------------------------ aggregates


def group_aggregates(
    results: Iterable[Result], metric: str | None = None, *, n_boot: int = 1000, seed: int = 0
):
    """Mean of a metric over the languages of each resource group, with a bootstrap 95% CI.

    One row per setting (model, fingerprint, dataset, task, prompts, protocol, labels) and group, plus a row
    ``group="all"``. The interval resamples *languages* (percentile bootstrap, as in
    :func:`babelclip.eval.metrics.bootstrap_ci`): it says how much the group mean depends on
    which languages happen to be in the group, not the per-image sampling error. ``metric``
    defaults to :data:`PRIMARY_METRIC` of each task; results without it are left out.
    Returns a pandas DataFrame.
    """
    import pandas as pd

    cells: dict[tuple, dict[str, list[float]]] = {}
    for r in results:
        m = metric or PRIMARY_METRIC[r.task]
        if m not in r.metrics or r.metrics[m] is None or np.isnan(r.metrics[m]):
            continue
        by_group = cells.setdefault((*_setting_key(r), m), {})
        by_group.setdefault(group_of(r.language), []).append(float(r.metrics[m]))
    rows = []
    for key, by_group in cells.items():
        everything = [v for vs in by_group.values() for v in vs]
        for g in (*GROUP_ORDER, "all"):
            values = everything if g == "all" else by_group.get(g)
            if not values:
                continue
            lo, hi = bootstrap_ci(np.asarray(values), n_boot=n_boot, seed=seed)
            rows.append(
                dict(zip((*SETTING_COLUMNS, "metric"), key))
                | {
                    "group": g,
                    "n_languages": len(values),
                    "mean": float(np.mean(values)),
                    "ci_low": lo,
                    "ci_high": hi,
                }
            )
    columns = [
        *SETTING_COLUMNS,
        "metric",
        "group",
        "n_languages",
        "mean",
        "ci_low",
        "ci_high",
    ]
    return pd.DataFrame(rows, columns=columns)


# ------------------------------------------------------------------ correlation


def correlation(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Pearson's r and Spearman's ρ of paired values with their two-sided p-values (scipy.stats)."""
    from scipy import stats

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-d and paired, got shapes {x.shape} and {y.shape}")
    if x.size < 3:
        raise ValueError(f"a correlation needs at least 3 pairs, got {x.size}")
    p = stats.pearsonr(x, y)
    s = stats.spearmanr(x, y)
    return {
        "n": x.size,
        "pearson_r": float(p.statistic),
        "pearson_p": float(p.pvalue),
        "spearman_rho": float(s.statistic),
        "spearman_p": float(s.pvalue),
    }


@dataclass
class CrossTaskCorrelation:
    """One model's per-language classification metric against its retrieval metric."""

    model: str
    classification: str  # "dataset / prompts / protocol"
    retrieval: str  # "dataset / protocol"
    classification_metric: str
    retrieval_metric: str
    languages: list[str]
    x: list[float]  # classification metric per language
    y: list[float]  # retrieval metric per language
    stats: dict[str, float] = field(default_factory=dict)  # see correlation()
    fingerprint: str = ""  # the model's fingerprint: both tasks are always the same model


def _describe(r: Result) -> str:
    return " / ".join(p for p in (r.dataset, r.prompts, r.protocol) if p)


def classification_vs_retrieval(
    results: Iterable[Result],
    *,
    classification_metric: str = "top1",
    retrieval_metric: str = "t2i_r@1",
    min_languages: int = 3,
) -> list[CrossTaskCorrelation]:
    """Across languages, how zero-shot accuracy tracks retrieval, per model (Babel-ImageNet §5).

    For every model (name and fingerprint), every classification setting is paired with every
    retrieval setting of the same model on the languages both have; pairs with fewer than ``min_languages`` shared languages are
    skipped (a correlation of two points means nothing).
    """
    settings: dict[tuple, dict[str, Result]] = {}
    for r in results:
        settings.setdefault(_setting_key(r), {})[r.language] = r
    out = []
    cls = {k: v for k, v in settings.items() if k[3] == "zeroshot_classification"}
    ret = {k: v for k, v in settings.items() if k[3] == "retrieval"}
    for ck, c_by_lang in cls.items():
        for rk, r_by_lang in ret.items():
            if rk[:2] != ck[:2]:  # another model (name or fingerprint)
                continue
            langs = [
                lang
                for lang in c_by_lang
                if lang in r_by_lang
                and classification_metric in c_by_lang[lang].metrics
                and retrieval_metric in r_by_lang[lang].metrics
            ]
            if len(langs) < max(3, min_languages):
                continue
            x = [float(c_by_lang[lang].metrics[classification_metric]) for lang in langs]
            y = [float(r_by_lang[lang].metrics[retrieval_metric]) for lang in langs]
            out.append(
                CrossTaskCorrelation(
                    model=ck[0],
                    classification=_describe(next(iter(c_by_lang.values()))),
                    retrieval=_describe(next(iter(r_by_lang.values()))),
                    classification_metric=classification_metric,
                    retrieval_metric=retrieval_metric,
                    languages=langs,
                    x=x,
                    y=y,
                    stats=correlation(x, y),
                    fingerprint=ck[1],
                )
            )
    return out


# ------------------------------------------------------------------ published results


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("meta"), dict)
        or not isinstance(doc.get("results"), list)
    ):
        # ValueError, not TypeError: bad input files are reported as one clear line by the CLI
        expected = "{'meta': {...}, 'results': [...]}"
        raise ValueError(f"{path}: expected a Babel-ImageNet results file {expected}")  # noqa: TRY004
    return doc


def _tag(code: str, path: Path, skipped: set[str]) -> str | None:
    try:
        return get_language(code).tag
    except UnknownLanguageError:
        skipped.add(f"{path.parent.name}/{path.name}:{code}")
        return None


def _published_retrieval(row: dict[str, Any], tag: str, path: Path, **ids: Any) -> Result:
    metrics = {k: float(v) for k, v in row.items() if re.fullmatch(r"(t2i|i2t)_r@\d+", k)}
    return Result(**ids, dataset=path.parent.name, task="retrieval", language=tag, metrics=metrics,
                  protocol=PUBLISHED_RETRIEVAL_PROTOCOL)


def _published_classification(row: dict[str, Any], tag: str, path: Path, **ids: Any) -> Result:
    try:
        n, acc, prompt = int(row["num_classes"]), float(row["accuracy"]), str(row["prompt"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: result rows need lang, prompt, num_classes, accuracy; got {row}") from None
    chance = 1.0 / n
    return Result(**ids, dataset="babel-imagenet", task="zeroshot_classification", language=tag,
                  prompts=_PUBLISHED_PROMPTS.get(prompt, prompt), labels=PUBLISHED_LABELS, counts={"classes": n},
                  protocol=FULL_CLASS_SET_PROTOCOL,
                  metrics={"top1": acc, "chance": chance, "top1_norm": (acc - chance) / (1 - chance)})


def _published_file(path: Path, skipped: set[str]) -> list[Result]:
    """The results of one release file (see :func:`load_published`)."""
    doc = _read(path)
    meta = doc["meta"]
    extra = {"source": meta.get("source", ""), "parameters": meta.get("parameters"), "published": True}
    retrieval = path.parent.name in _PUBLISHED_RETRIEVAL and path.parent.parent.name == "retrieval"
    make = _published_retrieval if retrieval else _published_classification
    out = []
    for row in doc["results"]:
        if not isinstance(row, dict):
            raise ValueError(f"{path}: result rows must be objects; got {row!r:.80}")  # noqa: TRY004 - bad input, one line
        tag = _tag(str(row.get("lang", "")), path, skipped)
        if tag is not None:
            out.append(make(row, tag, path, model=str(meta.get("model", path.stem)),
                            fingerprint=f"published:{path.stem}", extra=dict(extra)))
    return out


def load_published(root: str | os.PathLike) -> list[Result]:
    """The published per-language results of the Babel-ImageNet release, as :class:`Result`s.

    ``root`` is the release's ``results/`` folder (``babel-imagenet/*.json`` and
    ``retrieval/{xtd,xflickrco,xm3600}/*.json``), or one such file. Mapping:

    - classification → dataset ``babel-imagenet``, task ``zeroshot_classification``, prompts
      ``label`` / ``nllb`` (from ``nllb_dist13b_prompts``), protocol ``babel-imagenet`` (every
      class the language has a label for), labels ``babel-imagenet/raw``;
      metrics ``top1`` (= ``accuracy``), ``chance`` = 1/num_classes, ``top1_norm``; counts
      ``classes`` = num_classes.
    - retrieval → dataset ``xtd`` / ``xflickrco`` / ``xm3600``, task ``retrieval``, protocol
      ``all-captions``; the ``t2i_r@k``/``i2t_r@k`` keys are ours already.
    - model = ``meta.model``; fingerprint ``published:<file stem>``; ``extra`` holds ``source``,
      ``parameters`` and ``published: True``. Languages go through ``get_language`` (``FR`` →
      ``fr``, XTD's ``jp`` → ``ja``); unknown codes are skipped with one warning.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(
            f"published results {root} do not exist (expected the release's results/ folder)"
        )
    files = (
        [root]
        if root.is_file()
        else sorted(root.glob("babel-imagenet/*.json"))
        + sorted(p for ds in _PUBLISHED_RETRIEVAL for p in root.glob(f"retrieval/{ds}/*.json"))
    )
    if not files:
        raise ValueError(
            f"{root}: no babel-imagenet/*.json or retrieval/{{xtd,xflickrco,xm3600}}/*.json files"
        )
    out: list[Result] = []
    skipped: set[str] = set()
    for path in files:
        out += _published_file(path, skipped)
    if skipped:
        log.warning(
            "published results: %d language codes not in the language table skipped: %s",
            len(skipped),
            ", ".join(sorted(skipped)[:10]),
        )
    return out


def matching_published(results: Iterable[Result], published: Iterable[Result]) -> list[Result]:
    """The published results of the same protocol (:func:`protocol_key`) and language as any of
    ``results``: what a report may show beside the user's numbers."""
    wanted = {(protocol_key(r), r.language) for r in results}
    return [p for p in published if (protocol_key(p), p.language) in wanted]
