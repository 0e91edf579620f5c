"""M-CLIP and sentence-transformers adapters on tiny random models of the real architectures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("sentence_transformers")

from _tiny_hf import TEXTS, tiny_clip_dir, tiny_images, tiny_mclip_dir, tiny_st_dirs

from babelclip import WeightsNotFoundError, create_model
from babelclip.models.registry import split_name


@pytest.fixture(scope="module")
def mclip_dir(tmp_path_factory) -> Path:
    return tiny_mclip_dir(tmp_path_factory.mktemp("mclip"))


@pytest.fixture(scope="module")
def mclip(mclip_dir):
    return create_model(str(mclip_dir))


@pytest.fixture(scope="module")
def st_dirs(tmp_path_factory) -> tuple[Path, Path]:
    return tiny_st_dirs(tmp_path_factory.mktemp("st"))


@pytest.fixture(scope="module")
def st(st_dirs):
    text_dir, image_dir = st_dirs
    return create_model(str(text_dir), image_model=str(image_dir))


def _check_encoder(enc, lang="de"):
    texts = enc.encode_texts(TEXTS, lang)
    ims = tiny_images()
    images = enc.encode_images(ims)
    assert texts.shape == (len(TEXTS), enc.dim) and images.shape == (len(ims), enc.dim)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(texts, enc.encode_texts(TEXTS, lang))  # deterministic
    single = np.concatenate([enc.encode_texts([t], lang) for t in TEXTS])
    np.testing.assert_allclose(single, texts, atol=1e-5)  # batch invariant
    np.testing.assert_allclose(enc.encode_images(ims, batch_size=1), images, atol=1e-5)
    assert np.abs(texts[0] - texts[1]).max() > 1e-4


# -- M-CLIP ------------------------------------------------------------------------------------
def test_mclip_encoder_contract(mclip):
    assert mclip.fingerprint.family == "mclip" and mclip.dim == 24
    _check_encoder(mclip)


def _mclip_reference(text_dir: Path, head_file: Path) -> tuple[np.ndarray, np.ndarray]:
    """Carlsson et al.'s text recipe written out by hand: mean over the mask, then the linear head."""
    from safetensors.torch import load_file

    tok = transformers.AutoTokenizer.from_pretrained(str(text_dir))
    model = transformers.AutoModel.from_pretrained(str(text_dir)).eval()
    head = load_file(str(head_file))
    t = tok(TEXTS, padding=True, truncation=True, max_length=16, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**t).last_hidden_state
        m = t["attention_mask"].unsqueeze(-1).float()
        raw = ((hidden * m).sum(1) / m.sum(1)) @ head["weight"].T + head["bias"]
    return raw.numpy(), torch.nn.functional.normalize(raw, dim=-1).numpy()


def test_mclip_text_is_mean_pooled_projected_and_normalised(mclip, mclip_dir):
    raw, normalised = _mclip_reference(mclip_dir / "text", mclip_dir / "head.safetensors")
    assert (
        np.abs(np.linalg.norm(raw, axis=1) - 1).max() > 0.05
    )  # the published output is not unit norm...
    np.testing.assert_allclose(mclip.encode_texts(TEXTS, "en"), normalised, atol=1e-5)  # ...ours is


def test_mclip_text_runs_packed_at_inference_and_unpacked_under_autograd(mclip, monkeypatch):
    """The reference comparison above runs through the packed tower (no padding computed); with
    autograd on (training) the transformer's own forward runs."""
    import babelclip.models.packed_bert as packed
    from babelclip.languages import get_language

    en = get_language("en")
    calls = []
    layers = packed.packed_layers
    monkeypatch.setattr(packed, "packed_layers", lambda *a: calls.append(1) or layers(*a))
    with torch.inference_mode():
        fast = mclip._text_features(TEXTS, en)
    assert calls
    calls.clear()
    with torch.enable_grad():
        slow = mclip._text_features(TEXTS, en)
    assert not calls
    torch.testing.assert_close(fast, slow.detach(), atol=2e-6, rtol=1e-5)


def test_mclip_images_come_from_the_paired_tower(mclip, mclip_dir):
    tower = create_model(str(mclip_dir / "image"))
    ims = tiny_images()
    pixels = torch.stack([mclip.preprocess(im) for im in ims])
    np.testing.assert_allclose(mclip.encode_images(ims), tower.encode_pixels(pixels), atol=1e-6)
    assert tower.fingerprint.weights in mclip.fingerprint.weights
    own = create_model(str(mclip_dir), image_preprocess="tower")  # the tower's own processor
    np.testing.assert_allclose(own.encode_images(ims), tower.encode_images(ims), atol=1e-6)
    assert own.fingerprint.key != mclip.fingerprint.key


