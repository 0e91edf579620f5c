"""A few languages that rank models as all of them do (the downsampling idea of MMTEB).

Given per-language scores of several models, :func:`choose_language_subset` picks K languages
whose mean score orders the models as the mean over every language does. The search is greedy
forward selection (add the language that helps most), then swaps (replace a chosen language by
an unchosen one while that helps) until no swap helps. The objective is Kendall's τ between the
subset mean and the full mean over the models, ties broken by Pearson's r (with 12 models many
subsets reach τ = 1; r then prefers the one whose means also move together). Reported figures
are scipy's Spearman ρ and Kendall τ-b; :func:`leave_one_model_out` checks the choice on a model
it was not chosen with: for each model, choose on the others, then compare that model's rank
among all by the subset mean with its rank by the full mean.

The chosen languages ship in ``_data/language_subsets.json`` (codes and statistics only),
written by ``scripts/build_language_subsets.py`` from the published Babel-ImageNet results (12
models). ``--languages subset:K`` runs them (:func:`resolve_subset`): for Babel-ImageNet, the
subset chosen on its 92- or 298-language release; for another benchmark, the first K languages
it has of the greedy order chosen on the 298 (not validated on that benchmark: logged).
"""
from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

log = logging.getLogger(__name__)

SUBSETS_FILE = "_data/language_subsets.json"
_TIE_WEIGHT = 0.005  # × Pearson r: below one step of τ for up to ~20 models (2/(n(n-1)) > 0.01)


@dataclass
class Subset:
    languages: list[str]
    spearman: float
    kendall: float
    pearson: float


def score_matrix(scores: Mapping[str, Mapping[str, float]]) -> tuple[list[str], list[str], np.ndarray]:
    """``(models, languages, X)`` with ``X[l, m]`` the score of model m in language l, over the
    languages every model has (in first-seen order)."""
    models = list(scores)
    if len(models) < 3:
        raise ValueError(f"choosing a language subset needs scores of at least 3 models, got {len(models)}")
    common = [t for t in scores[models[0]] if all(t in scores[m] for m in models)]
    if not common:
        raise ValueError("the models have no language in common")
    return models, common, np.array([[scores[m][t] for m in models] for t in common], dtype=np.float64)


def _objective(means: np.ndarray, full: np.ndarray) -> np.ndarray:
    """Kendall τ-a of each row of ``means`` (candidates × models) with ``full``, + tie-break r."""
    n = full.shape[0]
    sf = np.sign(full[:, None] - full[None, :])
    sm = np.sign(means[:, :, None] - means[:, None, :])
    tau = (sm * sf).sum(axis=(1, 2)) / (n * (n - 1))
    mc = means - means.mean(axis=1, keepdims=True)
    fc = full - full.mean()
    r = (mc @ fc) / np.maximum(np.linalg.norm(mc, axis=1) * np.linalg.norm(fc), 1e-12)
    return tau + _TIE_WEIGHT * r


def _search(x: np.ndarray, k: int, full: np.ndarray) -> tuple[list[int], list[int]]:
    """Chosen rows of ``x`` after greedy forward selection and swaps; and the greedy order."""
    n_lang = x.shape[0]
    chosen: list[int] = []
    total = np.zeros(x.shape[1])
    for _ in range(k):
        rest = np.array([i for i in range(n_lang) if i not in chosen])
        obj = _objective((total + x[rest]) / (len(chosen) + 1), full)
        best = int(rest[int(np.argmax(obj))])
        chosen.append(best)
        total += x[best]
    order = list(chosen)
    current = float(_objective(total[None] / k, full)[0])
    improved = True
    while improved:
        improved = False
        for p in range(k):
            rest = np.array([i for i in range(n_lang) if i not in chosen])
            if not rest.size:
                break
            obj = _objective((total - x[chosen[p]] + x[rest]) / k, full)
            j = int(np.argmax(obj))
            if obj[j] > current + 1e-12:
                total += x[rest[j]] - x[chosen[p]]
                chosen[p] = int(rest[j])
                current = float(obj[j])
                improved = True
    return chosen, order


def _stats(sub_mean: np.ndarray, full: np.ndarray) -> tuple[float, float, float]:
    from scipy import stats

    return (float(stats.spearmanr(sub_mean, full).statistic), float(stats.kendalltau(sub_mean, full).statistic),
            float(stats.pearsonr(sub_mean, full).statistic))


def choose_language_subset(scores: Mapping[str, Mapping[str, float]], k: int) -> Subset:
    """K languages whose mean ranks the models as the mean over all languages (module docstring).

    ``scores[model][language]``: any metric where higher is better; languages missing for some
    model are left out of both the choice and the full mean.
    """
    models, langs, x = score_matrix(scores)
    if not 1 <= k < len(langs):
        raise ValueError(f"k must lie in 1..{len(langs) - 1} (the models share {len(langs)} languages), got {k}")
    full = x.mean(axis=0)
    chosen, _ = _search(x, k, full)
    return Subset([langs[i] for i in chosen], *_stats(x[chosen].mean(axis=0), full))


