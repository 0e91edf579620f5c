"""A model by name loads its weights only on a cache miss (models/lazy.py, through `babelclip eval`).

A tiny CLIP of the real architecture in a local directory: the first run builds it once and
records its fingerprint; a warm re-run never builds it and gives the same results; changed
weights are noticed (a build, a new fingerprint), and a record that lies is refused."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _tiny_hf import tiny_clip_dir
from PIL import Image

from babelclip.cli import main
from babelclip.data.imagenet import imagenet_wnids
from babelclip.eval.results import load_results
from babelclip.models import lazy, registry


@pytest.fixture
def builds(monkeypatch):
    """Names of the models built in this process (the registry's factory, counted)."""
    built: list[str] = []
    real = registry.create_model

    def counting(name, **kw):
        built.append(name)
        return real(name, **kw)

    monkeypatch.setattr(registry, "create_model", counting)
    return built


def _benchmark(tmp_path: Path) -> list[str]:
    wnids = imagenet_wnids()
    rng = np.random.default_rng(0)
    for c in (0, 1, 2):
        (tmp_path / "val" / wnids[c]).mkdir(parents=True)
        for j in range(2):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "val" / wnids[c] / f"{j}.JPEG")
    labels = {"EN": [[0, 1, 2], ["tench", "goldfish", "great white shark"]],
              "DE": [[0, 1, 2], ["Schleie", "Goldfisch", "Weißer Hai"]]}
    (tmp_path / "labels.json").write_text(json.dumps(labels, ensure_ascii=False))
    return ["-q", "eval", "--benchmark", "babel-imagenet", "--images", str(tmp_path), "--labels",
            str(tmp_path / "labels.json"), "--languages", "en,de", "--prompts", "label,openai-en",
            "--tasks", "zeroshot_classification", "--cache-dir", str(tmp_path / "cache"), "--batch-size", "4",
            "--language-workers", "1", "--overwrite"]


def _run(args: list[str], model: Path, out: Path) -> tuple[list, dict]:
    assert main([*args, "--model", str(model), "--out", str(out)]) == 0
    return load_results(out / "results.json"), json.loads((out / "results.json").read_text())["meta"]


def test_warm_rerun_never_builds_the_model_and_changed_weights_rebuild(tmp_path, builds):
    model = tiny_clip_dir(tmp_path, "clip", seed=0)
    args = _benchmark(tmp_path)
    cold, cold_meta = _run(args, model, tmp_path / "out")
    assert builds == [str(model)]  # cold: built once, for the images and every text
    assert cold_meta["seconds"]["model_load"] > 0

    warm, warm_meta = _run(args, model, tmp_path / "out")
    assert builds == [str(model)]  # warm: every embedding cached, the weights never loaded
    assert warm_meta["seconds"]["model_load"] == 0
    assert [r.metrics for r in warm] == [r.metrics for r in cold]
    assert warm_meta["fingerprint"] == cold_meta["fingerprint"]

    # in two language workers too: nothing to encode, nothing built
    _run([*args[:-3], "--language-workers", "2", "--overwrite"], model, tmp_path / "out")
    assert builds == [str(model)]

    # other weights under the same name: a build and a new fingerprint, never the old embeddings
    other = tiny_clip_dir(tmp_path / "other", "clip", seed=1)
    shutil.copy(other / "model.safetensors", model / "model.safetensors")
    changed, changed_meta = _run(args, model, tmp_path / "out")
    assert builds == [str(model)] * 2
    assert changed_meta["fingerprint"]["weights"] != cold_meta["fingerprint"]["weights"]
    assert changed_meta["images_encoded_now"] == 6
    fresh, _ = _run([*args[:args.index("--cache-dir")], "--cache-dir", "none", *args[args.index("--cache-dir") + 2:]],
                    model, tmp_path / "out_fresh")
    assert [r.metrics for r in changed] == [r.metrics for r in fresh]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_new_language_builds_on_the_miss_and_matches_a_fresh_run(tmp_path, builds, workers):
    model = tiny_clip_dir(tmp_path, "clip", seed=0)
    args = _benchmark(tmp_path)
    langs = args.index("--languages") + 1
    args[langs] = "en"
    _run(args, model, tmp_path / "out")
    args[langs] = "en,de"
    args[args.index("--language-workers") + 1] = workers
    both, meta = _run(args, model, tmp_path / "out")  # images and English cached, German not
    if workers == "1":
        assert builds == [str(model)] * 2 and meta["seconds"]["model_load"] > 0
    else:  # the worker that met the miss built the model; this process never did
        assert builds == [str(model)]
    args[args.index("--cache-dir") + 1] = str(tmp_path / "cache2")
    fresh, _ = _run(args, model, tmp_path / "out2")
    assert [(r.language, r.metrics) for r in both] == [(r.language, r.metrics) for r in fresh]


def test_a_record_whose_fingerprint_is_not_the_models_is_refused_and_dropped(tmp_path, builds):
    model = tiny_clip_dir(tmp_path, "clip", seed=0)
    enc, _ = lazy.lazy_model(str(model), tmp_path)
    assert not isinstance(enc, lazy.LazyEncoder) and builds == [str(model)]
    record = tmp_path / lazy.RECORD_FILE
    entries = json.loads(record.read_text())
    (key, entry), = entries.items()
    entry["fingerprint"]["weights"] = "sha256:not-these-weights"
    record.write_text(json.dumps(entries))
    enc, seconds = lazy.lazy_model(str(model), tmp_path)
    assert isinstance(enc, lazy.LazyEncoder) and seconds == 0 and builds == [str(model)]
    with pytest.raises(RuntimeError, match="record"):
        enc.encode_texts(["a"], "en")
    assert key not in json.loads(record.read_text())


def test_names_whose_weights_are_not_watched_are_built_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "create_model", lambda name, **kw: ("built", name, kw))
    enc, _ = lazy.lazy_model("openclip:ViT-B-32@openai", tmp_path, protocol="paper")
    assert enc == ("built", "openclip:ViT-B-32@openai", {"device": "cpu", "protocol": "paper"})
    assert not (tmp_path / lazy.RECORD_FILE).exists()


def test_device_auto_is_built_at_once_and_keeps_no_record(tmp_path, builds):
    model = tiny_clip_dir(tmp_path, "clip", seed=0)
    for _ in range(2):
        enc, _ = lazy.lazy_model(str(model), tmp_path, device="auto")
        assert not isinstance(enc, lazy.LazyEncoder)
    assert builds == [str(model)] * 2 and not (tmp_path / lazy.RECORD_FILE).exists()
