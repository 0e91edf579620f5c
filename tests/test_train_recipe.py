"""`babelclip train`'s evaluation: every figure on the untouched model and on the trained one.

A tiny random text side (``_tiny_text``) with a toy image side and babel-lite's prototype
attributes, a 6-class label file and three Tux Paint-style stamps in a temporary folder: the
whole recipe runs in seconds, offline.
"""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from _tiny_text import PAIRS_SW, TinyTextEncoder
from PIL import Image

from babelclip.data.labels import imagenet_clip_labelset, load_babel_imagenet
from babelclip.train.distill import ADAPTER_META, DistillConfig
from babelclip.train.evaluate import (
    before_after,
    head_prototypes,
    label_alignment,
    text_to_image_recall,
)
from babelclip.train.recipe import train_language

# classes whose CLIP names, and German labels whose words, the tiny model's 8000-id vocabulary
# tells apart (larger XLM-R ids become <unk>)
CLASSES = [97, 105, 277, 337, 345, 360]
EN = ["duck", "koala", "red fox", "beaver", "ox", "otter"]  # = the CLIP names of CLASSES
DE = ["Ente", "Koala", "Fuchs", "Biber", "Kuh", "Otter"]
# sentences around the label words (not copies of a label entry: the leakage guard keeps them)
PAIRS = [(f"a {e}", f"eine {d}") for e, d in zip(EN, DE)] + [
    (f"the {e} in the water", f"der {d} im Wasser") for e, d in zip(EN, DE)] + PAIRS_SW
COLOURS = {"cat": (200, 30, 30), "dog": (30, 200, 30), "fish": (30, 30, 200)}
STAMP_DE = {"cat": "Katze", "dog": "Hund", "fish": "Fisch"}


class TinyBiEncoder(TinyTextEncoder):
    """The tiny text side with a toy image side (mean colour → fixed projection) that declares
    class prototypes as babel-lite does, in representation ``"sqrt"``: the prototypes are the
    identity, so a text's best prototype is its head's argmax."""

    def __init__(self, seed: int = 0):
        super().__init__(seed=seed, out_dim=1000)  # one output per ImageNet class, as babel-lite's head
        self.proj = torch.randn(3, 1000, generator=torch.Generator().manual_seed(7))

    def class_prototypes(self) -> np.ndarray:
        from babelclip.models.babel_lite.head import class_prototypes

        return class_prototypes(1000, "sqrt")

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return torch.from_numpy(np.asarray(image.convert("RGB"), np.float32).mean((0, 1)) / 255)

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels @ self.proj


@pytest.fixture
def data(tmp_path):
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"EN": [CLASSES, EN], "DE": [CLASSES, DE]}, ensure_ascii=False),
                      encoding="utf-8")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{e}\t{t}\n" for e, t in PAIRS) + "beaver\tBiber\n", encoding="utf-8")
    stamps = tmp_path / "stamps" / "animals"
    stamps.mkdir(parents=True)
    for name, rgb in COLOURS.items():
        Image.new("RGB", (16, 16), rgb).save(stamps / f"{name}.png")
        (stamps / f"{name}.txt").write_text(f"{name}\nde.utf8={STAMP_DE[name]}\n", encoding="utf-8")
    return SimpleNamespace(labels=str(labels), pairs=str(pairs), stamps=str(tmp_path / "stamps"),
                           cache=str(tmp_path / "cache"), out=tmp_path / "out")


def _cfg(**kw) -> DistillConfig:
    base = {"steps": 20, "batch_size": 8, "lr": 1e-2, "warmup_steps": 1, "checkpoint_every": 100, "progress": False,
            "method": "full"}
    return DistillConfig(**{**base, **kw})


def _tux_queries(enc) -> tuple[np.ndarray, list[str], list[int]]:
    names = sorted(COLOURS)  # the stamp ids sort as animals/cat, animals/dog, animals/fish
    images = enc.encode_images([Image.new("RGB", (16, 16), COLOURS[n]) for n in names])
    return images, [STAMP_DE[n] for n in names], list(range(len(names)))


