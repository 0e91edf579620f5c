"""transformers adapter (CLIP, SigLIP, AltCLIP, Chinese-CLIP) on tiny random models, offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from _tiny_hf import KINDS, TEXTS, tiny_clip_dir, tiny_images

import babelclip
from babelclip import WeightsNotFoundError, create_model

MODEL_CLASSES = {
    "clip": "CLIPModel",
    "siglip": "SiglipModel",
    "altclip": "AltCLIPModel",
    "chinese_clip": "ChineseCLIPModel",
}


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf")
    return {kind: tiny_clip_dir(root, kind) for kind in KINDS}


@pytest.fixture(scope="module")
def encoders(dirs):
    return {kind: create_model(str(d)) for kind, d in dirs.items()}


def _normalised(x: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(x.float(), dim=-1).numpy()


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_norms_and_determinism(encoders, kind):
    enc = encoders[kind]
    assert enc.fingerprint.extra == (("model_class", MODEL_CLASSES[kind]),)
    texts = enc.encode_texts(TEXTS, "en")
    images = enc.encode_images(tiny_images())
    assert texts.shape == (len(TEXTS), enc.dim) and images.shape == (5, enc.dim)
    assert texts.dtype == np.float32 and images.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(texts, enc.encode_texts(TEXTS, "en"))
    np.testing.assert_array_equal(images, enc.encode_images(tiny_images()))
    # texts differ from each other (a broken pooling would give one vector for all)
    assert np.abs(texts[0] - texts[1]).max() > 1e-4  # a random tiny AltCLIP gives close but distinct vectors


@pytest.mark.parametrize("kind", KINDS)
def test_batch_invariance(encoders, kind):
    enc = encoders[kind]
    batched = enc.encode_texts(TEXTS, "de", batch_size=len(TEXTS))
    single = np.concatenate([enc.encode_texts([t], "de") for t in TEXTS])
    np.testing.assert_allclose(single, batched, atol=1e-5)
    ims = tiny_images()
    np.testing.assert_allclose(
        enc.encode_images(ims, batch_size=1), enc.encode_images(ims, batch_size=5), atol=1e-5
    )


@pytest.mark.parametrize("kind", KINDS)
def test_matches_transformers_reference(dirs, encoders, kind):
    """Our embeddings equal transformers' own pipeline: processor pixels, tokenizer, get_*_features."""
    d, enc = dirs[kind], encoders[kind]
    model = getattr(transformers, MODEL_CLASSES[kind]).from_pretrained(str(d)).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(d))
    proc = transformers.AutoImageProcessor.from_pretrained(str(d))
    ims = tiny_images()
    with torch.no_grad():
        pixels = proc(images=ims, return_tensors="pt")["pixel_values"]
        ref_img = model.get_image_features(pixel_values=pixels).pooler_output
        if kind == "siglip":  # the HF docs' recipe for SigLIP: pad to max_length, ids only
            t = tok(
                TEXTS, padding="max_length", truncation=True, max_length=16, return_tensors="pt"
            )
            ref_txt = model.get_text_features(input_ids=t["input_ids"]).pooler_output
        else:
            t = tok(TEXTS, padding=True, truncation=True, max_length=16, return_tensors="pt")
            ref_txt = model.get_text_features(
                input_ids=t["input_ids"], attention_mask=t["attention_mask"]
            ).pooler_output
    np.testing.assert_allclose(enc.encode_images(ims), _normalised(ref_img), atol=1e-5)
    np.testing.assert_allclose(enc.encode_texts(TEXTS, "en"), _normalised(ref_txt), atol=1e-5)


def test_siglip_pads_to_max_length(encoders, dirs):
    """SigLIP reads the last position: padding to the longest text would change the embedding."""
    enc = encoders["siglip"]
    assert enc.padding == "max_length" and "max_length" in enc.fingerprint.preprocess
    model = transformers.SiglipModel.from_pretrained(str(dirs["siglip"])).eval()
    t = enc.tokenizer(["a photo of a cat"], return_tensors="pt")  # no padding
    with torch.no_grad():
        unpadded = _normalised(model.get_text_features(input_ids=t["input_ids"]).pooler_output)
    assert np.abs(enc.encode_texts(["a photo of a cat"], "en") - unpadded).max() > 1e-4


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_preprocess_equals_hf_processor(encoders, dirs, kind):
    from PIL import Image

    enc = encoders[kind]
    proc = transformers.AutoImageProcessor.from_pretrained(str(dirs[kind]))
    ims = tiny_images(6)
    ims.append(ims[0].convert("L"))  # grayscale → RGB, as the processor does
    for im in ims:
        ours = enc.preprocess(im)
        ref = proc(images=im.convert("RGB"), return_tensors="pt")["pixel_values"][0]
        assert ours.shape == (3, 32, 32)
        torch.testing.assert_close(ours, ref, rtol=0, atol=0)
    # the pixels are normalised, not raw 0..255
    assert float(enc.preprocess(Image.new("RGB", (40, 40), (255, 255, 255))).max()) < 3


