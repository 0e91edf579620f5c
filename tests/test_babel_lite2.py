"""babel-lite 2: the merged text-tower LoRA, the shipped variants, and the build's training data."""
from __future__ import annotations

import pytest
import torch

from babelclip.models.babel_lite.text_lora import (
    LoraFileError,
    lora_factors,
    merge_lora,
    peft_factors,
    save_lora,
)
from babelclip.train.leakage import EvalSet
from babelclip.train.sources import read_cldr_annotations


def _tiny_bert(seed: int = 0):
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                     max_position_embeddings=16)
    return BertModel(cfg, add_pooling_layer=False).eval()


def test_merged_lora_equals_peft_forward(tmp_path):
    """The merge gives the outputs peft computes with its adapters (to float16 storage of A and B)."""
    peft = pytest.importorskip("peft")
    model = _tiny_bert()
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value", "dense"]))
    with torch.no_grad():
        for name, p in wrapped.named_parameters():
            if "lora_" in name:  # B starts at zero: make the update non-trivial, exactly representable in fp16
                p.copy_((torch.randn_like(p) * 0.2).half().float())
    ids = torch.tensor([[1, 5, 7, 9, 2], [1, 3, 2, 0, 0]])
    mask = (ids > 0).long()
    with torch.no_grad():
        want = wrapped(input_ids=ids, attention_mask=mask).last_hidden_state
    factors = peft_factors(wrapped.state_dict())
    assert len(factors) == 2 * 5  # query, value and the three "dense" (attention output, intermediate, output) per layer
    save_lora(factors, tmp_path / "lora.safetensors")
    fresh = _tiny_bert()
    fresh.load_state_dict(base_state)
    merge_lora(fresh, tmp_path / "lora.safetensors", scale=8 / 4)
    with torch.no_grad():
        got = fresh(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    plain = _tiny_bert()
    plain.load_state_dict(base_state)
    with torch.no_grad():
        assert not torch.allclose(plain(input_ids=ids, attention_mask=mask).last_hidden_state, want, atol=1e-3)


def test_lora_file_errors_name_the_problem(tmp_path):
    from safetensors.torch import save_file

    a, b = torch.zeros(4, 16), torch.zeros(16, 4)
    save_file({"encoder.layer.0.attention.self.query.lora_A": a}, str(tmp_path / "half.safetensors"))
    with pytest.raises(LoraFileError, match="unpaired"):
        lora_factors(tmp_path / "half.safetensors")
    save_lora({"encoder.layer.9.attention.self.query": (a, b)}, tmp_path / "far.safetensors")
    with pytest.raises(LoraFileError, match="no layer 'encoder.layer.9"):
        merge_lora(_tiny_bert(), tmp_path / "far.safetensors", 1.0)
    save_lora({"encoder.layer.0.attention.self.query": (torch.zeros(4, 8), b)}, tmp_path / "shape.safetensors")
    with pytest.raises(LoraFileError, match=r"do not fit its weight \(16, 16\)"):
        merge_lora(_tiny_bert(), tmp_path / "shape.safetensors", 1.0)


# -- the build's corpus -----------------------------------------------------------------------------
def test_corpus_is_training_half_names_guarded_per_language(cldr_dir):
    from babelclip.data.emoji import emoji_half
    from babelclip.data.emoji.cldr import emoji_id
    from babelclip_tools.lite_corpus import language_pairs

    de = read_cldr_annotations(cldr_dir / "de.xml")
    name_half = {name: emoji_half(emoji_id(cp)) for cp, (name, _) in de.items()}
    long_de = next(n for n, h in name_half.items() if h == "train" and len(n.split()) >= 4)
    short_de = next(n for n, h in name_half.items() if h == "train" and len(n.split()) == 1)
    sets = [EvalSet("tuxpaint", {"de": {"s1": long_de}}), EvalSet("labels", {"de": {"7": short_de}})]
    data = language_pairs(sets, annotations_dir=cldr_dir)
    assert set(data.pairs) == {"de", "sw"}  # root and English are no target locale
    targets = [t for _, t in data.pairs["de"]]
    assert all(name_half.get(t, "train") == "train" for t in targets)  # no evaluation-half emoji
    assert "eval" in name_half.values()  # (the locale file does hold evaluation-half names)
    assert long_de not in targets  # a whole evaluation sentence: dropped as a copy
    assert short_de in targets  # a one-word label from an independent source: kept, counted as overlap
    assert data.reports["de"]["dropped"] == {"tuxpaint": 1} and data.reports["de"]["overlap_pairs"] == {"labels": 1}
    assert set(data.english) == {e for p in data.pairs.values() for e, _ in p}


def _pairs(sizes: dict[str, int]):
    from babelclip_tools.lite_corpus import LanguagePairs

    return LanguagePairs({tag: [(f"en{i}", f"{tag}{i}") for i in range(n)] for tag, n in sizes.items()})


def test_sampling_balances_languages_and_keeps_english():
    from collections import Counter

    from babelclip_tools.lite_corpus import sampled_pairs

    data = _pairs({"aa": 400, "bb": 100, "cc": 25})
    items = sampled_pairs(data, 1000, balance=0.5, en_share=0.1, seed=0)
    assert len(items) == 1000
    langs = Counter("en" if e == t else t[:2] for e, t in items)
    assert langs["en"] == 100  # English names as their own targets: en_share of the items
    # ∝ sqrt(size): 20 : 10 : 5 of the other 900 items (a proportional draw would give cc 43)
    assert (langs["aa"], langs["bb"], langs["cc"]) == (515, 257, 128)
    cc = Counter(t for e, t in items if t.startswith("cc"))
    assert set(cc.values()) <= {5, 6}  # 128 over 25 pairs: whole passes first, no pair twice too often
    even = Counter(t[:2] for e, t in sampled_pairs(data, 900, balance=0.0, en_share=0.0, seed=1))
    assert set(even.values()) == {300}
    assert sampled_pairs(data, 1000, balance=0.5, en_share=0.1, seed=0) == items  # seeded
    with pytest.raises(ValueError, match="balance must be in"):
        sampled_pairs(data, 10, balance=2.0, en_share=0.1, seed=0)


class _TinyLite:
    """What the lower-state objective needs of babel-lite: a BERT text tower, tokenize, a head."""

    text_temperature = 0.5

    def __init__(self):
        from babelclip.models.babel_lite.head import HeadConfig, TextHead

        self.text_tower = _tiny_bert(1)
        torch.manual_seed(2)
        self.head = TextHead(HeadConfig(in_dim=16, num_classes=7)).eval()

    def tokenize(self, texts, lang=None):
        return [[1] + [3 + ord(c) % 40 for c in t][:12] + [2] for t in texts]

    def logits(self, texts):
        from babelclip.models.babel_lite.text_tower import mean_pool
        from babelclip.models.packed_bert import pad_batch

        ids, mask = pad_batch(self.tokenize(texts), 0)
        hidden = self.text_tower(input_ids=ids, attention_mask=mask).last_hidden_state
        return self.head(mean_pool(hidden, mask)) / self.text_temperature


@pytest.mark.parametrize("below", [0, 1, 2])
def test_top_layers_from_cached_states_equal_the_whole_tower(below, tmp_path):
    """Cached after ``below`` layers (in float16), the rest of the tower gives the full forward's
    logits; the cache file is reused for the same texts and not for others."""
    from babelclip_tools.lite_states import LowerStates, TopLayersKL

    model = _TinyLite()
    texts = ["a", "hund", "ein roter Hund mit Ball", "xyz", "ab"]
    states = LowerStates.cached(model, texts, below, tmp_path, "k")
    assert states.states.dtype == torch.float16 and len(states.states) == sum(len(x) for x in model.tokenize(texts))
    objective = TopLayersKL(model, [("a", "hund")], states, {}, {})
    query = ["ein roter Hund mit Ball", "a", "ab"]
    with torch.no_grad():
        got, want = objective.student_logits(query), model.logits(query)
    torch.testing.assert_close(got, want, atol=3e-2 if below else 1e-5, rtol=1e-2)
    assert len(list(tmp_path.glob("lower-states-*.pt"))) == 1
    again = LowerStates.cached(model, texts, below, tmp_path, "k")
    assert torch.equal(again.states, states.states)
    LowerStates.cached(model, texts[:3], below, tmp_path, "k")
    assert len(list(tmp_path.glob("lower-states-*.pt"))) == 2


def test_objective_is_kl_to_the_english_teacher_and_trains_top_layers_only(tmp_path):
    import numpy as np

    from babelclip.train.config import DistillConfig
    from babelclip.train.loop import attach_lora
    from babelclip_tools.lite_states import LowerStates, TopLayersKL

    model = _TinyLite()
    items = [("dog", "hund"), ("cat", "katze"), ("dog", "dog")]
    states = LowerStates.compute(model, ["hund", "katze", "dog"], 1)
    with torch.no_grad():
        teacher = dict(zip(["dog", "cat"], torch.softmax(model.logits(["dog", "cat"]), -1)))
    objective = TopLayersKL(model, items, states, teacher, {"source": "test"})
    loss = objective.loss(None, np.array([2]), 0)  # English to itself, adapters at zero: no loss
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-6)
    loss = objective.loss(None, np.array([0, 1]), 0)
    with torch.no_grad():
        logp = torch.log_softmax(model.logits(["hund", "katze"]), -1)
        want = (torch.stack([teacher["dog"], teacher["cat"]]) * (torch.stack([teacher["dog"], teacher["cat"]]).log() - logp)).sum(-1).mean()
    assert float(loss.detach()) == pytest.approx(float(want), rel=1e-3)  # (states cached in float16)
    attach_lora(model.text_tower, DistillConfig(lora_r=2, lora_layers=(1,)))
    adapted = {n.split(".lora_A")[0] for n, p in model.text_tower.named_parameters() if "lora_A" in n}
    assert adapted and all(n.startswith("encoder.layer.1.") for n in adapted)
    assert not any(p.requires_grad for n, p in model.text_tower.named_parameters() if "layer.0." in n)


