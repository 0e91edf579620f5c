"""The dependencies whose behaviour the loaders mirror (open_clip, transformers,
sentence-transformers) are bounded above in pyproject.toml; these tests fail loudly when an
installed major version passes a bound, when the pins of scripts/constraints.txt leave the
bounds, or when the tokenizer / pooling behaviour the loaders rely on changes (checked on the
tiny models against the definitions, not against babelclip's own output)."""
from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
MIRRORED = ("open_clip_torch", "transformers", "sentence-transformers")


def _requirements() -> dict[str, list[Requirement]]:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    found: dict[str, list[Requirement]] = {name: [] for name in MIRRORED}
    for reqs in extras.values():
        for text in reqs:
            req = Requirement(text)
            if req.name in found:
                found[req.name].append(req)
    return found


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "scripts" / "constraints.txt").read_text(encoding="utf-8").splitlines():
        name, sep, pinned = line.partition("==")
        if sep and not line.startswith("#"):
            pins[name.strip().lower().replace("_", "-")] = Version(pinned.strip())
    return pins


@pytest.mark.parametrize("name", MIRRORED)
def test_every_extra_bounds_the_mirrored_dependency_and_the_pins_fit(name):
    reqs = _requirements()[name]
    assert reqs, f"{name} is in no extra of pyproject.toml"
    pin = _pins()[name.lower().replace("_", "-")]
    for req in reqs:
        uppers = [s for s in req.specifier if s.operator == "<"]
        assert uppers, f"pyproject.toml: {req} has no upper bound; the loaders mirror {name}'s behaviour"
        assert pin in req.specifier, f"scripts/constraints.txt pins {name}=={pin}, outside {req}"


@pytest.mark.parametrize("name", MIRRORED)
def test_installed_major_version_is_within_the_bound(name):
    try:
        installed = Version(version(name))
    except PackageNotFoundError:
        pytest.skip(f"{name} is not installed (its extra is not)")
    for req in _requirements()[name]:
        assert installed in req.specifier, (
            f"{name} {installed} is installed but babelclip declares {req}: its loaders mirror the tokenizer "
            f"and pooling of the versions below the bound. Run tests/test_models_dependency_bounds.py and the "
            f"family tests against the new version before raising the bound in pyproject.toml"
        )


# -- the behaviour mirrored, on the tiny models ----------------------------------------------------------
def test_simple_tokenizer_keeps_clips_vocabulary():
    """open_clip's SimpleTokenizer: CLIP's BPE ids (start 49406, "a" 320, "photo" 1125, "of" 539,
    "cat" 2368, "." 269, end 49407), zero padding to 77; the word-memo path and trimming rely on it."""
    import open_clip

    ids = open_clip.SimpleTokenizer()(["a photo of a cat."])
    assert ids.shape == (1, 77)
    assert ids[0, :8].tolist() == [49406, 320, 1125, 539, 320, 2368, 269, 49407]
    assert not ids[0, 8:].any()


@pytest.fixture(scope="module")
def oc_models(tmp_path_factory):
    from _tiny_openclip import tiny_openclip_model_dir

    from babelclip import create_model

    root = tmp_path_factory.mktemp("bounds")
    return {kind: create_model(str(tiny_openclip_model_dir(root, kind))) for kind in ("nllb", "xlmr")}


def test_nllb_language_template_is_the_tokenizers_own(oc_models):
    """babelclip assembles NLLB's source-language template per call; transformers' tokenizer,
    told the language, must still produce the same ids ([lang] text [eos], non-legacy)."""
    from babelclip import get_language

    enc = oc_models["nllb"]
    tok = enc.tokenizer.tokenizer
    texts = ["ein Hund", "ein Foto eines Hundes"]
    tok.src_lang = "deu_Latn"
    try:
        ref = [tok(t)["input_ids"] for t in texts]
    finally:
        tok.src_lang = "eng_Latn"
    ids = enc.tokenize(texts, get_language("de"))
    for row, want in zip(ids.tolist(), ref):
        assert row[: len(want)] == want and set(row[len(want):]) <= {tok.pad_token_id}
    assert ref[0][0] == tok.convert_tokens_to_ids("deu_Latn") and ref[0][-1] == tok.eos_token_id


@pytest.mark.parametrize(("kind", "pool"), [("xlmr", "mean"), ("nllb", "cls")])
def test_open_clip_hf_tower_pooling(oc_models, kind, pool):
    """open_clip's HF text towers: xlm-roberta configs mean-pool over the attention mask,
    nllb-clip configs read the first position; then the projection."""
    from babelclip import get_language

    enc = oc_models[kind]
    texts = ["ein Hund", "ein Foto eines kleinen Hundes"]
    ids = enc.tokenize(texts, get_language("de"))
    text = enc.model.text
    mask = (ids != text.config.pad_token_id).long()
    with torch.no_grad():
        hidden = text.transformer(input_ids=ids, attention_mask=mask).last_hidden_state
        if pool == "mean":
            m = mask.unsqueeze(-1).float()
            pooled = (hidden * m).sum(1) / m.sum(1)
        else:
            pooled = hidden[:, 0]
        want = torch.nn.functional.normalize(text.proj(pooled), dim=-1).numpy()
    np.testing.assert_allclose(enc.encode_texts(texts, "de"), want, atol=1e-5)


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_transformers_text_pooling(tmp_path, kind):
    """transformers' CLIP pools at the end-of-text token, SigLIP at the last position of the
    max_length-padded sequence, each followed by its projection."""
    from _tiny_hf import tiny_clip_dir

    from babelclip import create_model

    enc = create_model(str(tiny_clip_dir(tmp_path, kind)))
    texts = ["a photo of a cat", "two birds in a tree"]
    tokens = enc.tokenize(texts)
    text = enc.model.text_model
    with torch.no_grad():
        hidden = text(**tokens).last_hidden_state
        if kind == "clip":
            eos = (tokens["input_ids"] == enc.tokenizer.sep_token_id).int().argmax(-1)
            want = enc.model.text_projection(hidden[torch.arange(len(texts)), eos])
        else:
            assert tokens["input_ids"].shape[1] == enc.max_length and "attention_mask" not in tokens
            want = text.head(hidden[:, -1])
    np.testing.assert_allclose(enc.encode_texts(texts, "en"),
                               torch.nn.functional.normalize(want, dim=-1).numpy(), atol=1e-5)
