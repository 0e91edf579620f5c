"""``--model auto``: the best measured model for a language, from results files."""
from __future__ import annotations

import json

import pytest
from _paths import BABEL_IMAGENET, needs_reference

from babelclip.eval.results import Result, save_results
from babelclip.search.auto import choose_model, rank_models, read_results


def _r(model, lang, task, value, dataset="xtd"):
    metric = "t2i_r@1" if task == "retrieval" else "top1"
    return Result(model=model, fingerprint="f", dataset=dataset, task=task, language=lang, metrics={metric: value})


@pytest.fixture
def results_file(tmp_path):
    rows = [_r("m-a", "de", "retrieval", 0.40), _r("m-b", "de", "retrieval", 0.55), _r("m-c", "de", "retrieval", 0.30),
            _r("m-a", "de", "zeroshot_classification", 0.90, "babel-imagenet"),  # retrieval is preferred
            _r("m-a", "sw", "zeroshot_classification", 0.20, "babel-imagenet"),
            _r("m-c", "sw", "zeroshot_classification", 0.35, "babel-imagenet")]
    save_results(rows, tmp_path / "out" / "results.json")
    return tmp_path / "out"


def test_best_loadable_model_with_the_reason(results_file):
    c = choose_model("deu_Latn", [results_file], available=lambda m: True)
    assert c.model == "m-b" and "t2i_r@1" in c.reason and "de" in c.reason and "0.550" in c.reason
    assert [m for m, _ in c.ranking] == ["m-b", "m-a", "m-c"]
    c = choose_model("de", [results_file], available=lambda m: m != "m-b")
    assert c.model == "m-a" and "not loadable here: m-b" in c.reason
    c = choose_model("sw", [results_file / "results.json"], available=lambda m: True)
    assert c.model == "m-c" and "top1" in c.reason  # no retrieval in Swahili: classification
    c = choose_model("de", [results_file], candidates=["m-c"], available=lambda m: True)
    assert c.model == "m-c"


def test_falls_back_to_babel_lite_and_says_why(results_file):
    assert choose_model("de", []).model == "babel-lite"
    c = choose_model("ja", [results_file], available=lambda m: True)
    assert c.model == "babel-lite" and "no measured result in ja" in c.reason
    c = choose_model("de", [results_file], available=lambda m: False)
    assert c.model == "babel-lite" and "can be loaded" in c.reason
    with pytest.raises(KeyError, match="closest known"):
        choose_model("germn", [results_file])


@needs_reference
def test_published_results_are_ranked_under_zoo_names():
    root = BABEL_IMAGENET / "results"
    ranking, setting = rank_models(read_results([root]), "de")
    # independent reading of the release files: the best German t2i R@1 among the retrieval files
    # of the dataset with the most models
    best: dict[str, dict[str, float]] = {}
    for p in sorted((root / "retrieval").glob("*/*.json")):
        doc = json.loads(p.read_text())
        for row in doc["results"]:
            if row.get("lang", "").lower() == "de" and "t2i_r@1" in row:
                best.setdefault(p.parent.name, {})[p.stem] = row["t2i_r@1"]
    dataset = max(best, key=lambda d: (len(best[d]), d))
    assert dataset in setting and len(ranking) == len(best[dataset])
    top_stem = max(best[dataset], key=best[dataset].get)
    from babelclip.models.registry import list_models, model_info

    zoo = [n for n in list_models() if model_info(n).get("published_results") == top_stem]
    assert ranking[0][0] == (zoo[0] if zoo else ranking[0][0]) and ranking[0][1] == pytest.approx(best[dataset][top_stem])