def test_build_refuses_without_every_evaluation_set(monkeypatch):
    from babelclip.train import recipe
    from babelclip_tools import lite_text

    monkeypatch.setattr(recipe, "find_tuxpaint", lambda root=None: None)
    monkeypatch.setattr(recipe, "evaluation_sets", lambda labels, tux: ([EvalSet("babel-emoji", {})], None))
    with pytest.raises(FileNotFoundError, match="tuxpaint, babel-imagenet labels"):
        lite_text.guard_sets()


def test_build_writes_a_babel_lite_2_directory(small_cldr_dir, tmp_path, monkeypatch):
    """Two training steps end to end: the directory loads, merges its LoRA, and differs from v1
    for German while the head (and so the image side) is v1's."""
    from babelclip import create_model
    from babelclip.models.babel_lite.model import VARIANTS
    from babelclip_tools import lite_text

    monkeypatch.setattr(lite_text, "guard_sets", lambda: [EvalSet("tuxpaint", {})])
    cfg = lite_text.LiteTextConfig(steps=2, batch_size=8, warmup_steps=0, lr=5e-2, min_pairs=5, top_layers=2)
    out = lite_text.train_lite_text(tmp_path / "m", cfg, annotations_dir=small_cldr_dir)
    config = __import__("json").loads((out / "babel_lite.json").read_text())
    assert config["format"] == "babel-lite/2" and config["text"]["lora"]["r"] == 16
    assert set(config["text_training"]["pairs_per_language"]) == {"de", "sw"}
    assert (out / "head.safetensors").read_bytes() == (VARIANTS["v1"] / "head.safetensors").read_bytes()
    factors = lora_factors(out / "text_lora.safetensors")
    # every attention and feed-forward linear of mE5's top 2 layers, nothing below
    assert len(factors) == 2 * 6 and all(n.startswith(("encoder.layer.10.", "encoder.layer.11.")) for n in factors)
    v1, v2 = create_model("babel-lite@v1"), create_model(str(out))
    assert v1.fingerprint.key != v2.fingerprint.key
    de = ["Hund", "rotes Auto mit Kindern"]
    assert (v1.encode_texts(de, "de") != v2.encode_texts(de, "de")).any()
    (out / "text_lora.safetensors").write_bytes(b"\0" * 64)
    with pytest.raises(Exception, match="text_lora.safetensors|header|safetensors"):
        create_model(str(out))
