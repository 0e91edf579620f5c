"""babel-lite 2: the merged text-tower LoRA, the shipped variants, and the build's training data."""
from __future__ import annotations

import shutil

import pytest
import torch

from babelclip.models.babel_lite.text_lora import LoraFileError, lora_factors, merge_lora, peft_factors, save_lora
from babelclip.train.leakage import EvalSet
from babelclip.train.sources import CLDR_ANNOTATIONS, read_cldr_annotations


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
@pytest.fixture(scope="module")
def cldr_dir(tmp_path_factory):
    if not (CLDR_ANNOTATIONS / "en.xml").is_file():
        pytest.skip("Debian unicode-cldr-core is not installed (scripts/setup.sh installs it)")
    d = tmp_path_factory.mktemp("cldr")
    for name in ("en", "de", "sw", "root"):
        shutil.copy(CLDR_ANNOTATIONS / f"{name}.xml", d / f"{name}.xml")
    return d


@pytest.fixture(scope="module")
def small_cldr_dir(cldr_dir, tmp_path_factory):
    """The same locales cut to their first 40 emoji: a build runs in seconds."""
    import xml.etree.ElementTree as ET

    d = tmp_path_factory.mktemp("cldr-small")
    keep = [el.get("cp") for el in ET.parse(cldr_dir / "en.xml").getroot().iter("annotation")][:80]
    for f in cldr_dir.glob("*.xml"):
        tree = ET.parse(f)
        for parent in tree.getroot().iter("annotations"):
            for el in list(parent):
                if el.get("cp") not in keep:
                    parent.remove(el)
        tree.write(d / f.name, encoding="utf-8")
    return d


def test_corpus_is_training_half_names_guarded_and_mixed(cldr_dir):
    from babelclip.data.emoji import emoji_half
    from babelclip.data.emoji.cldr import emoji_id
    from babelclip_tools.lite_text import MULTILINGUAL, LiteTextConfig, build_corpus

    de = read_cldr_annotations(cldr_dir / "de.xml")
    name_half = {name: emoji_half(emoji_id(cp)) for cp, (name, _) in de.items()}
    long_de = next(n for n, h in name_half.items() if h == "train" and len(n.split()) >= 4)
    short_de = next(n for n, h in name_half.items() if h == "train" and len(n.split()) == 1)
    sets = [EvalSet("tuxpaint", {"de": {"s1": long_de}}), EvalSet("labels", {"de": {"7": short_de}})]
    corpus, reports, counts = build_corpus(LiteTextConfig(en_share=2.0), sets, cldr_dir)
    assert corpus.lang is MULTILINGUAL and corpus.meta["cldr_emoji"] == "train"
    assert set(counts) == {"de", "sw", "en"}  # root and English are no target locale
    targets = [t for _, t in corpus.pairs]
    assert all(name_half.get(t, "train") == "train" for t in targets)  # no evaluation-half emoji
    assert "eval" in name_half.values()  # (the locale file does hold evaluation-half names)
    assert long_de not in targets  # a whole evaluation sentence: dropped as a copy
    assert short_de in targets  # a one-word label from an independent source: kept, counted as overlap
    assert reports["de"]["dropped"] == {"tuxpaint": 1} and reports["de"]["overlap_pairs"] == {"labels": 1}
    sources = {e for e, t in corpus.pairs if e != t}
    assert sources <= {e for e, t in corpus.pairs if e == t}  # every English name also as its own target
    n_other = len(corpus) - counts["en"]  # English self-pairs: en_share of the others, in whole repeats
    names = {e for e, _ in corpus.pairs}
    assert abs(counts["en"] - 2.0 * n_other) <= len(names) / 2 and counts["en"] % len(names) == 0


def test_build_refuses_without_every_evaluation_set(monkeypatch):
    import babelclip.train.recipe as recipe
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
    cfg = lite_text.LiteTextConfig(steps=2, batch_size=4, warmup_steps=0, lr=5e-2, min_pairs=5, min_teacher_confidence=0.0)
    out = lite_text.train_lite_text(tmp_path / "m", cfg, annotations_dir=small_cldr_dir)
    config = __import__("json").loads((out / "babel_lite.json").read_text())
    assert config["format"] == "babel-lite/2" and config["text"]["lora"]["r"] == 8
    assert set(config["text_training"]["pairs_per_language_before_confidence"]) == {"de", "sw", "en"}
    assert (out / "head.safetensors").read_bytes() == (VARIANTS["v1"] / "head.safetensors").read_bytes()
    factors = lora_factors(out / "text_lora.safetensors")
    assert len(factors) == 12 * 6  # every attention and feed-forward linear of mE5's 12 layers
    v1, v2 = create_model("babel-lite@v1"), create_model(str(out))
    assert v1.fingerprint.key != v2.fingerprint.key
    de = ["Hund", "rotes Auto mit Kindern"]
    assert (v1.encode_texts(de, "de") != v2.encode_texts(de, "de")).any()
    (out / "text_lora.safetensors").write_bytes(b"\0" * 64)
    with pytest.raises(Exception, match="text_lora.safetensors|header|safetensors"):
        create_model(str(out))
