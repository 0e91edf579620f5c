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


def _build(family: str, kind: str, tmp_path):
    if family == "openclip":
        return create_model(str(tiny_openclip_model_dir(tmp_path, kind)))
    if family == "hf":
        return create_model(str(tiny_clip_dir(tmp_path, kind)))
    if family == "mclip":
        return create_model(str(tiny_mclip_dir(tmp_path)))
    if family == "st":
        text_dir, image_dir = tiny_st_dirs(tmp_path)
        return create_model(str(text_dir), image_model=str(image_dir))
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


def test_babel_lite_unit_norm():
    model = create_model("babel-lite")
    from skimage import data
    from PIL import Image

    images = model.encode_images([Image.fromarray(data.chelsea()), Image.fromarray(data.coffee())])
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    texts = model.encode_texts(TEXTS, lang="sw")
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)


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
