"""Babel-Emoji through the registry and the generic evaluate(): every task on both halves."""
from __future__ import annotations

import pytest
from _tiny_encoder import fewer_emoji, patch_create_model

from babelclip.data.benchmarks import Inputs, get_benchmark
from babelclip.data.emoji import emoji_half
from babelclip.eval.run import evaluate
from babelclip.train.leakage import mark_emoji_results


@pytest.fixture(scope="module")
def prepared():
    return get_benchmark("babel-emoji").prepare(Inputs())


def test_tasks_cover_both_halves_of_the_languages_with_enough_names(prepared):
    from babelclip.data.benchmarks.babel_emoji import MIN_EMOJI

    names = [t.labels.id if hasattr(t, "labels") else t.queries.name for t in prepared.tasks]
    assert names == ["babel-emoji-all/raw", "babel-emoji-eval/raw", "babel-emoji-keywords-all",
                     "babel-emoji-keywords-eval"]
    langs = prepared.languages()
    assert "de" in langs and "sw" in langs and "ast" not in langs  # Asturian names 12 emoji
    assert all(len(prepared.tasks[0].labels.labels[t]) >= MIN_EMOJI for t in prepared.tasks[0].labels.labels)
    assert prepared.meta["languages_left_out"]["ast"] < MIN_EMOJI
    assert len(prepared.images.items) == prepared.meta["emoji"] and prepared.images.classes == prepared.tasks[0].labels.wnids


def test_evaluate_scores_both_halves_and_marks_what_training_touched(tmp_path, monkeypatch):
    patch_create_model(monkeypatch)
    fewer_emoji(monkeypatch)  # the same code path on 154 emoji: a fast test
    res = evaluate("tiny", dataset="babel-emoji", languages="de,sw", out=tmp_path / "out", cache_dir=tmp_path / "c",
                   language_workers=1, n_boot=0, quiet=True)
    by = {(r.language, r.labels): r for r in res}
    assert len(res) == 8
    assert {r.dataset for r in res if "eval" in r.labels} == {"babel-emoji-eval"}
    assert {r.dataset for r in res if "all" in r.labels} == {"babel-emoji"}
    cls_all, cls_eval = by["de", "babel-emoji-all/raw"], by["de", "babel-emoji-eval/raw"]
    assert cls_eval.counts["classes"] < cls_all.counts["classes"] and cls_eval.counts["images"] == cls_eval.counts["classes"]
    kw = by["de", "babel-emoji-keywords-eval"]
    assert kw.task == "retrieval" and kw.protocol == "keywords" and 0 <= kw.metrics["map"] <= 1
    assert kw.metrics["t2i_chance@1"] > 0 and kw.counts["texts"] > 50 and kw.counts["images"] <= 154 // 2 + 20
    # a model whose German adapter was trained on the training half: only the all-emoji results meet it
    assert mark_emoji_results(res, {"de": "train"}) == 2
    assert {r.labels for r in res if "leakage" in r.extra} == {"babel-emoji-all/raw", "babel-emoji-keywords-all"}


def test_eval_half_holds_only_evaluation_emoji(prepared):
    ev = prepared.tasks[1].labels
    assert ev.wnids and all(emoji_half(e) == "eval" for e in ev.wnids)


def test_images_are_not_an_input(tmp_path):
    with pytest.raises(ValueError, match="--images is not used"):
        get_benchmark("babel-emoji").prepare(Inputs(images=tmp_path))
