"""The open_clip family through the public API, on tiny random models of real architectures."""

from __future__ import annotations

import hashlib
import json
import socket

import numpy as np
import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from _tiny_openclip import (
    captured_text_ids,
    tiny_model_cfg,
    tiny_openclip_model_dir,
    write_hf_text_dir,
)

import babelclip
from babelclip import Language, WeightsNotFoundError, create_model, get_language
from babelclip.models.openclip import CONFIG_DIR

TEXTS = [
    "a cat",
    "Ein Hund und ein anderer Hund",
    "dog",
    "ein sehr langer Satz mit vielen Worten darin",
]
ZH = ["一张猫的照片", "狗"]


def _images():
    from PIL import Image

    return [
        Image.new("RGB", (40 + 7 * i, 30 + 3 * i), (60 * i, 20 + i, 200 - 30 * i)) for i in range(3)
    ]


def _unit(x: np.ndarray) -> np.ndarray:
    return torch.nn.functional.normalize(torch.as_tensor(x).float(), dim=-1).numpy()


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {kind: tiny_openclip_model_dir(root, kind) for kind in ("clip", "nllb", "xlmr")}


@pytest.fixture(scope="module")
def clip():
    return create_model("openclip:tiny-vit-text", pretrained=False)


@pytest.fixture(scope="module")
def bf16():
    return create_model("openclip:tiny-vit-text", pretrained=False, dtype="bfloat16")


@pytest.fixture(scope="module")
def local(dirs):
    """One encoder per tiny model directory, built on first use and shared by the tests."""
    cache = {}

    def get(kind: str):
        if kind not in cache:
            cache[kind] = create_model(str(dirs[kind]))
        return cache[kind]

    return get


