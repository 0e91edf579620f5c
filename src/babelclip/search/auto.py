"""``--model auto``: the model with the best measured score in the query's language.

Scores come from results files: ``babelclip eval`` output (``results.json``, or a folder holding
one) and the published Babel-ImageNet results (the release's ``results/`` folder or one of its
files, read by :func:`babelclip.eval.analysis.load_published`; their models are mapped to zoo
names through ``published_results`` in ``models/zoo.json``).

Only results of one setting are compared (same dataset, task, prompt set, protocol): text→image
retrieval R@1 when any setting has it in the language — it is the search task itself — else
zero-shot classification top-1; among settings of that task, the one measuring the most models.
The best model that can be loaded here (weights local or downloadable) is chosen; when none
can, or no result covers the language, ``babel-lite``, the offline default (or, when the choice
is restricted to the models a folder is indexed with, the last of those).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..eval.results import Result, load_results
from ..languages import get_language
from ..models.registry import DEFAULT_MODEL, list_models, model_info

log = logging.getLogger(__name__)

#: The metric compared per task, in order of preference.
METRICS = (("retrieval", "t2i_r@1"), ("zeroshot_classification", "top1"))


@dataclass
class Choice:
    model: str
    reason: str
    ranking: list[tuple[str, float]] = field(default_factory=list)  # (model, score), best first


def read_results(paths: Sequence[str | os.PathLike]) -> list[Result]:
    """Results from eval output files/folders and published-results folders/files."""
    out: list[Result] = []
    for p in map(Path, paths):
        if p.is_dir() and (p / "results.json").is_file():
            out += load_results(p / "results.json")
            continue
        if p.is_file():
            try:
                out += load_results(p)
                continue
            except ValueError:
                pass  # not babelclip's schema: try the published format
        from ..eval.analysis import load_published

        out += [_zoo_named(r) for r in load_published(p)]
    return out


def _zoo_named(r: Result) -> Result:
    """A published result renamed to the zoo name whose ``published_results`` is its file stem."""
    stem = r.fingerprint.partition("published:")[2]
    for name in list_models():
        if model_info(name).get("published_results") == stem:
            r.model = name
            break
    return r


def _loadable(name: str) -> bool:
    from ..models.base import WeightsNotFoundError
    from ..models.registry import create_model

    try:
        create_model(name)
    except (WeightsNotFoundError, ImportError, ValueError, OSError) as e:
        log.info("%s cannot be loaded here: %s", name, e)
        return False
    return True


def rank_models(results: Sequence[Result], lang: str) -> tuple[list[tuple[str, float]], str]:
    """``([(model, score), ...] best first, what was compared)`` for language ``lang``."""
    tag = get_language(lang).tag
    for task, metric in METRICS:
        groups: dict[tuple, dict[str, float]] = {}
        for r in results:
            if r.language == tag and r.task == task and metric in r.metrics:
                scores = groups.setdefault((r.dataset, r.prompts, r.protocol), {})
                scores[r.model] = max(scores.get(r.model, -1.0), float(r.metrics[metric]))
        if groups:
            (dataset, prompts, protocol), scores = max(groups.items(), key=lambda kv: (len(kv[1]), kv[0]))
            setting = f"{metric} on {dataset} {task}" + (f" ({prompts} prompts)" if prompts else "") + (
                f" [{protocol}]" if protocol else "")
            return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])), setting
    return [], ""


def choose_model(lang: str, results: Sequence[str | os.PathLike] = (), *, candidates: Sequence[str] | None = None,
                 available: Callable[[str], bool] | None = None) -> Choice:
    """The best measured model for ``lang`` (see module docstring) with the reason, in words.

    ``candidates`` restricts the choice (e.g. to the models a folder is indexed with);
    ``available`` says whether a model can be loaded (default: try ``create_model``).
    """
    tag = get_language(lang).tag  # an unknown code fails here, naming the closest known ones
    available = available or _loadable
    ranking, setting = rank_models(read_results(results), tag) if results else ([], "")
    if candidates is not None:
        ranking = [(m, s) for m, s in ranking if m in candidates]
    skipped = []
    for model, score in ranking:
        if model == DEFAULT_MODEL or available(model):
            why = f"model auto: {model} for {tag} — best {setting} among {len(ranking)} measured models ({score:.3f})"
            if skipped:
                why += f"; better but not loadable here: {', '.join(skipped)}"
            return Choice(model, why, ranking)
        skipped.append(model)
    if candidates and DEFAULT_MODEL not in candidates:
        fallback, what = candidates[-1], "the model the folder is indexed with"
    else:
        fallback, what = DEFAULT_MODEL, "the offline default"
    if not results:
        why = f"model auto: {fallback} for {tag} — no results files given (--results); {what}"
    elif not ranking:
        why = f"model auto: {fallback} for {tag} — no measured result in {tag} among the results given; {what}"
    else:
        why = (f"model auto: {fallback} for {tag} — none of the measured models ({', '.join(skipped)}) can be "
               f"loaded here; {what}")
    return Choice(fallback, why, ranking)
