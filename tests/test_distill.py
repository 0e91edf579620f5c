"""Distillation on a tiny random text side: loss goes down, LoRA trains only adapters, resume is exact."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _tiny_text import PAIRS_SW, TinyTextEncoder

from babelclip.languages import get_language
from babelclip.train.distill import (
    ADAPTER_META,
    DistillConfig,
    distill,
    distill_loss,
    teacher_embeddings,
)
from babelclip.train.parallel import ParallelCorpus, ParallelDataError
from babelclip.train.text_side import TextSide, trainable_text

DE = get_language("de")  # a tag the language table has from the start; the texts are Swahili
CORPUS = ParallelCorpus(DE, PAIRS_SW, "toy", "CC0")


def _cfg(**kw) -> DistillConfig:
    base = {"steps": 12, "batch_size": 8, "lr": 1e-2, "checkpoint_every": 4, "progress": False, "lora_r": 4}
    base.update(kw)
    return DistillConfig(**base)


def _teacher_distance(enc: TinyTextEncoder) -> float:
    """Mean squared distance between normalised target embeddings and their English teachers."""
    tgt = enc.encode_texts([t for _, t in PAIRS_SW], "de")
    return float(((tgt - TEACHER) ** 2).sum(1).mean())


TEACHER = TinyTextEncoder().encode_texts([e for e, _ in PAIRS_SW], "en")


def test_lora_loss_decreases_and_only_adapters_train(tmp_path):
    enc = TinyTextEncoder()
    before = {n: p.detach().clone() for n, p in enc.text_tower.named_parameters()}
    head_before = enc.head.weight.detach().clone()
    d0 = _teacher_distance(enc)
    res = distill(trainable_text(enc), CORPUS, _cfg(steps=40), tmp_path)
    assert np.mean(res.losses[-5:]) < 0.6 * np.mean(res.losses[:5])
    assert _teacher_distance(enc) < 0.6 * d0  # the encoder the user holds moved towards the teacher
    # Expected adapter size from the architecture, independently of peft: r*(in+out) per adapted linear.
    h, ff, layers, r = 16, 32, 2, 4
    per_layer = 4 * r * (h + h) + r * (h + ff) + r * (ff + h)  # q, k, v, attn-out; intermediate; output
    assert res.trainable_params == layers * per_layer
    assert res.trainable_params <= 0.05 * res.total_params
    for n, p in enc.text_tower.named_parameters():
        if "lora_" in n:
            continue
        assert torch.equal(p, before[n.replace(".base_layer", "")]), n  # base weights untouched
    assert torch.equal(enc.head.weight, head_before)
    meta = json.loads((tmp_path / ADAPTER_META).read_text())
    assert meta["lang"] == "de" and meta["base_key"] == enc.fingerprint.key and meta["data"]["licence"] == "CC0"
    assert (tmp_path / "adapter_model.safetensors").stat().st_size < 100_000


def test_resume_equals_uninterrupted(tmp_path):
    full = distill(trainable_text(TinyTextEncoder()), CORPUS, _cfg(), tmp_path / "a")
    first = distill(trainable_text(TinyTextEncoder()), CORPUS, _cfg(), tmp_path / "b", interrupt_at=6)
    assert first.stopped_early and first.steps_done == 6
    with pytest.raises(ValueError, match="already holds checkpoints"):
        distill(trainable_text(TinyTextEncoder()), CORPUS, _cfg(), tmp_path / "b")
    enc = TinyTextEncoder()
    resumed = distill(trainable_text(enc), CORPUS, _cfg(), tmp_path / "b", resume=True)
    assert resumed.losses == full.losses  # same data order, optimizer and schedule state after resume
    a = torch.load(tmp_path / "a" / "checkpoints" / "step-00000012.pt", weights_only=False)["trainable"]
    b = torch.load(tmp_path / "b" / "checkpoints" / "step-00000012.pt", weights_only=False)["trainable"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_a_different_config(tmp_path):
    distill(trainable_text(TinyTextEncoder()), CORPUS, _cfg(), tmp_path, interrupt_at=4)
    with pytest.raises(ValueError, match="config differs"):
        distill(trainable_text(TinyTextEncoder()), CORPUS, _cfg(lr=5e-3), tmp_path, resume=True)


def test_full_finetuning_trains_every_tower_weight(tmp_path):
    enc = TinyTextEncoder()
    before = {n: p.detach().clone() for n, p in enc.text_tower.named_parameters()}
    res = distill(trainable_text(enc), CORPUS, _cfg(method="full", lr=1e-3, steps=6), tmp_path)
    assert res.trainable_params == res.total_params == sum(t.numel() for t in before.values())
    changed = [n for n, p in enc.text_tower.named_parameters() if not torch.equal(p, before[n])]
    assert "encoder.layer.0.attention.self.query.weight" in changed
    assert (tmp_path / "text_module.safetensors").exists()


def test_teacher_cache_is_reused(tmp_path):
    text = trainable_text(TinyTextEncoder())
    english = [e for e, _ in PAIRS_SW]
    a = teacher_embeddings(text, english, tmp_path)
    assert len(list(tmp_path.glob("teacher-*.npy"))) == 1

    class Exploding(TextSide):  # the same text side (fingerprint, kind), never to be run
        def text_module(self):
            raise AssertionError("the cache should have answered")

        text_forward = text_module

    assert np.array_equal(teacher_embeddings(Exploding(text.encoder, text.module, text.forward, text.kind),
                                              english, tmp_path), a)


def test_teacher_encodes_each_distinct_text_once():
    """A corpus mixing languages repeats its English side per language: one forward per text."""
    text = trainable_text(TinyTextEncoder())
    english = [e for e, _ in PAIRS_SW[:4]]
    seen: list[str] = []

    def counting(texts, lang):
        seen.extend(texts)
        return text.forward(texts, lang)

    repeated = english * 3 + english[:1]
    emb = teacher_embeddings(TextSide(text.encoder, text.module, counting, text.kind), repeated, None)
    assert sorted(seen) == sorted(english)
    assert emb.shape[0] == len(repeated)
    np.testing.assert_array_equal(emb[len(english)], emb[0])
    np.testing.assert_allclose(emb[: len(english)], teacher_embeddings(text, english, None), atol=1e-6)


def test_tower_level_is_the_pooled_tower_and_cached_apart(tmp_path):
    enc = TinyTextEncoder()
    out, tower = trainable_text(enc), trainable_text(enc, level="tower")
    assert tower.text_module() is enc.text_tower is out.text_module()
    texts = [e for e, _ in PAIRS_SW[:3]]
    with torch.no_grad():
        pooled = tower.text_forward(texts, "en")
        assert torch.allclose(enc.head(pooled), out.text_forward(texts, "en"), atol=1e-6)  # output = head(tower)
    teacher_embeddings(out, texts, tmp_path)
    teacher_embeddings(tower, texts, tmp_path)
    shapes = sorted(np.load(p).shape[1] for p in tmp_path.glob("teacher-*.npy"))
    assert shapes == [12, 16]  # two cache entries: head output (12-d) and tower (16-d)
    with pytest.raises(ValueError, match="level='pooled'"):
        trainable_text(enc, level="pooled")


def test_contrastive_term_and_loss_values():
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert distill_loss(s, s.clone(), _cfg()).item() == pytest.approx(0.0)
    t = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # orthogonal: |s-t|^2 = 2 for unit vectors
    assert distill_loss(s, t, _cfg()).item() == pytest.approx(2.0)
    with_nce = distill_loss(s, t, _cfg(contrastive_weight=1.0, temperature=1.0)).item()
    assert with_nce == pytest.approx(2.0 + np.log(1 + np.e))  # CE of logits [0, 1] with the wrong target


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="method='adapter'"):
        DistillConfig(method="adapter")
    with pytest.raises(ParallelDataError, match="English is the teacher"):
        distill(trainable_text(TinyTextEncoder()), ParallelCorpus(get_language("en"), PAIRS_SW, "x"), _cfg(), tmp_path)
    with pytest.raises(AssertionError, match="max_trainable_fraction"):
        distill(trainable_text(TinyTextEncoder()), CORPUS, _cfg(lora_r=64), tmp_path / "big")


def test_recipe_guards_trains_and_evaluates(tmp_path):
    """What `babelclip train` runs: read pairs, drop evaluation copies, distil, evaluate at the end."""
    from babelclip.train.recipe import load_training_pairs, train_language

    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"EN": [[0, 1, 2], ["tench", "goldfish", "shark"]],
                                  "DE": [[0, 1, 2], ["Schleie", "Goldfisch", "Hai"]]}), encoding="utf-8")
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("".join(f"{e}\t{t}\n" for e, t in PAIRS_SW) + "goldfish\tGoldfisch\n", encoding="utf-8")
    with pytest.raises(ParallelDataError, match="neither cldr, cldr-names, bible nor an existing path"):
        load_training_pairs(["nope.tsv"], "de")
    rep = train_language("tiny", "de", [str(tsv)], tmp_path / "out", _cfg(steps=4), labels_path=str(labels),
                         encoder=TinyTextEncoder())
    assert rep.n_pairs_read == len(PAIRS_SW) + 1
    assert rep.leakage.dropped.get("babel-imagenet-92") == 1  # the label-file entry used as a pair
    assert rep.result.n_pairs == len(PAIRS_SW)
    ev = rep.result.evaluation["babel_label_alignment"]
    assert ev["before"]["n"] == 3 and 0 <= ev["after"]["top1"] <= 1  # before/after figures: tests/test_train_recipe.py
    meta = json.loads((tmp_path / "out" / ADAPTER_META).read_text())
    assert meta["leakage"]["n_dropped"] == 1 and meta["evaluation"] == rep.result.evaluation


def test_logits_level_and_kl_loss(tmp_path):
    """level="logits" is the head's pre-softmax output; loss="kl" is KL(teacher‖student) of their softmaxes."""
    enc = TinyTextEncoder()
    logits, tower = trainable_text(enc, level="logits"), trainable_text(enc, level="tower")
    texts = [e for e, _ in PAIRS_SW[:3]]
    with torch.no_grad():
        assert torch.allclose(logits.text_forward(texts, "en"), enc.head(tower.text_forward(texts, "en")), atol=1e-6)
    kl = _cfg(loss="kl")
    s = torch.zeros(1, 2)
    t = torch.tensor([[np.log(3.0), 0.0]])  # teacher p = (3/4, 1/4), student q = (1/2, 1/2)
    expected = 0.75 * np.log(0.75 / 0.5) + 0.25 * np.log(0.25 / 0.5)
    assert distill_loss(s, t, kl).item() == pytest.approx(expected, rel=1e-5)
    assert distill_loss(t, t.clone(), kl).item() == pytest.approx(0.0, abs=1e-7)
    # temperature T: KL of the softened distributions times T² (Hinton et al. 2015)
    soft = 0.5 * np.log(0.5 / (np.sqrt(3) / (1 + np.sqrt(3)))) + 0.5 * np.log(0.5 / (1 / (1 + np.sqrt(3))))
    assert distill_loss(t, s, _cfg(loss="kl", kl_temperature=2.0)).item() == pytest.approx(4 * soft, rel=1e-5)
    res = distill(logits, CORPUS, _cfg(steps=40, loss="kl"), tmp_path)
    assert np.mean(res.losses[-5:]) < 0.6 * np.mean(res.losses[:5])
    with pytest.raises(ValueError, match="loss='l1'"):
        DistillConfig(loss="l1")


def test_mixed_language_corpus_needs_a_language_agnostic_text_side(tmp_path):
    """A corpus of many languages (babel-lite's multilingual LoRA) is refused where the language
    changes the embedding: every pair would be encoded in a language it is not in."""
    from babelclip.train.parallel import MULTILINGUAL

    mixed = ParallelCorpus(MULTILINGUAL, PAIRS_SW, "mix", "CC0")
    enc = TinyTextEncoder()
    enc.text_language_agnostic = False
    with pytest.raises(ParallelDataError, match="mixing languages"):
        distill(trainable_text(enc), mixed, _cfg(steps=1), tmp_path / "a")
    enc.text_language_agnostic = True
    result = distill(trainable_text(enc), mixed, _cfg(steps=2, checkpoint_every=2), tmp_path / "b")
    assert len(result.losses) == 2
    assert json.loads((tmp_path / "b" / ADAPTER_META).read_text())["lang"] == "mul"
