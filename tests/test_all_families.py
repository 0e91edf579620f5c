"""Every model family returns unit-norm float32 rows from both towers, in every language tried,
so a dot product is a cosine score for every model (the rule the whole engine relies on)."""
import numpy as np
import pytest
from _tiny_hf import KINDS as HF_KINDS
from _tiny_hf import tiny_clip_dir, tiny_images, tiny_mclip_dir, tiny_st_dirs
from _tiny_openclip import KINDS as OPENCLIP_KINDS
from _tiny_openclip import tiny_openclip_model_dir

from babelclip import Encoder, create_model

TEXTS = ["a photo of a cat", "ein Foto eines Autos", "", "猫の写真 " * 12]


def _build(family: str, kind: str, tmp_path, **kw):
    if family == "openclip":
        return create_model(str(tiny_openclip_model_dir(tmp_path, kind)), **kw)
    if family == "hf":
        return create_model(str(tiny_clip_dir(tmp_path, kind)), **kw)
    if family == "mclip":
        return create_model(str(tiny_mclip_dir(tmp_path)), **kw)
    if family == "st":
        text_dir, image_dir = tiny_st_dirs(tmp_path)
        return create_model(str(text_dir), image_model=str(image_dir), **kw)
    raise AssertionError(family)


CASES = (
    [("openclip", k) for k in OPENCLIP_KINDS]
    + [("hf", k) for k in HF_KINDS]
    + [("mclip", "xlmr"), ("st", "xlmr")]
)


@pytest.mark.parametrize(("family", "kind"), CASES, ids=[f"{f}-{k}" for f, k in CASES])
def test_unit_norm_embeddings(family, kind, tmp_path):
    model = _build(family, kind, tmp_path)
    assert isinstance(model, Encoder)
    assert model.fingerprint.family == family
    images = model.encode_images(tiny_images(3))
    assert images.dtype == np.float32 and images.shape == (3, model.dim)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    for lang in ("en", "de", "ja"):
        if family == "openclip" and kind == "nllb" and lang == "en":
            lang = "eng_Latn"  # any code of the table works
        texts = model.encode_texts(TEXTS, lang=lang)
        assert texts.dtype == np.float32 and texts.shape == (len(TEXTS), model.dim)
        np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
        sims = texts @ images.T
        assert np.all(np.abs(sims) <= 1.0 + 1e-5)  # cosines, not raw logits


#: Families whose paper protocol returns raw text embeddings (the reference scores them so).
RAW_TEXT_UNDER_PAPER = {"mclip", "st"}


@pytest.mark.parametrize(("family", "kind"), CASES, ids=[f"{f}-{k}" for f, k in CASES])
def test_paper_protocol_norms_are_as_declared(family, kind, tmp_path):
    """Under ``protocol="paper"`` images stay unit rows; texts are unit rows exactly where the
    encoder declares ``text_normalized`` (M-CLIP and sentence-transformers declare False)."""
    from babelclip.models.base import capabilities

    model = _build(family, kind, tmp_path, protocol="paper")
    assert capabilities(model).text_normalized is (family not in RAW_TEXT_UNDER_PAPER)
    np.testing.assert_allclose(np.linalg.norm(model.encode_images(tiny_images(2)), axis=1), 1.0, atol=1e-5)
    norms = np.linalg.norm(model.encode_texts(TEXTS[:2], lang="de"), axis=1)
    if capabilities(model).text_normalized:
        np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    else:
        assert np.abs(norms - 1.0).max() > 1e-2


def test_babel_lite_unit_norm():
    model = create_model("babel-lite")
    from PIL import Image
    from skimage import data

    images = model.encode_images([Image.fromarray(data.chelsea()), Image.fromarray(data.coffee())])
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    texts = model.encode_texts(TEXTS, lang="sw")
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    from babelclip.languages import xlmr_languages

    assert model.languages == xlmr_languages()  # multilingual-e5: XLM-R's CC-100 languages


@pytest.mark.parametrize(("family", "kind"), CASES, ids=[f"{f}-{k}" for f, k in CASES])
def test_language_agnostic_declaration_matches_the_model(family, kind, tmp_path):
    """A family that declares its texts language-agnostic (caches share them across languages)
    must embed a string identically in every language; NLLB-CLIP, whose language token reaches
    the model, must not declare it."""
    model = _build(family, kind, tmp_path)
    de, ja = model.encode_texts(TEXTS, lang="de"), model.encode_texts(TEXTS, lang="ja")
    uses_lang_token = family == "openclip" and kind == "nllb"
    assert model.text_language_agnostic is (not uses_lang_token)
    if uses_lang_token:
        assert not np.allclose(de, ja, atol=1e-4)
    else:
        assert np.array_equal(de, ja)