@pytest.fixture(scope="module")
def nllb(local):
    return local("nllb")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to reach the hub fails the test; returns the list of attempted calls."""
    import huggingface_hub

    calls = []

    def boom(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"network touched: {args}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", boom)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", boom)
    monkeypatch.setattr(socket, "create_connection", boom)
    return calls


# -- shapes, norms, determinism, batch invariance -----------------------------------------------
@pytest.mark.parametrize("kind", ["clip", "nllb", "xlmr"])
def test_unit_norm_float32_shapes(local, kind):
    enc = local(kind)
    t = enc.encode_texts(TEXTS, "de")
    i = enc.encode_images(_images())
    for x, n in ((t, len(TEXTS)), (i, 3)):
        assert x.dtype == np.float32 and x.shape == (n, enc.dim) == (n, 32)
        np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert enc.encode_texts([], "de").shape == (0, 32)


def test_deterministic_and_seeded(clip):
    again = create_model("openclip:tiny-vit-text", pretrained=False)
    np.testing.assert_array_equal(clip.encode_texts(TEXTS, "en"), again.encode_texts(TEXTS, "en"))
    np.testing.assert_array_equal(clip.encode_images(_images()), again.encode_images(_images()))
    other = create_model("openclip:tiny-vit-text", pretrained=False, seed=1)
    assert other.fingerprint.weights != clip.fingerprint.weights
    assert np.abs(other.encode_texts(TEXTS, "en") - clip.encode_texts(TEXTS, "en")).max() > 1e-2


@pytest.mark.parametrize("kind", ["clip", "nllb", "xlmr"])
def test_batch_invariance(local, kind):
    enc = local(kind)
    batched = enc.encode_texts(TEXTS, "de")
    single = np.concatenate([enc.encode_texts([t], "de") for t in TEXTS])
    np.testing.assert_allclose(single, batched, atol=1e-5)
    np.testing.assert_allclose(enc.encode_texts(TEXTS, "de", batch_size=3), batched, atol=1e-5)
    ims = _images()
    np.testing.assert_allclose(
        np.concatenate([enc.encode_images([im]) for im in ims]), enc.encode_images(ims), atol=1e-5
    )


# -- batch trimming -----------------------------------------------------------------------------
def test_causal_clip_trimmed_equals_full_context(clip):
    lang = get_language("en")
    assert clip.trim_clip
    assert clip.tokenize(TEXTS, lang).shape[1] < clip.context_length  # it did trim
    ids = clip.tokenizer(TEXTS)  # open_clip's own, padded to 32
    assert ids.shape[1] == clip.context_length
    with torch.inference_mode():
        reference = _unit(clip.model.encode_text(ids))
    np.testing.assert_allclose(clip.encode_texts(TEXTS, "en"), reference, atol=1e-5)
    untrimmed = create_model("openclip:tiny-vit-text", pretrained=False, trim=False)
    assert (
        not untrimmed.trim_clip and untrimmed.tokenize(TEXTS, lang).shape[1] == clip.context_length
    )
    np.testing.assert_allclose(untrimmed.encode_texts(TEXTS, "en"), reference, atol=1e-5)


@pytest.mark.parametrize("kind", ["nllb", "xlmr"])
def test_hf_tower_trimmed_equals_full_context(dirs, local, kind):
    trimmed = local(kind)
    full = create_model(str(dirs[kind]), trim=False)
    lang = get_language("de")
    assert trimmed.trim_hf and not full.trim_hf
    assert (
        trimmed.tokenize(TEXTS[:1], lang).shape[1] < full.tokenize(TEXTS[:1], lang).shape[1] == 24
    )
    np.testing.assert_allclose(
        trimmed.encode_texts(TEXTS, "de"), full.encode_texts(TEXTS, "de"), atol=1e-5
    )


def test_bidirectional_last_token_tower_is_not_trimmed():
    enc = create_model("openclip:tiny-vit-bidir-text", pretrained=False)
    ids = enc.tokenize(TEXTS, get_language("en"))
    assert not enc.trim_clip and ids.shape[1] == enc.context_length
    # Why: pooling the last position of a bidirectional tower depends on the padding length.
    n = int((ids != 0).sum(1).max())
    with torch.inference_mode():
        full, cut = enc.model.encode_text(ids), enc.model.encode_text(ids[:, :n])
    assert np.abs(_unit(full) - _unit(cut)).max() > 1e-3
    np.testing.assert_allclose(enc.encode_texts(TEXTS, "en"), _unit(full), atol=1e-5)


def test_siglip_i18n_layout_matches_open_clip_tokenizer(tmp_path, no_network):
    """HF tokenizer + bidirectional last-token TextTransformer (ViT-B-16-SigLIP-i18n-256's text
    layout): ids must equal open_clip's HFTokenizer output at full context length."""
    from open_clip.tokenizer import HFTokenizer

    hf_dir = write_hf_text_dir(tmp_path / "hf", "xlmr")
    cfg = json.loads((CONFIG_DIR / "tiny-vit-bidir-text.json").read_text())
    cfg["text_cfg"].update(
        hf_tokenizer_name=str(hf_dir),
        vocab_size=200,
        context_length=16,
        tokenizer_kwargs={"clean": "canonicalize"},
    )
    (tmp_path / "tiny-i18n-layout.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "tiny-i18n-layout.json")
    enc = create_model("openclip:tiny-i18n-layout", pretrained=False)
    ids = HFTokenizer(str(hf_dir), context_length=16, clean="canonicalize")(TEXTS)
    assert not (enc.trim_clip or enc.trim_hf)
    assert torch.equal(enc.tokenize(TEXTS, get_language("de")), ids)
    with torch.inference_mode():
        np.testing.assert_allclose(
            enc.encode_texts(TEXTS, "de"), _unit(enc.model.encode_text(ids)), atol=1e-5
        )


# -- NLLB language tokens -----------------------------------------------------------------------
def test_nllb_each_call_gets_its_language_token(dirs, nllb):
    from transformers import AutoTokenizer

    hf_dir = dirs["nllb"] / "hf_text"
    enc = create_model(str(dirs["nllb"]))
    seen = captured_text_ids(enc)
    calls = [
        (TEXTS[:2], "de"),
        (ZH, "zh-Hans"),
        (TEXTS[2:], "deu_Latn"),
        (["猫"], "ja"),
        (["a cat"], "en"),
    ]
    enc.tokenizer.set_language("jpn_Jpan")  # open_clip's global setting must not leak in
    for texts, code in calls:
        enc.encode_texts(texts, code)
    assert len(seen) == len(calls)
    for (texts, code), ids in zip(calls, seen):
        nllb_code = get_language(code).nllb
        reference = AutoTokenizer.from_pretrained(hf_dir, src_lang=nllb_code)  # HF's own template
        for text, row in zip(texts, ids.tolist()):
            expected = reference(text, truncation=True, max_length=enc.context_length)["input_ids"]
            assert row[0] == reference.convert_tokens_to_ids(nllb_code)
            assert row[: len(expected)] == expected
            assert set(row[len(expected) :]) <= {reference.pad_token_id}


def test_nllb_language_changes_embedding_xlmr_does_not(local, nllb):
    assert nllb.uses_language_token
    de, en = nllb.encode_texts(["a cat"], "de"), nllb.encode_texts(["a cat"], "en")
    assert np.abs(de - en).max() > 1e-3
    xlmr = local("xlmr")
    assert not xlmr.uses_language_token
    np.testing.assert_array_equal(
        xlmr.encode_texts(["a cat"], "de"), xlmr.encode_texts(["a cat"], "en")
    )


def test_nllb_language_without_code_is_a_clear_error(nllb):
    no_code = Language(tag="xx-Test", name="Testish")
    with pytest.raises(ValueError, match=r"xx-Test \(Testish\).*no NLLB code.*needs an NLLB"):
        nllb.encode_texts(["a cat"], no_code)


# -- weights and fingerprints -------------------------------------------------------------------
def test_local_dir_loads_checkpoint_and_hashes_it(dirs, local, clip, tmp_path):
    ckpt = dirs["clip"] / "open_clip_pytorch_model.bin"
    enc = local("clip")
    assert enc.fingerprint.weights == "sha256:" + hashlib.sha256(ckpt.read_bytes()).hexdigest()
    model = open_clip.create_model("tiny-vit-text")
    model.load_state_dict(torch.load(ckpt, weights_only=True))
    ids = clip.tokenizer(TEXTS)
    with torch.inference_mode():
        np.testing.assert_allclose(
            enc.encode_texts(TEXTS, "en"), _unit(model.eval().encode_text(ids)), atol=1e-5
        )
    empty = tiny_openclip_model_dir(tmp_path, "clip", weights=False)
    with pytest.raises(WeightsNotFoundError, match="holds no checkpoint"):
        create_model(str(empty))
    assert create_model(str(empty), pretrained=False).fingerprint.weights.startswith(
        "random:seed=0:"
    )


def test_arch_at_checkpoint_path(clip, tmp_path):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = open_clip.create_model("tiny-vit-text").eval()
    path = tmp_path / "my_finetune.bin"
    torch.save(model.state_dict(), path)
    enc = create_model(f"openclip:tiny-vit-text@{path}")
    assert enc.fingerprint.name == "tiny-vit-text@my_finetune.bin"
    assert enc.fingerprint.weights == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    with torch.inference_mode():
        ref = _unit(model.encode_text(clip.tokenizer(TEXTS)))
    np.testing.assert_allclose(enc.encode_texts(TEXTS, "en"), ref, atol=1e-5)


def test_fingerprints_separate_arch_preprocessing_and_dtype(clip, bf16, tmp_path):
    assert clip.fingerprint.family == "openclip" and clip.fingerprint.name == "tiny-vit-text"
    assert (
        clip.fingerprint.key
        == create_model("openclip:tiny-vit-text", pretrained=False).fingerprint.key
    )
    bidir = create_model("openclip:tiny-vit-bidir-text", pretrained=False)
    assert bidir.fingerprint.key != clip.fingerprint.key
    assert bf16.fingerprint.dtype == "bfloat16" and bf16.fingerprint.key != clip.fingerprint.key
    # Same weights, different image normalisation: same weights id, different preprocess.
    a = create_model(str(tiny_openclip_model_dir(tmp_path / "a", "clip")))
    b = create_model(
        str(
            tiny_openclip_model_dir(
                tmp_path / "b", "clip", preprocess={"mean": [0.4, 0.4, 0.4], "std": [0.5, 0.5, 0.5]}
            )
        )
    )
    assert a.fingerprint.weights == b.fingerprint.weights
    assert (
        a.fingerprint.preprocess != b.fingerprint.preprocess
        and a.fingerprint.key != b.fingerprint.key
    )
    assert json.loads(b.fingerprint.preprocess)["image"]["mean"] == [0.4, 0.4, 0.4]


def test_bfloat16_returns_unit_float32(clip, bf16):
    for x, ref in (
        (bf16.encode_texts(TEXTS, "en"), clip.encode_texts(TEXTS, "en")),
        (bf16.encode_images(_images()), clip.encode_images(_images())),
    ):
        assert x.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
        assert (x * ref).sum(1).min() > 0.98  # cosine to the float32 model


# -- missing weights: fail at once, clearly -----------------------------------------------------
def test_offline_missing_weights_fails_without_network(monkeypatch, tmp_path, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as err:
        create_model("openclip:ViT-B-32@laion2b_s34b_b79k", cache_dir=str(tmp_path))
    msg = str(err.value)
    for part in (
        "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
        "HF_HUB_OFFLINE is set",
        "openclip:ARCH@/path/to/open_clip_pytorch_model.bin",
        "hub cache",
        "network",
    ):
        assert part in msg
    assert no_network == []


def test_unreachable_hub_probes_once_and_never_downloads(monkeypatch, tmp_path):
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    probes, downloads = [], []

    def refuse(*args, **kwargs):
        probes.append(args)
        raise OSError("Name or service not known")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: downloads.append(a))
    with pytest.raises(WeightsNotFoundError, match="cannot be reached"):
        create_model("openclip:ViT-B-32@laion2b_s34b_b79k", cache_dir=str(tmp_path))
    assert len(probes) == 1 and downloads == []


def test_failed_download_is_not_retried(monkeypatch, tmp_path):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: socket.socket())
    attempts = []

    def fail(*args, **kwargs):
        attempts.append(args)
        raise LocalEntryNotFoundError("connection dropped")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fail)
    with pytest.raises(WeightsNotFoundError, match="download failed"):
        create_model("openclip:ViT-B-32@laion2b_s34b_b79k", cache_dir=str(tmp_path))
    assert len(attempts) == 1


