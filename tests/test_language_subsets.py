"""Choosing K languages that rank models as all languages do; subset:K on the command line."""
import sys
from pathlib import Path

import numpy as np
import pytest
from _paths import BABEL_IMAGENET, needs_reference

from babelclip.eval.language_subsets import (
    choose_language_subset,
    leave_one_model_out,
    load_subsets,
    resolve_subset,
    score_matrix,
)

REPO = Path(__file__).resolve().parents[1]


def _synthetic(seed=0, n_models=8, n_noise=30):
    """Models whose full mean is set by two 'faithful' languages; thirty noise languages scramble it."""
    rng = np.random.default_rng(seed)
    skill = np.linspace(0.2, 0.9, n_models)
    scores = {f"m{i}": {} for i in range(n_models)}
    for i in range(n_models):
        scores[f"m{i}"]["good1"] = skill[i]
        scores[f"m{i}"]["good2"] = skill[i] * 0.9
    for j in range(n_noise):
        perm = rng.permutation(n_models)
        for i in range(n_models):
            scores[f"m{i}"][f"noise{j}"] = 0.3 + 0.001 * perm[i]  # small, shuffled
    return scores


def test_the_faithful_languages_are_chosen():
    scores = _synthetic()
    sub = choose_language_subset(scores, 2)
    _, langs, x = score_matrix(scores)
    full = x.mean(axis=0)
    assert sub.kendall == pytest.approx(1.0) and sub.spearman == pytest.approx(1.0)
    # a noise language alone orders the models worse than the chosen pair does
    noise = x[langs.index("noise0")]
    from scipy import stats

    assert stats.kendalltau(noise, full).statistic < 0.9
    assert {"good1", "good2"} & set(sub.languages)  # without one, no pair of noise languages reaches τ = 1


def test_leave_one_model_out_reports_each_models_rank():
    scores = _synthetic(seed=1)
    loo = leave_one_model_out(scores, 2)
    assert set(loo) == set(scores)
    assert [loo[f"m{i}"]["full"] for i in range(8)] == list(range(8, 0, -1))  # m7 is the best model
    assert all(abs(v["full"] - v["subset"]) <= 1 for v in loo.values())


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="at least 3 models"):
        choose_language_subset({"a": {"x": 1.0}, "b": {"x": 0.5}}, 1)
    with pytest.raises(ValueError, match="k must lie in 1..31"):
        choose_language_subset(_synthetic(), 40)


def test_shipped_subsets_resolve_and_fall_back():
    doc = load_subsets()
    e92 = doc["sets"]["babel-imagenet-92"]
    assert sorted(map(int, e92["subsets"])) == [5, 10, 15, 20]
    five = resolve_subset("subset:5", benchmark="babel-imagenet-92")
    assert five == e92["subsets"]["5"]["languages"] and len(five) == 5
    assert resolve_subset("subset:5", available=e92["universe"]) == five  # picked by the languages it has
    have = [t for t in doc["sets"]["babel-imagenet-298"]["order"] if t != five[0]][:30]
    fallback = resolve_subset("subset:5", available=have)  # a benchmark lacking a chosen language
    assert len(fallback) == 5 and set(fallback) <= set(have)
    with pytest.raises(ValueError, match="K must be one of 5, 10, 15, 20"):
        resolve_subset("subset:7", benchmark="babel-imagenet-92")


def test_subset_selector_is_wired_into_language_resolution():
    from babelclip.eval.run import requested_languages

    universe = load_subsets()["sets"]["babel-imagenet-92"]["universe"]
    assert requested_languages("subset:10", universe) == resolve_subset("subset:10", benchmark="babel-imagenet-92")


@needs_reference
def test_the_shipped_file_is_what_the_script_builds_from_the_published_results():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import build_language_subsets as build
    finally:
        sys.path.pop(0)
    scores = build.published_scores(BABEL_IMAGENET)
    assert len(scores) == 12
    shipped = load_subsets()["sets"]["babel-imagenet-92"]
    keep = set(build.release_languages(BABEL_IMAGENET))
    sub = choose_language_subset({m: {t: v for t, v in s.items() if t in keep} for m, s in scores.items()}, 5)
    assert sub.languages == shipped["subsets"]["5"]["languages"]
    assert round(sub.kendall, 4) == shipped["subsets"]["5"]["kendall"]
