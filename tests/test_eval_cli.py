"""`babelclip eval` end to end on tiny data: images encoded once, warm re-runs encode nothing."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _tiny_encoder import TinyEncoder
from PIL import Image

from babelclip.cli import main
from babelclip.data.imagenet import imagenet_wnids
from babelclip.eval.results import load_results

STAMPS = Path("/usr/share/tuxpaint/stamps")


@pytest.fixture
def tiny(monkeypatch):
    enc = TinyEncoder()
    monkeypatch.setattr("babelclip.models.registry.create_model", lambda name, **kw: enc)
    return enc


def test_babel_imagenet_cli_encodes_each_image_once(tmp_path, tiny, capsys):
    wnids = imagenet_wnids()
    rng = np.random.default_rng(0)
    for c in (0, 1, 2):
        for j in range(2):
            (tmp_path / "val" / wnids[c]).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "val" / wnids[c] / f"{j}.JPEG")
    (tmp_path / "val" / wnids[2] / "bad.JPEG").write_bytes(b"garbage")
    labels = {"EN": [[0, 1, 2], ["tench", "goldfish", "great white shark"]],
              "DE": [[0, 1, 2], ["Schleie", "Goldfisch", "Weißer Hai"]],
              "JA": [[1, 2], ["金魚", "ホホジロザメ"]]}
    (tmp_path / "labels.json").write_text(json.dumps(labels, ensure_ascii=False))
    args = ["-q", "eval", "--benchmark", "babel-imagenet", "--images", str(tmp_path), "--labels", str(tmp_path / "labels.json"),
            "--languages", "all", "--prompts", "label,openai-en,ensemble", "--out", str(tmp_path / "out"),
            "--tasks", "zeroshot_classification",  # leaves out image→image retrieval and k-NN
            "--cache-dir", str(tmp_path / "cache"), "--batch-size", "4", "--language-workers", "1"]
    assert main(args) == 0
    assert "results" in capsys.readouterr().out
    assert tiny.image_forwards == 6  # 6 good images, once for 3 languages x 3 prompt sets; 1 skipped
    res = load_results(tmp_path / "out" / "results.json")
    assert {(r.language, r.prompts) for r in res} == {(lang, p) for lang in ("en", "de", "ja") for p in ("label", "openai-en", "ensemble")}
    ja = next(r for r in res if r.language == "ja")
    assert ja.counts["images"] == 4 and ja.counts["classes"] == 2
    meta = json.loads((tmp_path / "out" / "results.json").read_text())["meta"]
    assert list(meta["images_skipped"]) == [f"{wnids[2]}/bad.JPEG"]
    assert (tmp_path / "out" / "results.csv").read_text().count("\n") == 10
    texts = tiny.text_forwards
    assert main(args) == 0  # warm: nothing reaches the model again
    assert tiny.image_forwards == 6 and tiny.text_forwards == texts
    assert [r.metrics for r in load_results(tmp_path / "out" / "results.json")] == [r.metrics for r in res]
    # the same run with languages in two worker processes and a fresh cache: the same results
    args[args.index("--cache-dir") + 1] = str(tmp_path / "cache2")
    args[-1] = "2"
    assert main(args) == 0
    assert tiny.text_forwards == texts  # the texts went through the workers, not this process
    assert [r.metrics for r in load_results(tmp_path / "out" / "results.json")] == [r.metrics for r in res]


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_language_workers_must_be_positive_or_auto(value, capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--language-workers", value])
    assert "expected a positive number or 'auto'" in capsys.readouterr().err


@pytest.mark.skipif(not STAMPS.is_dir(), reason="Debian tuxpaint-stamps-default not installed")
def test_tuxpaint_cli_on_real_stamps(tmp_path, tiny):
    root = tmp_path / "stamps"
    for p in ["animals/mammals/equines/zebra", "food/fruit/lemon", "food/fruit/orange", "household/dishes/teapot",
              "symbols/money/us/coins/025quarter"]:
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        for ext in (".png", ".txt"):
            shutil.copy(STAMPS / f"{p}{ext}", root / f"{p}{ext}")
    out = tmp_path / "out"
    assert main(["-q", "eval", "--dataset", "tuxpaint", "--images", str(root), "--languages", "all",
                 "--out", str(out), "--cache-dir", str(tmp_path / "cache")]) == 0
    assert tiny.image_forwards == 5
    res = load_results(out / "results.json")
    ret = {r.language: r for r in res if r.task == "retrieval"}
    assert {"en", "de", "ja"} <= set(ret) and ret["de"].counts == {"images": 5, "texts": 5}
    cls = [r for r in res if r.task == "zeroshot_classification"]
    assert [(r.language, r.counts["images"], r.counts["classes"]) for r in cls] == [("en", 4, 4)]
    m = ret["de"].metrics  # recalls carry bootstrap intervals around them
    assert m["t2i_r@1_ci_low"] <= m["t2i_r@1"] <= m["t2i_r@1_ci_high"]
    # the Debian Tamil descriptions are TSCII read as Latin-1: dropped, and said so in the meta
    n_ta = sum("ta.utf8=" in (root / f).read_text(encoding="utf-8") for f in root.rglob("*.txt"))
    meta = json.loads((out / "results.json").read_text())["meta"]
    assert n_ta and meta["texts_dropped_or_repaired"]["ta"] == {"dropped": n_ta, "repaired": 0}
    assert "ta" not in ret
