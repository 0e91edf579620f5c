"""Retrieval per language under the two protocols."""
from __future__ import annotations

import numpy as np
import pytest
from _tiny_encoder import TinyEncoder

from babelclip.data.captions import CaptionSet
from babelclip.eval.cache import EmbeddingCache
from babelclip.eval.encode import ImageEmbeddings
from babelclip.eval.retrieval import match_images, retrieval

CAPS = CaptionSet("toy", ["a.jpg", "b.jpg", "c.jpg"], {
    "en": [["red apple on a table", "zzzz qqqq"], ["blue sky over hills", "xxxx wwww"], ["old train station", "kkkk jjjj"]],
    "de": [["roter Apfel"], [], ["alter Bahnhof"]],
})


def _images(enc):
    v = enc.encode_texts([c[0] for c in CAPS.captions["en"]], "en")  # image = its first caption
    return ImageEmbeddings(["dir/a.jpg", "dir/b.jpg", "dir/c.jpg"], v, np.full(3, -1))


def test_protocols_counts_and_missing_captions():
    enc = TinyEncoder()
    imgs = _images(enc)
    with EmbeddingCache(None, enc.fingerprint.key, enc.dim) as cache:
        res = retrieval(enc, imgs, CAPS, cache, languages=["en", "de"])
    by = {(r.language, r.protocol): r for r in res}
    first, allc = by[("en", "first-caption")], by[("en", "all-captions")]
    assert first.counts == {"images": 3, "texts": 3} and allc.counts == {"images": 3, "texts": 6}
    assert first.metrics["t2i_r@1"] == 1.0 and first.metrics["i2t_r@1"] == 1.0
    # the nonsense second captions cannot all find their image: all-captions t2i is lower
    assert allc.metrics["t2i_r@1"] < 1.0
    assert by[("de", "all-captions")].counts == {"images": 2, "texts": 2}  # b.jpg has no German caption
    assert all(r.task == "retrieval" and r.dataset == "" for r in res)


def test_match_images_by_id_or_unique_basename():
    imgs = ImageEmbeddings(["x/a.jpg", "y/a.jpg", "z/b.jpg", "c.jpg"], np.zeros((4, 2), np.float32), np.full(4, -1))
    assert match_images(["a.jpg", "b.jpg", "c.jpg", "x/a.jpg", "nope.jpg"], imgs).tolist() == [-1, 2, 3, 0, -1]


def test_no_images_found_is_a_clear_error():
    enc = TinyEncoder()
    imgs = ImageEmbeddings(["q.jpg"], np.zeros((1, enc.dim), np.float32), np.full(1, -1))
    with EmbeddingCache(None, enc.fingerprint.key, enc.dim) as cache:
        with pytest.raises(ValueError, match="none of the 3 images"):
            retrieval(enc, imgs, CAPS, cache)
        with pytest.raises(ValueError, match="unknown retrieval protocol"):
            retrieval(enc, _images(enc), CAPS, cache, protocols=["best"])


def test_results_carry_bootstrap_cis_through_json_and_csv(tmp_path):
    from babelclip.eval.report import read_table_csv
    from babelclip.eval.results import load_results, save_results, to_table

    enc = TinyEncoder()
    with EmbeddingCache(None, enc.fingerprint.key, enc.dim) as cache:
        res = retrieval(enc, _images(enc), CAPS, cache, languages=["en"], protocols=["all-captions"], n_boot=200, seed=1)
        (none,) = retrieval(enc, _images(enc), CAPS, cache, languages=["en"], protocols=["all-captions"], n_boot=0)
    (r,) = res
    for d in ("t2i", "i2t"):
        for k in (1, 5, 10):
            key = f"{d}_r@{k}"
            assert r.metrics[f"{key}_ci_low"] <= r.metrics[key] <= r.metrics[f"{key}_ci_high"]
            assert f"{key}_ci_low" not in none.metrics
    # 6 texts, half of them nonsense: t2i R@1 is strictly between 0 and 1, so is its interval's span
    assert r.metrics["t2i_r@1_ci_low"] < r.metrics["t2i_r@1"] < r.metrics["t2i_r@1_ci_high"]
    back = load_results(save_results(res, tmp_path / "r.json"))
    assert back[0].metrics == r.metrics
    to_table(res).to_csv(tmp_path / "r.csv", index=False)
    assert read_table_csv(tmp_path / "r.csv")[0].metrics == pytest.approx(r.metrics)