def test_mclip_pairs_transformers_towers_with_the_reference_preprocessing(mclip, mclip_dir):
    """As M-CLIP's, CLIP_benchmark's and Babel-ImageNet's code: OpenAI CLIP's torchvision
    pipeline (open_clip's, here the reference), not transformers' processor, whose centre crop
    starts a pixel off on odd sizes."""
    from open_clip.transform import image_transform
    from PIL import Image

    proc = create_model(str(mclip_dir / "image")).image_processor
    size = int(proc.crop_size["height"])
    reference = image_transform(size, is_train=False, mean=proc.image_mean, std=proc.image_std,
                                interpolation="bicubic", resize_mode="shortest")
    rng = np.random.default_rng(0)
    odd = Image.fromarray(rng.integers(0, 255, (size + 7, size + 3, 3), dtype=np.uint8))
    for im in [odd, odd.convert("L"), *tiny_images(2)]:
        assert torch.equal(mclip.preprocess(im), reference(im))
    own = proc(images=odd, return_tensors="pt")["pixel_values"][0]
    assert not torch.allclose(mclip.preprocess(odd), own, atol=1e-3)  # the pairing matters here
    assert "openai-clip" in mclip.fingerprint.preprocess
    with pytest.raises(ValueError, match="image_preprocess='squash'; allowed: reference, tower"):
        create_model(str(mclip_dir), image_preprocess="squash")


def _published_snapshot(snap: Path, mclip_dir: Path) -> Path:
    """The layout of a published M-CLIP hub repo: config.json (model_type M-CLIP) + one state dict."""
    from safetensors.torch import load_file

    snap.mkdir(parents=True)
    text = transformers.AutoModel.from_pretrained(str(mclip_dir / "text"))
    head = load_file(str(mclip_dir / "head.safetensors"))
    state = {f"transformer.{k}": v for k, v in text.state_dict().items()}
    state.update({f"LinearTransformation.{k}": v for k, v in head.items()})
    torch.save(state, snap / "pytorch_model.bin")
    transformers.AutoTokenizer.from_pretrained(str(mclip_dir / "text")).save_pretrained(snap)
    (snap / "config.json").write_text(
        json.dumps(
            {
                "model_type": "M-CLIP",
                "modelBase": str(mclip_dir / "text"),
                "transformerDimensions": 32,
                "numDims": 24,
            }
        )
    )
    return snap


def test_mclip_published_layout(tmp_path, mclip, mclip_dir):
    """A local copy of a hub snapshot gives the same model as babelclip's own layout."""
    snap = _published_snapshot(tmp_path / "XLM-Roberta-Tiny", mclip_dir)
    # M-CLIP recognises its published layout (config.json of model_type M-CLIP) before hf is asked
    assert split_name(str(snap))[0] == "mclip"
    with pytest.raises(ValueError, match="image_model"):
        create_model(str(snap))
    enc = create_model(str(snap), image_model=str(mclip_dir / "image"))
    assert enc.fingerprint.family == "mclip"
    np.testing.assert_allclose(
        enc.encode_texts(TEXTS, "en"), mclip.encode_texts(TEXTS, "en"), atol=1e-6
    )
    assert (
        enc.fingerprint.weights != mclip.fingerprint.weights
    )  # different files, different identity record


