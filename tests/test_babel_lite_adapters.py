"""babel-lite 2.1: per-language LoRA updates of the text tower, shipped in one file and swapped per language."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from babelclip.models.babel_lite.language_lora import (
    LanguageLora,
    language_factors,
    save_language_factors,
)
from babelclip.models.babel_lite.text_lora import LoraFileError
from babelclip.models.packed_bert import packed_mean_embeddings

LINEARS = ("encoder.layer.0.attention.self.query", "encoder.layer.1.attention.self.value", "encoder.layer.1.output.dense")


def _tiny_bert(seed: int = 0):
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                     max_position_embeddings=16)
    return BertModel(cfg, add_pooling_layer=False).eval()


def _factors(tower, seed: int, names=LINEARS) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for n in names:
        w = tower.get_submodule(n).weight
        # exactly representable in float16, as the file stores them
        out[n] = ((torch.randn(4, w.shape[1], generator=g) * 0.3).half().float(),
                  (torch.randn(w.shape[0], 4, generator=g) * 0.3).half().float())
    return out


IDS = torch.tensor([[1, 5, 7, 9, 2], [1, 3, 2, 0, 0]])
MASK = (IDS > 0).long()


def _pooled(tower) -> torch.Tensor:
    with torch.inference_mode():
        return packed_mean_embeddings(tower, IDS, MASK)


def _merged_by_hand(seed_tower: int, factors, scale: float):
    """An independent reference: a fresh tower with W + scale · B @ A written into each weight."""
    ref = _tiny_bert(seed_tower)
    with torch.no_grad():
        for n, (a, b) in factors.items():
            ref.get_submodule(n).weight += scale * (b @ a)
    return ref


@pytest.fixture
def two_languages(tmp_path):
    tower = _tiny_bert()
    factors = {"km": _factors(tower, 1), "sw": _factors(tower, 2, LINEARS[:2])}
    save_language_factors(factors, tmp_path / "ad.safetensors")
    return tower, factors, tmp_path / "ad.safetensors"


def test_each_language_runs_its_own_update_and_others_the_base_weights(two_languages):
    from babelclip.languages import get_language

    tower, factors, path = two_languages
    base_out = _pooled(tower)
    base_weights = {n: tower.get_submodule(n).weight for n in LINEARS}
    lora = LanguageLora(tower, path, scale=2.0, languages=["sw", "km"])
    assert lora.tag_for(get_language("km")) == "km" and lora.tag_for(get_language("hi")) is None
    assert lora.tag_for(None) is None
    for tag in ("km", "sw"):
        lora.activate(tag)
        got = _pooled(tower)  # the packed path with its fused q/k/v weight
        torch.testing.assert_close(got, _pooled(_merged_by_hand(0, factors[tag], 2.0)), atol=1e-5, rtol=1e-5)
        assert not torch.allclose(got, base_out, atol=1e-3)
    lora.activate(None)
    assert all(tower.get_submodule(n).weight is base_weights[n] for n in LINEARS)  # the very tensors: bit for bit
    assert torch.equal(_pooled(tower), base_out)
    lora.activate("km")
    km = _pooled(tower)
    lora.activate("sw")
    lora.activate("km")  # switching back gives the same bits (no stale fused weight, no drift)
    assert torch.equal(_pooled(tower), km)
    lora.override(["km"])  # a user's own km adapter replaces the shipped update
    assert lora.tag_for(get_language("km")) is None and lora.tag_for(get_language("sw")) == "sw"


def test_the_file_round_trips_and_bad_files_name_the_problem(two_languages, tmp_path):
    from safetensors.torch import save_file

    tower, factors, path = two_languages
    read = language_factors(path)
    assert sorted(read) == ["km", "sw"] and sorted(read["sw"]) == sorted(LINEARS[:2])
    torch.testing.assert_close(read["km"][LINEARS[0]][0], factors["km"][LINEARS[0]][0])
    with pytest.raises(LoraFileError, match=r"holds adapters for \['km', 'sw'\], the config lists \['km'\]"):
        LanguageLora(tower, path, 1.0, languages=["km"])
    save_file({"encoder.layer.0.attention.self.query.lora_A": torch.zeros(4, 16)}, str(tmp_path / "flat.safetensors"))
    with pytest.raises(LoraFileError, match="not named LANG/LINEAR"):
        language_factors(tmp_path / "flat.safetensors")
    save_language_factors({"km": {"encoder.layer.0.intermediate.dense": (torch.zeros(4, 16), torch.zeros(16, 4))}},
                          tmp_path / "shape.safetensors")
    with pytest.raises(LoraFileError, match="km's factors of 'encoder.layer.0.intermediate.dense'.*do not fit"):
        LanguageLora(tower, tmp_path / "shape.safetensors", 1.0)
    save_language_factors({"km": {"encoder.layer.7.output.dense": (torch.zeros(4, 32), torch.zeros(16, 4))}},
                          tmp_path / "far.safetensors")
    with pytest.raises(LoraFileError, match="no layer 'encoder.layer.7"):
        LanguageLora(tower, tmp_path / "far.safetensors", 1.0)
    with pytest.raises(ValueError, match="not a canonical tag"):
        save_language_factors({"KM": factors["km"]}, tmp_path / "x.safetensors")


@pytest.fixture(scope="module")
def v2():
    from babelclip import create_model

    torch.set_num_threads(1)
    return create_model("babel-lite@v2")


def _with_adapter(v2, d, factors: dict, languages=None):
    """babel-lite 2's files + a text_adapters file and its config entry."""
    shutil.copytree(v2.model_dir, d, ignore=shutil.ignore_patterns("__pycache__"))
    save_language_factors(factors, d / "text_adapters.safetensors")
    cfg = json.loads((d / "babel_lite.json").read_text())
    cfg["text"]["adapters"] = {"file": "text_adapters.safetensors", "r": 4, "alpha": 8,
                               "languages": languages if languages is not None else sorted(factors)}
    (d / "babel_lite.json").write_text(json.dumps(cfg))
    return d