def test_before_is_the_untouched_model_and_after_the_trained_one(data, monkeypatch):
    from babelclip.data import tuxpaint

    reads = []
    real_find = tuxpaint.find_stamps
    monkeypatch.setattr(tuxpaint, "find_stamps", lambda root: reads.append(root) or real_find(root))
    trained = TinyBiEncoder()
    fresh_texts = TinyBiEncoder().encode_texts(DE, "de")
    rep = train_language("tiny", "de", [data.pairs], data.out, _cfg(), labels_path=data.labels, encoder=trained,
                         tuxpaint_root=data.stamps, cache_dir=data.cache)
    assert len(reads) == 1  # the stamps are read once, for the leakage guard and the retrieval figures
    assert rep.leakage.dropped.get("babel-imagenet-92") == 1  # "beaver\tBiber" copies a label entry
    assert rep.result.n_pairs == len(PAIRS)
    assert not np.allclose(trained.encode_texts(DE, "de"), fresh_texts)  # training moved the weights
    ev = rep.result.evaluation
    assert set(ev) == {"babel_label_alignment", "babel_label_alignment_prototypes", "tuxpaint_text_to_image"}
    assert "English CLIP" in ev["babel_label_alignment"]["what"] and "prototypes" in ev["babel_label_alignment_prototypes"]["what"]

    labelset, clip = load_babel_imagenet(data.labels, unknown="skip", allow_download=False), imagenet_clip_labelset()
    fresh = TinyBiEncoder()
    # before == the public evaluation of a freshly built (untrained) model, English side included
    want = label_alignment(fresh, labelset, "de", reference=clip)
    got = ev["babel_label_alignment"]["before"]
    for key in ("top1", "top1_ci_low", "top1_ci_high", "top5"):
        assert got[key] == pytest.approx(want[key]), key
    assert got["n"] == 6
    # after: the trained German side against English encoded by the untouched model (adapters never move English)
    assert [clip.labels["en"][i] for i in CLASSES] == EN
    english = np.zeros((1000, 1000), np.float32)
    english[CLASSES] = fresh.encode_texts(EN, "en")
    after = label_alignment(trained, labelset, "de", reference=clip, class_vectors=english)
    assert ev["babel_label_alignment"]["after"]["top1"] == pytest.approx(after["top1"])
    assert ev["babel_label_alignment"]["after"]["top1"] > got["top1"]  # this run teaches the label words
    ch = ev["babel_label_alignment"]["change"]
    assert ch["top1"] == pytest.approx(after["top1"] - want["top1"]) and ch["top1_ci_low"] <= ch["top1"] <= ch["top1_ci_high"]

    # prototypes: the head's argmax among the language's classes, computed here from the head itself
    def head_hits(enc) -> float:
        with torch.no_grad():
            logits = enc.head(enc.embed(DE))[:, CLASSES]  # prototypes = identity rows: class c's score is logit c
        return float((logits.argmax(1) == torch.arange(6)).float().mean())

    assert ev["babel_label_alignment_prototypes"]["before"]["top1"] == pytest.approx(head_hits(fresh))
    assert ev["babel_label_alignment_prototypes"]["after"]["top1"] == pytest.approx(head_hits(trained))

    # Tux Paint: German descriptions retrieving their stamp among all three, before and after
    images, texts, owners = _tux_queries(fresh)
    tux = ev["tuxpaint_text_to_image"]
    assert tux["before"]["r@1"] == pytest.approx(text_to_image_recall(fresh, images, texts, owners, "de")["r@1"])
    assert tux["after"]["r@1"] == pytest.approx(text_to_image_recall(trained, images, texts, owners, "de")["r@1"])
    assert tux["before"]["r@5"] == tux["after"]["r@5"] == 1.0 and tux["before"]["n"] == 3  # 3 images: all within 5

    meta = json.loads((data.out / ADAPTER_META).read_text(encoding="utf-8"))
    assert meta["evaluation"]["babel_label_alignment"]["before"]["top1"] == pytest.approx(got["top1"])
    assert meta["leakage"]["n_dropped"] == 1


def test_stamp_images_are_encoded_once_across_runs(data, monkeypatch):
    import babelclip.eval.encode as enc_mod

    calls = []
    real = enc_mod._encode_batch
    monkeypatch.setattr(enc_mod, "_encode_batch", lambda e, d, bs: calls.append(len(d)) or real(e, d, bs))
    for run in ("a", "b"):
        train_language("tiny", "de", [data.pairs], data.out / run, _cfg(steps=2), labels_path=data.labels,
                       encoder=TinyBiEncoder(), tuxpaint_root=data.stamps, cache_dir=data.cache)
    assert sum(calls) == 3  # the first run encodes the three stamps; the second reads them back


