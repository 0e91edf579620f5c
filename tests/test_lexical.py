"""Lexical specialization: the loss, its positives and negatives, training through the shared loop,
resume, and the `babelclip train --objective lexical` command (data sources and the leakage guard:
tests/test_lexical_data.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _tiny_text import PAIRS_SW, TinyTextEncoder

from babelclip.languages import get_language
from babelclip.train.config import DistillConfig
from babelclip.train.lexical import Lexical, lexical_loss, positive_mask, specialize
from babelclip.train.loop import ADAPTER_META
from babelclip.train.synonyms import SynonymDataError, SynonymSets, make_set
from babelclip.train.text_side import trainable_text

# one concept per toy pair: English and a French stand-in as anchors, the Swahili text (trained as "de")
SETS = SynonymSets([make_set(f"toy:{i}", [("en", e), ("fr", f"le {e}"), ("de", t)]) for i, (e, t) in enumerate(PAIRS_SW)],
                   "toy", "CC0")


def _cfg(**kw) -> DistillConfig:
    base = {"objective": "lexical", "steps": 12, "batch_size": 8, "lr": 1e-2, "checkpoint_every": 4, "progress": False,
            "lora_r": 4, "temperature": 0.1, "warmup_steps": 1}
    return DistillConfig(**{**base, **kw})


def test_loss_by_hand_and_duplicates_are_never_negatives():
    e = torch.eye(3)
    # rows 0, 1, 2 distinct concepts, each target on its own anchor: cos 1 on the diagonal, 0 off it
    loss = lexical_loss(e, e, torch.eye(3, dtype=torch.bool), temperature=1.0)
    expected = np.log(np.e + 2) - 1  # -log softmax([1, 0, 0])[0], both ways alike
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    one_way = lexical_loss(e, e[[1, 2, 0]], torch.eye(3, dtype=torch.bool), temperature=1.0, symmetric=False)
    assert one_way.item() == pytest.approx(np.log(np.e + 2), rel=1e-6)  # the positive at cos 0, a negative at cos 1
    # the same concept twice in a batch (identical embeddings): as negatives of each other each row
    # would lose log 2; as positives (one key) it loses nothing
    q = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert lexical_loss(q, q, torch.eye(2, dtype=torch.bool), 1.0).item() == pytest.approx(np.log(2), rel=1e-6)
    assert lexical_loss(q, q, positive_mask(["a", "a"], ["x", "y"], ["u", "v"]), 1.0).item() == pytest.approx(0.0, abs=1e-6)


def test_positive_mask_from_keys_and_shared_texts():
    mask = positive_mask(["k1", "k2", "k1", "k3", "k4"], ["Hund", "Katze", "Köter", "hund!", "Maus"],
                         ["dog", "cat", "hound", "perro", "Cat"])
    want = torch.tensor([[1, 0, 1, 1, 0],   # k1 twice (0, 2); "Hund" = "hund!" once normalised (0, 3)
                         [0, 1, 0, 0, 1],   # "cat" = "Cat": one anchor text, never a negative (1, 4)
                         [1, 0, 1, 0, 0],
                         [1, 0, 0, 1, 0],
                         [0, 1, 0, 0, 1]], dtype=torch.bool)
    assert torch.equal(mask, want)


def test_aligned_sets_cost_less_than_shuffled_ones_on_babel_lite():
    """On babel-lite's pooled text tower, German emoji names against their English names: the
    true sets give a lower loss than the same texts with the anchors shuffled across sets."""
    from babelclip import create_model
    from babelclip.train.sources import cldr_pairs

    pairs = cldr_pairs("de", keywords=False).pairs[:32]
    text = trainable_text(create_model("babel-lite"), level="tower")
    with torch.no_grad():
        q, a = text.text_forward([t for _, t in pairs], "de"), text.text_forward([e for e, _ in pairs], "en")
    mask = positive_mask([str(i) for i in range(len(pairs))], [t for _, t in pairs], [e for e, _ in pairs])
    aligned = lexical_loss(q, a, mask, 0.05).item()
    perm = torch.roll(torch.arange(len(pairs)), 1)
    shuffled = lexical_loss(q, a[perm], positive_mask([str(i) for i in range(len(pairs))], [t for _, t in pairs],
                                                      [pairs[i][0] for i in perm]), 0.05).item()
    assert aligned < shuffled - 0.5  # at least half a nat: the sets carry signal the model already sees
    assert shuffled > 0.9 * np.log(len(pairs))  # shuffled sets are near chance (log B)


def test_pairs_are_drawn_per_step_from_the_set_and_anchors_are_other_languages():
    obj = Lexical(SETS.for_language("de"), get_language("de"), _cfg())
    seen = {obj.pair(step, 0) for step in range(40)}
    assert {t for t, _ in seen} == {PAIRS_SW[0][1]}  # the one German member
    assert {a for _, a in seen} == {("en", PAIRS_SW[0][0]), ("fr", f"le {PAIRS_SW[0][0]}")}  # both anchors come up
    assert obj.pair(3, 0) == obj.pair(3, 0)  # a pure function of (seed, step, set): resume draws the same


def test_training_pulls_targets_to_their_anchors(tmp_path):
    enc = TinyTextEncoder()
    text = trainable_text(enc, level="tower")

    def hits() -> float:  # German text -> its English anchor among all 16, by cosine
        with torch.no_grad():
            q = torch.nn.functional.normalize(text.text_forward([t for _, t in PAIRS_SW], "de"), dim=-1)
            a = torch.nn.functional.normalize(text.text_forward([e for e, _ in PAIRS_SW], "en"), dim=-1)
        return float((torch.argmax(q @ a.T, 1) == torch.arange(len(PAIRS_SW))).float().mean())

    before = hits()
    res = specialize(text, SETS, "de", _cfg(method="full", lr=3e-3, steps=40), tmp_path, anchor_langs=["en"])
    assert np.mean(res.losses[-5:]) < 0.7 * np.mean(res.losses[:5])
    assert hits() >= before + 0.25  # retrieval of the English anchor, not just a lower number
    meta = json.loads((tmp_path / ADAPTER_META).read_text())
    assert meta["config"]["objective"] == "lexical" and meta["lang"] == "de"
    assert meta["data"]["sets"] == 16 and meta["data"]["anchor_langs"] == "en" and meta["data"]["anchor_members"] == 16


def test_lora_resume_equals_uninterrupted(tmp_path):
    full = specialize(trainable_text(TinyTextEncoder()), SETS, "de", _cfg(), tmp_path / "a")
    first = specialize(trainable_text(TinyTextEncoder()), SETS, "de", _cfg(), tmp_path / "b", interrupt_at=6)
    assert first.stopped_early and first.steps_done == 6
    resumed = specialize(trainable_text(TinyTextEncoder()), SETS, "de", _cfg(), tmp_path / "b", resume=True)
    assert resumed.losses == full.losses
    a = torch.load(tmp_path / "a" / "checkpoints" / "step-00000012.pt", weights_only=True)["trainable"]
    b = torch.load(tmp_path / "b" / "checkpoints" / "step-00000012.pt", weights_only=True)["trainable"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a) and any("lora_" in k for k in a)
    assert (tmp_path / "a" / "adapter_model.safetensors").exists()  # a LoRA adapter, loadable as any other


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="objective='contrastive'; allowed: distill, lexical"):
        DistillConfig(objective="contrastive")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        DistillConfig(temperature=0)
    with pytest.raises(SynonymDataError, match="English is never trained"):
        specialize(trainable_text(TinyTextEncoder()), SETS, "en", _cfg(), tmp_path)
    with pytest.raises(SynonymDataError, match="16 of 16 synonym sets .* fewer than one batch of 32"):
        specialize(trainable_text(TinyTextEncoder()), SETS, "de", _cfg(batch_size=32), tmp_path)
    with pytest.raises(SynonymDataError, match=r"0 of 16 synonym sets \(toy\) have a sw member"):
        specialize(trainable_text(TinyTextEncoder()), SETS, "sw", _cfg(), tmp_path)
    with pytest.raises(ValueError, match="objective='lexical'"):
        specialize(trainable_text(TinyTextEncoder()), SETS, "de", _cfg(objective="distill"), tmp_path)


def test_cli_validates_flags_and_trains(tmp_path, monkeypatch, capsys):
    from babelclip.cli import main

    sets = tmp_path / "sets.jsonl"
    sets.write_text("".join(json.dumps({"id": f"t{i}", "members": {"en": e, "deu": [t]}}) + "\n"
                            for i, (e, t) in enumerate(PAIRS_SW)), encoding="utf-8")
    monkeypatch.setattr("babelclip.models.registry.create_model", lambda name, **kw: TinyTextEncoder())
    base = ["-q", "train", "--model", "tiny", "--lang", "de", "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit):
        main([*base, "--objective", "contrastive", "--synonyms", str(sets)])
    assert "invalid choice: 'contrastive' (choose from 'distill', 'lexical')" in capsys.readouterr().err
    assert main([*base, "--objective", "lexical", "--parallel", "cldr"]) == 1
    assert "--objective lexical trains on synonym sets: give --synonyms" in capsys.readouterr().err
    assert main([*base, "--synonyms", str(sets), "--parallel", "cldr"]) == 1
    assert "--synonyms, --anchor-langs and --one-way belong to --objective lexical" in capsys.readouterr().err
    assert main([*base, "--objective", "lexical", "--synonyms", "cldr:all"]) == 1
    assert "training half only" in capsys.readouterr().err
    assert main([*base, "--objective", "lexical", "--synonyms", str(sets), "--steps", "3", "--batch-size", "4",
                 "--tuxpaint", str(tmp_path / "no-stamps"), "--labels", str(tmp_path / "no-labels.json")]) == 0
    out = capsys.readouterr().out
    assert "members: 32 read" in out and "steps: 3" in out
    meta = json.loads((tmp_path / "out" / ADAPTER_META).read_text())
    assert meta["level"] == "tower" and meta["config"]["objective"] == "lexical"  # the pooled tower by default


@pytest.mark.parametrize("family", ["openclip-nllb", "hf-clip"])
def test_any_trainable_family_gets_a_lexical_adapter(family, tmp_path):
    """Zoo families train through their own text side: a LoRA adapter that changes German and
    leaves English bitwise; NLLB-CLIP's tower reads the language, so its anchors are embedded
    per language (one cached file per anchor language), the others' in one call."""
    from _tiny_hf import tiny_clip_dir
    from _tiny_openclip import tiny_openclip_model_dir

    from babelclip import create_model
    from babelclip.train.adapters import load_adapters

    kind = family.split("-")[1]
    folder = tiny_openclip_model_dir(tmp_path, kind) if family.startswith("openclip") else tiny_clip_dir(tmp_path, kind)
    sets = SynonymSets([make_set(f"t{i}", [("en", e), ("fr", f"le {e}"), ("de", t)]) for i, (e, t) in enumerate(PAIRS_SW[:8])], "toy")
    specialize(trainable_text(create_model(str(folder))), sets, "de", _cfg(steps=2, batch_size=4, lr=5e-2, lora_r=1, max_trainable_fraction=0.2),
               tmp_path / "out", cache_dir=tmp_path / "anchors")
    assert len(list((tmp_path / "anchors").glob("teacher-*.npy"))) == (2 if kind == "nllb" else 1)
    base, adapted = create_model(str(folder)), load_adapters(create_model(str(folder)), [tmp_path / "out"])
    texts = [t for _, t in PAIRS_SW[:4]]
    assert np.array_equal(adapted.encode_texts(texts, "en"), base.encode_texts(texts, "en"))
    assert not np.allclose(adapted.encode_texts(texts, "de"), base.encode_texts(texts, "de"), atol=1e-6)