def test_babel_lite_with_adapters_changes_only_their_languages(v2, tmp_path):
    from babelclip import create_model
    from babelclip.languages import get_language

    tower = v2.text_tower
    names = ("encoder.layer.11.attention.self.query", "encoder.layer.11.output.dense")
    factors = {"km": _factors(tower, 3, names)}
    m = create_model(str(_with_adapter(v2, tmp_path / "v21", factors)))
    km = ["ឆ្មា", "សត្វឆ្កែ"]
    for lang, texts, same in (("hi", ["कुत्ता", "नींबू"], True), ("km", km, False), ("de", ["Hund"], True),
                              ("en", ["a dog"], True), ("sw", ["mbwa"], True)):
        a, b = v2.encode_texts(texts, lang), m.encode_texts(texts, lang)
        assert (a == b).all() == same, lang
        assert abs(float((b * b).sum(1).max()) - 1) < 1e-5  # still unit vectors
    # the adapter's language equals v2's tower with the update merged by hand
    ref = _merged_by_hand_tower(v2, factors["km"], 8 / 4)
    with torch.inference_mode():
        want = ref.text_distribution(km, get_language("km"))
        got = m.text_distribution(km, get_language("km"))
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)
    assert m.fingerprint.key != v2.fingerprint.key and not m.text_language_agnostic
    # images never pass through an adapter
    assert (m.encode_images([_white()]) == v2.encode_images([_white()])).all()


def _merged_by_hand_tower(v2, factors, scale):
    from babelclip import create_model

    ref = create_model("babel-lite@v2")
    with torch.no_grad():
        for n, (a, b) in factors.items():
            lin = ref.text_tower.get_submodule(n)
            lin.weight = torch.nn.Parameter(lin.weight.detach() + scale * (b @ a), requires_grad=False)
    return ref


def _white():
    from PIL import Image

    return Image.new("RGB", (64, 64), "white")