def test_text_only_model_skips_retrieval_and_prototypes(data):
    rep = train_language("tiny", "de", [data.pairs], data.out, _cfg(steps=2), labels_path=data.labels,
                         encoder=TinyTextEncoder(), tuxpaint_root=data.stamps, cache_dir=data.cache)
    assert set(rep.result.evaluation) == {"babel_label_alignment"}
    assert head_prototypes(TinyTextEncoder()) is None


def test_paired_change_interval():
    """Identical hits before and after: the change is 0 with a zero-width interval (a paired
    bootstrap), while each side's own interval is wide."""
    hits = np.array([0, 1] * 10, np.float64)
    out = before_after({"top1": hits}, {"top1": hits.copy()})
    assert out["change"] == {"top1": 0.0, "top1_ci_low": 0.0, "top1_ci_high": 0.0}
    assert out["before"]["top1_ci_high"] - out["before"]["top1_ci_low"] > 0.2
    gain = before_after({"r@1": np.zeros(8)}, {"r@1": np.ones(8)})["change"]
    assert gain["r@1"] == gain["r@1_ci_low"] == gain["r@1_ci_high"] == 1.0
    with pytest.raises(ValueError, match="the same queries"):
        before_after({"r@1": np.zeros(3)}, {"r@1": np.zeros(4)})
    with pytest.raises(ValueError, match="must match"):
        before_after({"r@1": np.zeros(3)}, {"r@5": np.zeros(3)})


def test_head_prototypes_are_babel_lites_image_side():
    from babelclip.models.babel_lite.head import class_prototypes

    # "inner": a one-hot image distribution is [one-hot, text slack 0, image slack sqrt(1 - 1) = 0]
    np.testing.assert_allclose(class_prototypes(3, "inner"), np.hstack([np.eye(3), np.zeros((3, 2))]))
    np.testing.assert_allclose(head_prototypes(TinyBiEncoder()), np.eye(1000))  # declared, not probed
    fake = SimpleNamespace(head=SimpleNamespace(cfg=SimpleNamespace(num_classes=3)), representation="inner")
    assert head_prototypes(fake) is None  # attributes that look like babel-lite's declare nothing


def test_cli_prints_before_after_table(data, monkeypatch, capsys):
    from babelclip.cli import main

    monkeypatch.setattr("babelclip.models.registry.create_model", lambda name, **kw: TinyBiEncoder())
    assert main(["-q", "train", "--model", "tiny", "--lang", "de", "--parallel", data.pairs, "--out", str(data.out),
                 "--method", "full", "--steps", "3", "--batch-size", "4", "--labels", data.labels,
                 "--tuxpaint", data.stamps, "--cache-dir", data.cache]) == 0
    out = capsys.readouterr().out
    meta = json.loads((data.out / ADAPTER_META).read_text(encoding="utf-8"))["evaluation"]
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split() == ["before", "after", "change"])
    b, a, c = (meta["babel_label_alignment"][k]["top1"] for k in ("before", "after", "change"))
    row = next(line for line in lines[header:] if line.strip().startswith("top1"))
    assert f"{100 * b:.1f} [" in row and f"{100 * a:.1f} [" in row and f"{100 * c:+.1f} [" in row
    assert "English CLIP class names" in out and "class prototypes" in out and "Tux Paint" in out
    assert sum(line.strip().startswith("r@1") for line in lines) == 1


class _Captured(Exception):
    """Raised by a stand-in train_language to hand its arguments back to the test."""


