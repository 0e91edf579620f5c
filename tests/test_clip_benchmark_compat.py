"""CLIP_benchmark result JSON out and in."""

from __future__ import annotations

import json

import pytest

from babelclip.eval.clip_benchmark_compat import (
    from_clip_benchmark,
    read_clip_benchmark,
    to_clip_benchmark,
    write_clip_benchmark,
)
from babelclip.eval.results import Result

# The keys CLIP_benchmark's cli.main_eval dumps, and its `build` concatenates model + " " + pretrained.
CB_KEYS = {"dataset", "model", "pretrained", "task", "metrics", "language"}


def _cls(lang="de", model="openclip:xlm-roberta-base-ViT-B-32@laion5b_s13b_b90k", prompts="label"):
    return Result(
        model=model,
        fingerprint="fp",
        dataset="babel-imagenet-92",
        task="zeroshot_classification",
        language=lang,
        prompts=prompts,
        protocol="babel-imagenet",
        metrics={"top1": 0.4, "top5": 0.7, "mean_per_class_recall": 0.39, "top1_norm": 0.399},
    )


def _ret(lang="ja"):
    return Result(
        model="babel-lite",
        fingerprint="fp",
        dataset="xm3600",
        task="retrieval",
        language=lang,
        protocol="first-caption",
        metrics={"t2i_r@1": 0.3, "t2i_r@5": 0.6, "i2t_r@1": 0.35},
    )


def test_to_clip_benchmark_names():
    doc = to_clip_benchmark(_cls())
    assert set(doc) == CB_KEYS
    assert doc["dataset"] == "babel_imagenet" and doc["task"] == "zeroshot_classification"
    assert doc["model"] == "xlm-roberta-base-ViT-B-32" and doc["pretrained"] == "laion5b_s13b_b90k"
    assert doc["metrics"]["acc1"] == 0.4 and doc["metrics"]["acc5"] == 0.7
    assert doc["metrics"]["mean_per_class_recall"] == 0.39
    assert doc["language"] == "de"
    # Babel-ImageNet languages leave as its codes (CLIP_benchmark upper-cases them to index its file)
    assert to_clip_benchmark(_cls("zh-Hans"))["language"] == "zh"
    r = to_clip_benchmark(_ret())
    assert r["dataset"] == "crossmodal3600" and r["task"] == "zeroshot_retrieval"
    assert r["model"] == "babel-lite" and r["pretrained"] == ""
    assert r["metrics"] == {
        "image_retrieval_recall@1": 0.3,
        "image_retrieval_recall@5": 0.6,
        "text_retrieval_recall@1": 0.35,
    }


def test_round_trip_through_files(tmp_path):
    results = [_cls(), _cls(prompts="nllb"), _cls("fr"), _ret()]
    paths = write_clip_benchmark(results, tmp_path)
    assert len(set(paths)) == 4  # two prompt sets of one cell do not overwrite each other
    for p in paths:
        doc = json.loads(p.read_text())
        assert set(doc) == CB_KEYS and isinstance(doc["pretrained"], str)
    back = read_clip_benchmark(tmp_path)
    by = {(r.language, r.task, r.metrics.get("top1")) for r in back}
    assert ("fr", "zeroshot_classification", 0.4) in by and ("ja", "retrieval", None) in by
    ret = next(r for r in back if r.task == "retrieval")
    assert ret.metrics == _ret().metrics and ret.dataset == "xm3600"
    cls = next(r for r in back if r.language == "fr")
    assert cls.model == _cls().model and cls.dataset == "babel-imagenet"
    assert cls.metrics["top1"] == 0.4 and cls.metrics["top1_norm"] == 0.399


def test_reads_a_clip_benchmark_document():
    doc = {
        "dataset": "xtd10",
        "model": "ViT-B-32",
        "pretrained": "/ckpt/model.pt",
        "task": "zeroshot_retrieval",
        "metrics": {"image_retrieval_recall@5": 0.81, "text_retrieval_recall@5": 0.79},
        "language": "jp",
    }
    r = from_clip_benchmark(doc)
    assert r.language == "ja" and r.dataset == "xtd" and r.task == "retrieval"
    assert r.metrics == {"t2i_r@5": 0.81, "i2t_r@5": 0.79}
    assert r.model == "openclip:ViT-B-32@/ckpt/model.pt"
    with pytest.raises(ValueError, match="missing metrics"):
        from_clip_benchmark({k: v for k, v in doc.items() if k != "metrics"})
    with pytest.raises(ValueError, match="not supported"):
        from_clip_benchmark(doc | {"task": "captioning"})
    with pytest.raises(FileNotFoundError):
        read_clip_benchmark("/nonexistent/cb.json")