def test_fingerprint_tracks_weights_preprocessing_and_dtype(tmp_path, dirs, encoders):
    base = encoders["clip"].fingerprint
    assert create_model(str(dirs["clip"])).fingerprint == base  # stable across loads
    other_seed = create_model(str(tiny_clip_dir(tmp_path, "clip", seed=1))).fingerprint
    assert other_seed.weights != base.weights and other_seed.key != base.key
    # same weights, different normalisation constants
    copy = tmp_path / "mean"
    shutil.copytree(dirs["clip"], copy)
    cfg = json.loads((copy / "preprocessor_config.json").read_text())
    cfg["image_mean"] = [0.5, 0.5, 0.5]
    (copy / "preprocessor_config.json").write_text(json.dumps(cfg))
    fp = create_model(str(copy)).fingerprint
    assert fp.weights == base.weights and fp.preprocess != base.preprocess and fp.key != base.key
    half = create_model(str(dirs["clip"]), dtype="bfloat16")
    assert half.fingerprint.dtype == "bfloat16" and half.fingerprint.key != base.key
    emb = half.encode_texts(["a photo of a cat"], "en")
    assert emb.dtype == np.float32 and abs(float(np.linalg.norm(emb)) - 1) < 1e-3
    # a different max length changes text preprocessing
    assert create_model(str(dirs["clip"]), max_length=8).fingerprint.key != base.key


def test_random_init_is_seeded(dirs, encoders):
    a = create_model(str(dirs["clip"]), pretrained=False, seed=0)
    b = create_model(str(dirs["clip"]), pretrained=False, seed=0)
    c = create_model(str(dirs["clip"]), pretrained=False, seed=1)
    assert a.fingerprint.weights.startswith("random:") and a.fingerprint == b.fingerprint
    assert c.fingerprint.weights != a.fingerprint.weights != encoders["clip"].fingerprint.weights
    np.testing.assert_array_equal(a.encode_texts(TEXTS, "en"), b.encode_texts(TEXTS, "en"))
    assert np.abs(a.encode_texts(TEXTS, "en") - c.encode_texts(TEXTS, "en")).max() > 1e-3


def test_unsupported_model_type_is_named(tmp_path):
    d = tmp_path / "bert"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match=r"'bert'.*altclip, chinese_clip, clip, siglip"):
        create_model(str(d), pretrained=False)


@pytest.fixture
def offline_empty_cache(tmp_path, monkeypatch):
    """HF_HUB_OFFLINE=1 and an empty cache; every snapshot_download call is recorded."""
    import huggingface_hub
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    calls: list[dict] = []
    real = huggingface_hub.snapshot_download

    def recording(repo_id, **kw):
        calls.append(dict(kw, repo_id=repo_id))
        if not kw.get("local_files_only"):
            raise AssertionError("a network download was attempted in offline mode")
        return real(repo_id, **kw)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", recording)
    return cache, calls


def test_offline_missing_weights_fail_at_once_with_instructions(offline_empty_cache):
    cache, calls = offline_empty_cache
    with pytest.raises(WeightsNotFoundError) as err:
        create_model("hf:google/siglip-base-patch16-256-multilingual")
    msg = str(err.value)
    for needle in (
        "google/siglip-base-patch16-256-multilingual",
        "HF_HUB_OFFLINE",
        "local directory",
        str(cache),
        "network",
    ):
        assert needle in msg, needle
    assert [c["local_files_only"] for c in calls] == [
        True
    ]  # one cache lookup, no retry, no network
    assert err.value.__cause__ is None and (
        err.value.__context__ is None or err.value.__suppress_context__
    )


def test_network_failure_is_converted_once(tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    attempts = []

    def fake(repo_id, **kw):
        attempts.append(kw.get("local_files_only", False))
        if kw.get("local_files_only"):
            raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")
        raise ConnectionError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)

    def fake_info(repo_id, **kw):
        attempts.append("info")
        raise ConnectionError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub, "model_info", fake_info)
    with pytest.raises(WeightsNotFoundError, match="Name or service not known") as err:
        create_model("hf:openai/clip-vit-base-patch32")
    assert attempts == [True, "info"]  # one cache lookup, one request to the hub, no retries
    assert "HF_HUB_OFFLINE=1" in str(err.value)
    assert (
        err.value.__cause__ is None and err.value.__suppress_context__
    )  # the hub's traceback is not chained


def test_loads_from_a_prefilled_cache_offline(offline_empty_cache, dirs):
    """A hub name resolves from the cache alone; the weights identity is the cached commit."""
    cache, calls = offline_empty_cache
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--acme--tiny-clip"
    shutil.copytree(dirs["clip"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    enc = create_model("hf:acme/tiny-clip")
    assert enc.fingerprint.weights == f"hf:acme/tiny-clip@{commit}"
    assert enc.fingerprint.name == "acme/tiny-clip"
    np.testing.assert_allclose(
        enc.encode_texts(TEXTS, "en"),
        create_model(str(dirs["clip"])).encode_texts(TEXTS, "en"),
        atol=1e-6,
    )
    assert all(c["local_files_only"] for c in calls)


def test_bad_names_are_explained():
    with pytest.raises(
        WeightsNotFoundError, match="neither an existing local directory nor a hub repo id"
    ):
        create_model("hf:/no/such/dir")
    with pytest.raises(
        WeightsNotFoundError, match="neither an existing local directory nor a hub repo id"
    ):
        babelclip.create_model("hf:not a repo id")


def test_single_string_rejected(encoders):
    with pytest.raises(TypeError, match="sequence of strings"):
        encoders["clip"].encode_texts("a photo of a cat", "en")