def greedy_order(scores: Mapping[str, Mapping[str, float]], k: int) -> list[str]:
    """The first ``k`` languages of greedy forward selection, in the order chosen."""
    _, langs, x = score_matrix(scores)
    return [langs[i] for i in _search(x, k, x.mean(axis=0))[1]]


def _ranks(v: np.ndarray) -> np.ndarray:
    """1 = best (highest); ties share the better rank."""
    return np.array([1 + int((v > a).sum()) for a in v])


def leave_one_model_out(scores: Mapping[str, Mapping[str, float]], k: int) -> dict[str, dict[str, int]]:
    """Per model: its rank among all models by the full mean (``full``) and by the mean of K
    languages chosen without it (``subset``)."""
    models, langs, x = score_matrix(scores)
    full_all = x.mean(axis=0)
    out = {}
    for m, name in enumerate(models):
        others = [i for i in range(len(models)) if i != m]
        chosen, _ = _search(x[:, others], k, x[:, others].mean(axis=0))
        out[name] = {"full": int(_ranks(full_all)[m]), "subset": int(_ranks(x[chosen].mean(axis=0))[m])}
    return out


def random_baseline(scores: Mapping[str, Mapping[str, float]], k: int, draws: int = 1000, seed: int = 0) -> dict[str, float]:
    """What K languages drawn at random give: mean Kendall τ-b and Spearman ρ against the full
    mean, and the mean fraction of models whose rank they get exactly right."""
    from scipy import stats

    _, _, x = score_matrix(scores)
    full = x.mean(axis=0)
    rng = np.random.default_rng(seed)
    taus, rhos, exact = [], [], []
    for _ in range(draws):
        sub = x[rng.choice(x.shape[0], k, replace=False)].mean(axis=0)
        taus.append(stats.kendalltau(sub, full).statistic)
        rhos.append(stats.spearmanr(sub, full).statistic)
        exact.append(float((_ranks(sub) == _ranks(full)).mean()))
    return {"kendall": float(np.mean(taus)), "spearman": float(np.mean(rhos)), "exact_rank_fraction": float(np.mean(exact))}


@functools.lru_cache(maxsize=1)
def load_subsets() -> dict:
    """The shipped file (see the module docstring)."""
    return json.loads(resources.files("babelclip").joinpath(SUBSETS_FILE).read_text(encoding="utf-8"))


def _entry(benchmark: str | None, available: Sequence[str] | None) -> tuple[str, dict]:
    sets = load_subsets()["sets"]
    if benchmark in sets:
        return benchmark, sets[benchmark]
    if available is not None:  # the release whose languages this benchmark has all of, the smallest first
        have = set(available)
        for name, e in sorted(sets.items(), key=lambda kv: len(kv[1]["universe"])):
            if set(e["universe"]) <= have:
                return name, e
    name = max(sets, key=lambda n: len(sets[n]["universe"]))
    return name, sets[name]


def resolve_subset(spec: str, benchmark: str | None = None, available: Sequence[str] | None = None) -> list[str]:
    """The BCP-47 tags of ``subset:K`` for ``benchmark`` (a name of the shipped file, e.g.
    ``babel-imagenet-92``), else for a benchmark with the languages ``available``."""
    name, _, arg = spec.partition(":")
    if name != "subset":
        raise ValueError(f"{spec!r} is not a subset selector; expected subset:K")
    key, entry = _entry(benchmark, available)
    sizes = sorted(int(n) for n in entry["subsets"])
    if not arg.isdigit() or int(arg) not in sizes:
        raise ValueError(f"--languages {spec!r}: K must be one of {', '.join(map(str, sizes))} "
                         f"(the subsets shipped for {key}; scripts/build_language_subsets.py makes others)")
    chosen = entry["subsets"][arg]["languages"]
    if available is None or set(chosen) <= set(available):
        return list(chosen)
    have = set(available)
    picked = [t for t in entry["order"] if t in have][: int(arg)]
    log.warning("subset:%s of %s is not among this benchmark's languages (%s missing): using the first %d of "
                "its greedy order that it has, %s (chosen on Babel-ImageNet, not validated here)",
                arg, key, ", ".join(t for t in chosen if t not in have), len(picked), ", ".join(picked))
    if len(picked) < int(arg):
        raise ValueError(f"--languages {spec!r}: this benchmark has only {len(picked)} of the {len(entry['order'])} "
                         f"languages ranked for {key}")
    return picked


def subset_selector(arg: str, available: list[str]) -> list[str]:
    """``--languages subset:K`` for :data:`babelclip.eval.run.LANGUAGE_SELECTORS`."""
    return resolve_subset(f"subset:{arg}", available=available)
