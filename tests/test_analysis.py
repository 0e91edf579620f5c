"""Resource-group aggregates, correlations and the published Babel-ImageNet results."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from _paths import REFERENCE

from babelclip.eval.analysis import (
    classification_vs_retrieval,
    correlation,
    dataset_family,
    group_aggregates,
    load_published,
    matching_published,
    protocol_key,
)
from babelclip.eval.results import Result
from babelclip.languages import get_language

REF = REFERENCE
PUBLISHED = REF / "babel-imagenet" / "results"
needs_published = pytest.mark.skipif(
    not PUBLISHED.exists(), reason="reference results not on this machine"
)


def _cls(lang: str, top1: float, model: str = "m", **kw) -> Result:
    return Result(
        model=model,
        fingerprint="fp",
        dataset=kw.pop("dataset", "babel-imagenet-92"),
        task="zeroshot_classification",
        language=lang,
        metrics={"top1": top1},
        prompts=kw.pop("prompts", "label"),
        labels=kw.pop("labels", "babel-imagenet-92/raw"),
        protocol=kw.pop("protocol", "babel-imagenet"),
        **kw,
    )


def _ret(lang: str, r1: float, model: str = "m", dataset: str = "xm3600") -> Result:
    return Result(
        model=model,
        fingerprint="fp",
        dataset=dataset,
        task="retrieval",
        language=lang,
        metrics={"t2i_r@1": r1, "i2t_r@1": r1 / 2},
        protocol="all-captions",
    )


# ------------------------------------------------------------------ groups


def test_group_aggregates_by_resource_group():
    by_group = {}
    for tag in ("en", "de", "fr", "ja", "af", "am", "ab", "ady"):
        by_group.setdefault(get_language(tag).group, []).append(tag)
    assert len(by_group) >= 3  # the table puts these into several groups
    values = {tag: 0.1 * (i + 1) for i, tag in enumerate(t for ts in by_group.values() for t in ts)}
    results = [_cls(tag, v) for tag, v in values.items()] + [_cls("en", 0.99, model="other")]
    df = group_aggregates(results, n_boot=200, seed=1)
    mine = df[df.model == "m"].set_index("group")
    for group, tags in by_group.items():
        assert mine.loc[group, "n_languages"] == len(tags)
        assert mine.loc[group, "mean"] == pytest.approx(np.mean([values[t] for t in tags]))
        assert mine.loc[group, "ci_low"] <= mine.loc[group, "mean"] <= mine.loc[group, "ci_high"]
    assert mine.loc["all", "n_languages"] == len(values)
    assert mine.loc["all", "mean"] == pytest.approx(np.mean(list(values.values())))
    assert (mine["metric"] == "top1").all()
    # another model's results are aggregated apart
    assert df[df.model == "other"].set_index("group").loc["all", "mean"] == pytest.approx(0.99)
    # deterministic given the seed
    assert group_aggregates(results, n_boot=200, seed=1).equals(df)


def test_group_aggregates_other_metric_and_missing_metric():
    results = [_ret("en", 0.4), _ret("de", 0.6), _cls("en", 0.3)]
    df = group_aggregates(results, metric="i2t_r@1", n_boot=50)
    assert set(df.task) == {"retrieval"}  # the classification result has no i2t_r@1
    assert df.set_index("group").loc["all", "mean"] == pytest.approx(0.25)


# ------------------------------------------------------------------ correlation


def test_correlation_by_hand_and_equal_to_scipy():
    # x = 1,2,3; y = 1,3,2: deviations (-1,0,1), (-1,1,0): r = 1/sqrt(2*2) = 0.5; ranks equal values
    c = correlation([1, 2, 3], [1, 3, 2])
    assert (
        c["pearson_r"] == pytest.approx(0.5)
        and c["spearman_rho"] == pytest.approx(0.5)
        and c["n"] == 3
    )
    # monotone but not linear: Spearman 1, Pearson below 1
    x = np.arange(1.0, 9.0)
    c = correlation(x, x**4)
    assert c["spearman_rho"] == pytest.approx(1.0) and c["pearson_r"] < 0.99
    from scipy import stats

    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    y = x + rng.normal(size=30)
    c = correlation(x, y)
    assert c["pearson_r"] == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    assert c["pearson_p"] == pytest.approx(stats.pearsonr(x, y)[1], rel=1e-9)
    assert c["spearman_rho"] == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    assert c["spearman_p"] == pytest.approx(stats.spearmanr(x, y)[1], rel=1e-9)
    with pytest.raises(ValueError, match="at least 3"):
        correlation([1, 2], [1, 2])
    with pytest.raises(ValueError, match="paired"):
        correlation([1, 2, 3], [1, 2])


def test_classification_vs_retrieval_pairs_by_language():
    cls = {"en": 0.5, "de": 0.4, "fr": 0.3, "ja": 0.2, "sw": 0.1}
    ret = {"ja": 0.25, "fr": 0.35, "en": 0.55, "de": 0.45}  # other order, no sw
    results = [_cls(k, v) for k, v in cls.items()] + [_ret(k, v) for k, v in ret.items()]
    results += [
        _ret("en", 0.9, model="other"),
        _ret("de", 0.1, model="other"),
        _ret("fr", 0.5, model="other"),
    ]
    results += [
        _ret("en", 0.1, dataset="xtd"),
        _ret("de", 0.2, dataset="xtd"),
    ]  # 2 shared languages: skipped
    (c,) = classification_vs_retrieval(results)
    assert c.model == "m" and c.retrieval == "xm3600 / all-captions"
    assert sorted(c.languages) == ["de", "en", "fr", "ja"]
    assert all(y == pytest.approx(x + 0.05) for x, y in zip(c.x, c.y))  # paired by language
    assert c.stats["pearson_r"] == pytest.approx(1.0) and c.stats["spearman_rho"] == pytest.approx(
        1.0
    )
    (c2,) = classification_vs_retrieval(results, retrieval_metric="i2t_r@1")
    assert c2.y == pytest.approx([x / 2 for x in c.y])


# ------------------------------------------------------------------ published results


@needs_published
def test_published_results_load_into_our_schema():
    pub = load_published(PUBLISHED)
    fr = [r for r in pub if r.fingerprint == "published:nllb-base" and r.language == "fr"]
    label = next(r for r in fr if r.task == "zeroshot_classification" and r.prompts == "label")
    assert (
        label.metrics["top1"] == 0.184180225281602
    )  # as in babel-imagenet/nllb-base.json, lang FR
    assert label.model == "nllb-clip-base@v1" and label.counts == {"classes": 799}
    assert label.dataset == "babel-imagenet" and label.protocol == "babel-imagenet"
    assert label.metrics["chance"] == pytest.approx(1 / 799)
    assert label.metrics["top1_norm"] == pytest.approx(
        (0.184180225281602 - 1 / 799) / (1 - 1 / 799)
    )
    nllb = next(r for r in fr if r.task == "zeroshot_classification" and r.prompts == "nllb")
    assert nllb.metrics["top1"] == pytest.approx(0.20005006257822278)
    xtd = {
        r.language: r for r in pub if r.fingerprint == "published:nllb-base" and r.dataset == "xtd"
    }
    assert "ja" in xtd and "jp" not in xtd  # XTD's 'jp' is Japanese
    assert xtd["de"].metrics["t2i_r@1"] == pytest.approx(0.43300002813339233)
    assert xtd["de"].metrics["i2t_r@10"] == pytest.approx(0.8350000381469727)
    assert xtd["de"].protocol == "all-captions" and xtd["de"].task == "retrieval"
    assert {r.dataset for r in pub} == {"babel-imagenet", "xtd", "xflickrco", "xm3600"}
    assert len({r.fingerprint for r in pub}) == 12


def test_published_unknown_code_skipped_and_bad_file(tmp_path, caplog):
    d = tmp_path / "babel-imagenet"
    d.mkdir()
    (d / "toy.json").write_text(
        json.dumps(
            {
                "meta": {"model": "toy", "source": "x", "prompts": "label", "parameters": 1},
                "results": [
                    {"lang": "DE", "prompt": "label", "num_classes": 4, "accuracy": 0.5},
                    {"lang": "QQQ_XX", "prompt": "label", "num_classes": 4, "accuracy": 0.5},
                ],
            }
        )
    )
    with caplog.at_level(logging.WARNING):
        (r,) = load_published(tmp_path)
    assert r.language == "de" and r.metrics["top1_norm"] == pytest.approx(1 / 3)
    assert "QQQ_XX" in caplog.text
    (d / "toy.json").write_text(json.dumps({"results": []}))
    with pytest.raises(ValueError, match="Babel-ImageNet results file"):
        load_published(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_published(tmp_path / "nope")


def test_protocol_matching():
    assert (
        dataset_family("babel-imagenet-92") == dataset_family("babel_imagenet") == "babel-imagenet"
    )
    assert dataset_family("crossmodal3600") == "xm3600" and dataset_family("xtd10") == "xtd"
    mine = _cls("fr", 0.2)
    pub_same = _cls("fr", 0.18, model="p", dataset="babel-imagenet", labels="babel-imagenet/raw")
    pub_prompts = _cls("fr", 0.2, model="p", dataset="babel-imagenet", prompts="nllb")
    pub_lang = _cls("de", 0.2, model="p", dataset="babel-imagenet")
    cleaned = _cls("fr", 0.2, labels="babel-imagenet-92/dedupe")
    assert protocol_key(mine) == protocol_key(pub_same) != protocol_key(cleaned)
    assert matching_published([mine], [pub_same, pub_prompts, pub_lang]) == [pub_same]
    # an empty protocol of a classification result is the full class set
    assert protocol_key(_cls("fr", 0.2, protocol="")) == protocol_key(mine)
    assert protocol_key(_cls("fr", 0.2, protocol="fixed-k=100")) != protocol_key(mine)