def test_missing_hf_text_tower_config_is_clear(monkeypatch, tmp_path, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        WeightsNotFoundError, match=r"facebook/nllb-200-distilled-600M(.|\n)*hf_text_dir="
    ):
        create_model("openclip:nllb-clip-base", pretrained=False, cache_dir=str(tmp_path))
    assert no_network == []


def test_hf_text_dir_replaces_hub_names(monkeypatch, tmp_path, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg_path = tmp_path / "tiny-nllb-hub-names.json"  # an architecture naming the real hub repo
    cfg_path.write_text(
        json.dumps(tiny_model_cfg("nllb", hf_text="facebook/nllb-200-distilled-600M"))
    )
    open_clip.add_model_config(cfg_path)
    hf_dir = write_hf_text_dir(tmp_path / "hf", "nllb")
    enc = create_model("openclip:tiny-nllb-hub-names", pretrained=False, hf_text_dir=str(hf_dir))
    assert (
        enc.uses_language_token
        and json.loads(enc.fingerprint.preprocess)["lang_token"] == "nllb-prefix"
    )
    assert enc.encode_texts(ZH, "zh-Hans").shape == (2, 32)
    assert no_network == []


# -- bad names and options ----------------------------------------------------------------------
def test_bad_names_and_options_are_clear(tmp_path):
    with pytest.raises(ValueError, match="closest: tiny-vit-text"):
        create_model("openclip:tiny-vit-txt", pretrained=False)
    with pytest.raises(ValueError, match="known tags: .*laion2b_s34b_b79k"):
        create_model("openclip:ViT-B-32@no_such_tag")
    with pytest.raises(ValueError, match="needs a weights tag"):
        create_model("openclip:ViT-B-32")
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        create_model(f"openclip:tiny-vit-text@{tmp_path}/missing.bin")
    with pytest.raises(ValueError, match="must be a local directory"):
        create_model("openclip:tiny-vit-text", pretrained=False, tokenizer="facebook/nllb-200")
    with pytest.raises(TypeError, match="must be True or False"):
        create_model("openclip:tiny-vit-text", pretrained="False")
    with pytest.raises(TypeError, match="allowed: .*pretrained"):
        create_model("openclip:tiny-vit-text", pretrained=False, colour="red")
    assert "openclip:nllb-clip-base@v1" in babelclip.list_models("openclip:*")