def test_saved_babel_lite_directory_gets_babel_lites_training_defaults(tmp_path, monkeypatch):
    """Defaults come from the model's family, not its name: a babel-lite saved under another name
    distils the head's logits with KL at LoRA's KL rate, as `--model babel-lite` does."""
    import shutil

    from babelclip.cli import main
    from babelclip.models.babel_lite.model import CONFIG_NAME, PACKAGE_DIR, read_config

    saved = tmp_path / "my-babel-lite"
    saved.mkdir()
    for name in (CONFIG_NAME, read_config(PACKAGE_DIR)["head"]["file"]):
        shutil.copy(PACKAGE_DIR / name, saved / name)

    def capture(model, lang, parallel, out_dir, config, **kw):
        raise _Captured(model, config, kw)

    monkeypatch.setattr("babelclip.train.recipe.train_language", capture)
    with pytest.raises(_Captured) as got:
        main(["-q", "train", "--model", str(saved), "--lang", "sw", "--parallel", "cldr", "--out", str(tmp_path / "o")])
    model, config, kw = got.value.args
    assert model == str(saved) and kw["encoder"].fingerprint.family == "babel-lite"
    assert (kw["level"], config.loss, config.lr) == ("logits", "kl", 3e-3)
    # what the user names wins; the rest still follows the family
    with pytest.raises(_Captured) as got:
        main(["-q", "train", "--model", str(saved), "--lang", "sw", "--parallel", "cldr", "--out", str(tmp_path / "o"),
              "--loss", "mse", "--method", "full"])
    _, config, kw = got.value.args
    assert (kw["level"], config.loss, config.lr) == ("logits", "mse", 2e-5)


def test_other_families_default_to_their_output_with_mse(tmp_path, monkeypatch):
    from babelclip.cli import main

    monkeypatch.setattr("babelclip.models.registry.create_model", lambda name, **kw: TinyBiEncoder())

    def capture(model, lang, parallel, out_dir, config, **kw):
        raise _Captured(config, kw)

    monkeypatch.setattr("babelclip.train.recipe.train_language", capture)
    with pytest.raises(_Captured) as got:
        main(["-q", "train", "--model", "tiny", "--lang", "de", "--parallel", "cldr", "--out", str(tmp_path / "o")])
    config, kw = got.value.args
    assert (kw["level"], config.loss, config.lr) == ("output", "mse", 1e-3)


def test_model_options_reach_the_family_that_train_builds(tmp_path, monkeypatch, capsys):
    """`babelclip train --model-option K=V` builds the base as `babelclip eval --model-option` does,
    so the adapters' recorded base matches the model eval rebuilds with the same options."""
    from babelclip.cli import main

    built = []
    monkeypatch.setattr("babelclip.models.registry.create_model", lambda name, **kw: built.append(kw) or TinyBiEncoder())

    def capture(model, lang, parallel, out_dir, config, **kw):
        raise _Captured(kw)

    monkeypatch.setattr("babelclip.train.recipe.train_language", capture)
    args = ["-q", "train", "--model", "tiny", "--lang", "de", "--parallel", "cldr", "--out", str(tmp_path / "o")]
    with pytest.raises(_Captured):
        main([*args, "--model-option", "nllb_mapping=english", "--model-option", "trim=false"])
    assert built == [{"nllb_mapping": "english", "trim": False}]
    assert main([*args, "--model-option", "trim=true", "--model-option", "trim=false"]) == 1
    assert "--model-option trim given twice" in capsys.readouterr().err
    assert len(built) == 1  # refused before any model is built


def test_under_torchrun_only_rank_0_reports(tmp_path, monkeypatch, capsys):
    import logging
    from types import SimpleNamespace

    from babelclip.cli import main

    monkeypatch.setattr("babelclip.models.registry.create_model", lambda name, **kw: TinyBiEncoder())
    result = SimpleNamespace(steps_done=2, losses=[1.0, 0.5], trainable_params=3, total_params=9, evaluation=None,
                             out_dir=tmp_path / "o")
    leakage = SimpleNamespace(unit="pairs", n_dropped=0, summary=lambda: "nothing dropped")
    monkeypatch.setattr("babelclip.train.recipe.train_language",
                        lambda *a, **kw: SimpleNamespace(result=result, leakage=leakage, n_pairs_read=4))
    logger = logging.getLogger("babelclip")
    level = logger.level
    args = ["train", "--model", "tiny", "--lang", "de", "--parallel", "cldr", "--out", str(tmp_path / "o")]
    try:
        for rank in (0, 1):
            monkeypatch.setattr("babelclip.train.distributed.rank_world", lambda r=rank: (r, 2))
            assert main(args) == 0
            printed = capsys.readouterr().out
            if rank == 0:
                assert "steps: 2; loss 1.0000 -> 0.5000" in printed and logger.level == level
            else:  # the same run on another rank: no report, and its log keeps warnings only
                assert printed == "" and logger.level == logging.WARNING
    finally:
        logger.setLevel(level)
