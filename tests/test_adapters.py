"""A model with per-language adapters: routing, English untouched, wrong-base adapters refused."""
from __future__ import annotations

import json

import numpy as np
import pytest
from _tiny_text import PAIRS_SW, TinyTextEncoder

from babelclip.languages import get_language
from babelclip.train.adapters import AdapterMismatchError, load_adapters, load_full_finetune
from babelclip.train.distill import ADAPTER_META, DistillConfig, distill
from babelclip.train.parallel import ParallelCorpus
from babelclip.train.text_side import trainable_text

TEXTS = ["a dog", "mbwa bustanini", "猫"]


def _train(out, lang: str, seed: int, method: str = "lora"):
    cfg = DistillConfig(method=method, steps=3, batch_size=8, lr=2e-2 if method == "lora" else 1e-3,
                        checkpoint_every=3, progress=False, lora_r=4, seed=seed)
    distill(trainable_text(TinyTextEncoder()), ParallelCorpus(get_language(lang), PAIRS_SW, "toy"), cfg, out)
    return out


@pytest.fixture(scope="module")
def adapter_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return {"de": _train(root / "de", "de", 0), "ja": _train(root / "ja", "ja", 1)}


def test_routing_and_english_bitwise_unchanged(adapter_dirs):
    base = TinyTextEncoder()
    ref = {lang: base.encode_texts(TEXTS, lang) for lang in ("en", "de", "ja", "zh-Hans")}
    model = load_adapters(TinyTextEncoder(), [adapter_dirs["de"], adapter_dirs["ja"]])
    assert np.array_equal(model.encode_texts(TEXTS, "en"), ref["en"])  # bitwise, not approximately
    assert np.array_equal(model.encode_texts(TEXTS, "zh-Hans"), ref["zh-Hans"])  # no adapter: base model
    de, ja = model.encode_texts(TEXTS, "deu_Latn"), model.encode_texts(TEXTS, "ja")  # any code routes
    assert not np.allclose(de, ref["de"], atol=1e-4) and not np.allclose(ja, ref["ja"], atol=1e-4)
    assert not np.allclose(de, ja, atol=1e-4)  # each language gets its own adapter
    np.testing.assert_allclose(np.linalg.norm(de, axis=1), 1.0, rtol=1e-5)
    # English after adapted calls is still the base model's (no adapter left switched on).
    assert np.array_equal(model.encode_texts(TEXTS, "en"), ref["en"])


def test_fingerprint_includes_adapter_hashes(adapter_dirs):
    base = TinyTextEncoder()
    one = load_adapters(TinyTextEncoder(), [adapter_dirs["de"]])
    two = load_adapters(TinyTextEncoder(), [adapter_dirs["de"], adapter_dirs["ja"]])
    keys = {base.fingerprint.key, one.fingerprint.key, two.fingerprint.key}
    assert len(keys) == 3
    sha = json.loads((adapter_dirs["de"] / ADAPTER_META).read_text())["weights_sha256"]
    assert f"de:{sha[:16]}" in dict(two.fingerprint.extra)["adapters"]


def test_adapter_for_another_base_model_is_refused(adapter_dirs):
    other = TinyTextEncoder(seed=7)
    with pytest.raises(AdapterMismatchError, match=r"trained for base model tiny:tiny-text-0 .* not for tiny:tiny-text-7"):
        load_adapters(other, [adapter_dirs["de"]])


def test_duplicate_language_and_missing_meta(adapter_dirs, tmp_path):
    with pytest.raises(ValueError, match="two adapters for de"):
        load_adapters(TinyTextEncoder(), [adapter_dirs["de"], adapter_dirs["de"]])
    with pytest.raises(FileNotFoundError, match=ADAPTER_META):
        load_adapters(TinyTextEncoder(), [tmp_path])


def test_full_finetune_loads_and_is_not_an_adapter(tmp_path):
    d = _train(tmp_path / "full", "de", 0, method="full")
    with pytest.raises(ValueError, match="full fine-tune"):
        load_adapters(TinyTextEncoder(), [d])
    base = TinyTextEncoder()
    before = base.encode_texts(TEXTS, "de")
    tuned = load_full_finetune(TinyTextEncoder(), d)
    assert not np.allclose(tuned.encode_texts(TEXTS, "de"), before, atol=1e-5)
    assert tuned.fingerprint.key != base.fingerprint.key


FAMILIES = ["hf-clip", "openclip-xlmr", "openclip-clip"]


def _family_model(kind: str, root):
    """A tiny random model of a zoo family, loaded through create_model like a real one."""
    import babelclip

    if kind == "hf-clip":
        from _tiny_hf import tiny_clip_dir

        path = root / "hf" if (root / "hf").exists() else tiny_clip_dir(root, "clip", name="hf")
    else:
        from _tiny_openclip import tiny_openclip_model_dir

        path = root / f"tiny-openclip-{kind.split('-')[1]}"
        if not path.exists():
            tiny_openclip_model_dir(root, kind.split("-")[1])
    return babelclip.create_model(str(path))


@pytest.mark.parametrize("kind", FAMILIES)
def test_zoo_families_train_and_route(kind, tmp_path):
    """The text-side glue of hf and open_clip towers: LoRA attaches, trains, routes; English bitwise."""
    enc = _family_model(kind, tmp_path)
    module = trainable_text(enc).text_module()
    assert module is (enc.model.text_model if kind == "hf-clip" else enc.model.text if kind == "openclip-xlmr" else enc.model.transformer)
    words = ["a cat", "ein Hund", "das Foto"]
    ref_en, ref_de = enc.encode_texts(words, "en"), enc.encode_texts(words, "de")
    cfg = DistillConfig(steps=3, batch_size=4, lr=5e-2, checkpoint_every=3, progress=False, lora_r=1, max_trainable_fraction=0.2)
    corpus = ParallelCorpus(get_language("de"), [("a cat", "eine Katze"), ("a dog", "ein Hund"), ("the photo", "das Foto"), ("a car", "ein Auto")], "toy")
    res = distill(trainable_text(enc), corpus, cfg, tmp_path / "ad")
    assert 0 < res.trainable_params <= 0.2 * res.total_params
    model = load_adapters(_family_model(kind, tmp_path), [tmp_path / "ad"])
    assert np.array_equal(model.encode_texts(words, "en"), ref_en)
    assert not np.allclose(model.encode_texts(words, "de"), ref_de, atol=1e-5)


def test_adapted_models_never_share_text_embeddings_across_languages():
    # babel-lite's text side ignores the language, so the cache shares a string's embedding
    # across languages; once adapters route by language that sharing would be wrong.
    from babelclip.models.babel_lite.model import BabelLite
    from babelclip.train.adapters import AdaptedEncoder

    assert BabelLite.text_language_agnostic is True
    assert AdaptedEncoder.text_language_agnostic is False