def test_mclip_hub_name_uses_the_pairing_table(tmp_path, monkeypatch, mclip, mclip_dir):
    """From a pre-filled cache, offline: the hub id picks its CLIP tower from PAIRINGS."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    commit = "f" * 40
    repo = tmp_path / "cache" / "models--M-CLIP--XLM-Roberta-Large-Vit-B-32"
    _published_snapshot(repo / "snapshots" / commit, mclip_dir)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for name in ("mclip:M-CLIP/XLM-Roberta-Large-Vit-B-32", "hf:M-CLIP/XLM-Roberta-Large-Vit-B-32"):
        # the paired tower (OpenAI ViT-B/32 via transformers) is not cached: its name is in the error
        with pytest.raises(WeightsNotFoundError, match="openai/clip-vit-base-patch32"):
            create_model(name)
    enc = create_model(
        "mclip:M-CLIP/XLM-Roberta-Large-Vit-B-32", image_model=str(mclip_dir / "image")
    )
    assert enc.fingerprint.name == "M-CLIP/XLM-Roberta-Large-Vit-B-32"
    assert enc.fingerprint.weights.startswith(f"text=hf:M-CLIP/XLM-Roberta-Large-Vit-B-32@{commit}")
    np.testing.assert_allclose(
        enc.encode_texts(TEXTS, "en"), mclip.encode_texts(TEXTS, "en"), atol=1e-6
    )


def test_mclip_fingerprint_and_random_init(tmp_path, mclip, mclip_dir):
    assert create_model(str(mclip_dir)).fingerprint == mclip.fingerprint
    rnd = create_model(str(mclip_dir), pretrained=False, seed=3)
    assert (
        rnd.fingerprint.weights.startswith("text=random:seed=3")
        and rnd.fingerprint.key != mclip.fingerprint.key
    )
    other = create_model(str(tiny_mclip_dir(tmp_path, seed=1)))
    assert other.fingerprint.weights != mclip.fingerprint.weights
    assert create_model(str(mclip_dir), dtype="bfloat16").fingerprint.key != mclip.fingerprint.key


def test_mclip_dimension_mismatch_is_explained(tmp_path, mclip_dir):
    siglip = tiny_clip_dir(tmp_path, "siglip")  # 32-dim, the head gives 24
    with pytest.raises(ValueError, match="24 dims but the image tower"):
        create_model(str(mclip_dir), image_model=str(siglip))


def test_pairings_are_valid_model_names():
    from babelclip.models import mclip, sentence_transformers

    for text, image in mclip.PAIRINGS.items():
        family, ident = split_name(image)
        assert family in ("hf", "openclip") and ident, (text, image)
    for text, image in sentence_transformers.PAIRINGS.items():
        assert text.startswith("sentence-transformers/") and image.count("/") == 1


def test_zoo_lists_only_mclip_models_the_loader_reads():
    """The legacy M-CLIP format (M-BERT-Base-ViT-B: a BERT config and an external linear head) is
    not read: the zoo lists only published M-CLIP repos of the current format with a known tower."""
    import babelclip
    from babelclip.models import mclip

    listed = [n.split(":", 1)[1] for n in babelclip.list_models("mclip:*")]
    assert listed and all(name in mclip.PAIRINGS for name in listed)
    assert "M-CLIP/M-BERT-Base-ViT-B" not in listed


# -- sentence-transformers -----------------------------------------------------------------------
def test_st_encoder_contract(st):
    assert st.fingerprint.family == "st" and st.dim == 24
    _check_encoder(st, lang="ja")


def test_st_matches_sentence_transformers_encode(st, st_dirs):
    from sentence_transformers import SentenceTransformer

    text_dir, image_dir = st_dirs
    text_model = SentenceTransformer(str(text_dir), device="cpu")
    image_model = SentenceTransformer(str(image_dir), device="cpu")
    raw = text_model.encode(TEXTS, convert_to_numpy=True)
    assert (
        np.abs(np.linalg.norm(raw, axis=1) - 1).max() > 0.05
    )  # their default output is not normalised
    np.testing.assert_allclose(
        st.encode_texts(TEXTS, "en"), raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-5
    )
    ims = tiny_images()
    ref = image_model.encode(ims, convert_to_numpy=True, normalize_embeddings=True)
    np.testing.assert_allclose(st.encode_images(ims), ref, atol=1e-5)


def test_st_clip_model_is_its_own_image_model(st_dirs):
    _, image_dir = st_dirs
    enc = create_model(str(image_dir))
    assert "image=" not in enc.fingerprint.weights
    _check_encoder(enc, lang="en")


def test_st_needs_a_pairing_for_text_only_models(st_dirs):
    text_dir, _ = st_dirs
    with pytest.raises(ValueError, match="image_model="):
        create_model(str(text_dir))


def test_st_fingerprint_tracks_weights_and_pooling(tmp_path, st, st_dirs):
    text_dir, image_dir = st_dirs
    assert create_model(str(text_dir), image_model=str(image_dir)).fingerprint == st.fingerprint
    rnd = create_model(str(text_dir), image_model=str(image_dir), pretrained=False)
    assert (
        rnd.fingerprint.weights.startswith("text=random:")
        and rnd.fingerprint.key != st.fingerprint.key
    )
    # same weights, CLS pooling instead of mean: a different model
    cls_dir = tmp_path / "cls"
    shutil.copytree(text_dir, cls_dir)
    pooling_cfg = next(cls_dir.glob("*Pooling/config.json"))
    cfg = json.loads(pooling_cfg.read_text())
    cfg["pooling_mode"] = "cls"
    cfg = {k: v for k, v in cfg.items() if not k.startswith("pooling_mode_")}
    pooling_cfg.write_text(json.dumps(cfg))
    cls = create_model(str(cls_dir), image_model=str(image_dir))
    assert (
        cls.fingerprint.weights == st.fingerprint.weights
        and cls.fingerprint.key != st.fingerprint.key
    )


# -- missing weights -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "mclip:M-CLIP/XLM-Roberta-Large-Vit-B-32",
        "st:sentence-transformers/clip-ViT-B-32-multilingual-v1",
    ],
)
def test_offline_missing_weights(tmp_path, monkeypatch, name):
    import huggingface_hub
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    real, calls = huggingface_hub.snapshot_download, []

    def recording(repo_id, **kw):
        calls.append(kw.get("local_files_only", False))
        return real(repo_id, **kw)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", recording)
    with pytest.raises(WeightsNotFoundError, match="HF_HUB_OFFLINE") as err:
        create_model(name)
    assert name.split(":", 1)[1] in str(err.value) and "local directory" in str(err.value)
    assert calls == [True]