def test_the_default_is_babel_lite_2_1_with_its_shipped_adapters(v2):
    """babel-lite 2.1 is the default; its adapters cover the languages its config names (none of
    mUSE's, never English), and a text outside them gets babel-lite 2's vector bit for bit."""
    from babelclip import create_model
    from babelclip.models.babel_lite.muse_text import MUSE_LANGUAGES

    d = create_model("babel-lite")
    assert d.fingerprint.key == create_model("babel-lite@v2.1").fingerprint.key != v2.fingerprint.key
    langs = d.language_lora.languages
    assert len(langs) == 20 and "km" in langs and not set(langs) & set(MUSE_LANGUAGES)
    assert list(langs) == d.config["text"]["adapters"]["languages"]
    for lang, texts in (("de", ["Eisbär"]), ("yo", ["ajá"]), ("en", ["a polar bear"])):
        assert (d.encode_texts(texts, lang) == v2.encode_texts(texts, lang)).all()
    assert (d.encode_texts(["ខ្លាឃ្មុំ"], "km") != v2.encode_texts(["ខ្លាឃ្មុំ"], "km")).any()


def test_a_config_that_disagrees_with_the_file_is_refused(v2, tmp_path):
    from babelclip import create_model

    names = ("encoder.layer.11.attention.self.query",)
    d = _with_adapter(v2, tmp_path / "bad", {"km": _factors(v2.text_tower, 4, names)}, languages=["km", "am"])
    with pytest.raises(LoraFileError, match=r"the config lists \['am', 'km'\]"):
        create_model(str(d))


def test_build_trains_guarded_adapters_and_packs_them(small_cldr_dir, tmp_path, monkeypatch):
    """Two steps on Swahili end to end: the guard drops an evaluation copy, only the top layers
    get an update, the packed model equals the trained peft adapter, and a resumed build with
    other settings or an English adapter is refused."""
    import numpy as np

    from babelclip import create_model
    from babelclip.train.adapters import load_adapters
    from babelclip.train.leakage import EvalSet
    from babelclip.train.sources import cldr_pairs
    from babelclip_tools import lite_corpus
    from babelclip_tools.lite_adapters import ADAPTERS_NAME, AdapterRecipe, build_v21

    names = [t for _, t in cldr_pairs("sw", small_cldr_dir, keywords=False).pairs]
    copied = next(n for n in names if len(n.split()) >= 4)  # a long name that is also an "evaluation text"
    monkeypatch.setattr(lite_corpus, "guard_sets", lambda: [EvalSet("tuxpaint", {"sw": {"s1": copied}})])
    recipe = AdapterRecipe(steps=2, warmup_steps=0, lr=5e-2, top_layers=2)
    out = build_v21(tmp_path / "m", ["sw"], recipe, workers=0, annotations_dir=small_cldr_dir)
    cfg = json.loads((out / "babel_lite.json").read_text())
    ad = cfg["text"]["adapters"]
    assert ad["languages"] == ["sw"] and ad["r"] == 8 and ad["file"] == ADAPTERS_NAME
    run = ad["training"]["runs"][0]
    assert run["leakage"] == {"n_in": len(names), "n_kept": len(names) - 1}
    factors = language_factors(out / ADAPTERS_NAME)["sw"]
    assert factors and all(n.startswith(("encoder.layer.10.", "encoder.layer.11.")) for n in factors)
    m = create_model(str(out))
    peft_side = load_adapters(create_model("babel-lite@v2"), [tmp_path / "m" / "work" / "sw"])
    sw = ["mbwa mweupe", "paka"]
    np.testing.assert_allclose(m.encode_texts(sw, "sw"), peft_side.encode_texts(sw, "sw"), atol=1e-4)  # fp16 factors
    with pytest.raises(ValueError, match="other settings"):
        build_v21(tmp_path / "m", ["sw"], AdapterRecipe(steps=3, warmup_steps=0, top_layers=2), workers=0,
                  annotations_dir=small_cldr_dir)
    with pytest.raises(ValueError, match="no English adapter"):
        build_v21(tmp_path / "e", ["en", "sw"], recipe, workers=0)