TRAINABLE = {"openclip", "hf", "mclip"}  # families that declare a trainable text side


@pytest.mark.parametrize(("family", "kind"), CASES, ids=[f"{f}-{k}" for f, k in CASES])
def test_capabilities_are_declared_by_the_family(family, kind, tmp_path):
    """Every family declares EncoderCapabilities; its trainable text side, where it has one, is
    the forward evaluation runs (normalised, the same embeddings); the others refuse clearly."""
    import torch

    from babelclip.models.base import EncoderCapabilities, TrainingDefaults, capabilities
    from babelclip.train.text_side import trainable_text

    model = _build(family, kind, tmp_path)
    assert isinstance(model, EncoderCapabilities) and capabilities(model) is model
    assert model.class_prototypes() is None
    assert model.training_defaults("lora") == TrainingDefaults("output", "mse", 1e-3)
    assert model.text_prefix_sharing is (family == "openclip" and kind == "clip")
    assert model.text_normalized is True and str(model.device) == "cpu"
    # the text context search warns with: the tokenizer's (open_clip) or truncation length (transformers)
    context = {"openclip": lambda m: m.tokenizer.context_length, "hf": lambda m: m.max_length,
               "mclip": lambda m: m.max_length, "st": lambda m: None}[family](model)
    assert model.text_context == context
    # languages (EncoderCapabilities.languages) from the tokenizer: the tiny transformers, M-CLIP and
    # sentence-transformers towers have a generic WordPiece tokenizer, so they declare none
    from babelclip.languages import nllb_languages, xlmr_languages

    langs = {"clip": ("en",), "nllb": nllb_languages(), "xlmr": xlmr_languages()}
    assert model.languages == (langs[kind] if family == "openclip" else None)
    if family == "openclip":  # counted by its own tokenizer: a long text fills the context
        assert model.count_tokens("cat " * 500, "de") == context > model.count_tokens("a cat", "de")
    if family not in TRAINABLE:
        with pytest.raises(TypeError, match="cannot train the text side of STEncoder"):
            trainable_text(model)
        return
    text = trainable_text(model)
    towers = {"openclip": lambda m: m.model.text if kind != "clip" else m.model.transformer,
              "hf": lambda m: m.model.text_model, "mclip": lambda m: m.text.transformer}
    assert text.text_module() is towers[family](model)
    with torch.no_grad():
        got = torch.nn.functional.normalize(text.text_forward(TEXTS[:2], "de").float(), dim=-1).numpy()
    np.testing.assert_allclose(got, model.encode_texts(TEXTS[:2], "de"), atol=1e-5)
    with pytest.raises(ValueError, match="level='tower' needs an encoder exposing text_tower"):
        trainable_text(model, level="tower")


def test_an_encoder_that_declares_nothing_gets_the_defaults():
    """An Encoder written against the protocol alone (no TorchEncoder) is asked, not probed."""
    from babelclip.models.base import Capabilities, Fingerprint, capabilities

    class Bare:
        fingerprint = Fingerprint("bare", "bare", "w", "p")
        dim = 2

        def encode_images(self, images, batch_size=64):
            return np.zeros((len(images), 2), np.float32)

        def encode_texts(self, texts, lang, batch_size=256):
            return np.zeros((len(texts), 2), np.float32)

    caps = capabilities(Bare())
    assert isinstance(Bare(), Encoder) and isinstance(caps, Capabilities)
    assert caps.text_language_agnostic is False and caps.text_prefix_sharing is False
    assert caps.class_prototypes() is None and caps.training_defaults("full").lr == 2e-5
    with pytest.raises(TypeError, match="cannot train the text side of Bare"):
        caps.trainable_text()


def test_training_code_asks_the_protocol_instead_of_probing():
    """No family names and no getattr probing where training meets the models."""
    from pathlib import Path

    import babelclip

    root = Path(babelclip.__file__).parent
    for rel in ("train/text_side.py", "train/evaluate.py", "cli/train.py"):
        code = (root / rel).read_text(encoding="utf-8")
        assert "getattr(" not in code, rel
        assert not any(f'"{name}"' in code for name in ("babel-lite", "openclip", "hf", "mclip", "st")), rel
        imports = [line for line in code.splitlines() if line.lstrip().startswith(("import ", "from "))]
        assert not any("babel_lite" in line for line in imports), rel  # e.g. babel-lite's head in evaluate.py
