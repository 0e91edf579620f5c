"""Named evaluation protocols: ``create_model(name, protocol="paper")`` sets the family options
that reproduce the Babel-ImageNet reference evaluation (docs/protocols.md), and nothing else."""
from __future__ import annotations

import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

from _tiny_hf import tiny_images, tiny_mclip_dir, tiny_st_dirs
from _tiny_openclip import captured_text_ids, tiny_openclip_model_dir

from babelclip import create_model
from babelclip.errors import UnsupportedLanguageError
from babelclip.languages import _warn_fallback
from babelclip.models.base import capabilities
from babelclip.models.options import PROTOCOLS, FamilyOptions, OptionsError
from babelclip.models.registry import FAMILIES

TEXTS = ["a photo of a cat", "ein Foto eines Autos", "猫の写真"]


@pytest.fixture(scope="module")
def nllb_dir(tmp_path_factory):
    return tiny_openclip_model_dir(tmp_path_factory.mktemp("nllb"), "nllb")


def _first_tokens(enc, texts, lang) -> list[int]:
    run = enc._encode_ids
    seen = captured_text_ids(enc)
    try:
        enc.encode_texts(texts, lang)
    finally:
        enc._encode_ids = run
    return seen[0][:, 0].tolist()


def test_unknown_protocol_is_a_clear_error_before_anything_loads():
    with pytest.raises(OptionsError, match=r"unknown evaluation protocol 'papr'; allowed: default, paper"):
        create_model("openclip:does-not-exist@nothing", protocol="papr")
    with pytest.raises(OptionsError, match="allowed: default, paper"):
        FamilyOptions.protocol_options("reference")


def test_every_family_declares_its_overrides_and_default_changes_nothing():
    expected = {"openclip": {"nllb_mapping": "paper"}, "hf": {}, "mclip": {"normalize_text": False},
                "st": {"normalize_text": False}, "babel-lite": {}}
    for prefix, family in FAMILIES.items():
        options = family.load().OPTIONS
        assert options.protocol_options("default") == {}, prefix
        assert options.protocol_options("paper") == expected[prefix], prefix
        for protocol in PROTOCOLS:  # each override is a valid option of the family
            options.from_kwargs(options.protocol_options(protocol))


def test_nllb_paper_mapping_gives_the_reference_tokens(nllb_dir):
    default = create_model(str(nllb_dir))
    paper = create_model(str(nllb_dir), protocol="paper")
    hf = default._hf
    zh = ["一只猫"]
    assert _first_tokens(default, zh, "zh") == [hf.convert_tokens_to_ids("zho_Hans")]
    assert _first_tokens(paper, zh, "zh") == [hf.convert_tokens_to_ids("zho_Hant")]  # as the reference code
    assert _first_tokens(paper, ["ein Hund"], "de") == [hf.convert_tokens_to_ids("deu_Latn")]
    # the mapping changes embeddings, so it keys the cache apart; same weights otherwise
    assert paper.fingerprint.key != default.fingerprint.key
    assert paper.fingerprint.weights == default.fingerprint.weights
    assert dict(paper.fingerprint.extra) == {"nllb_mapping": "paper"} and default.fingerprint.extra == ()
    # explicit options win over the protocol's
    assert create_model(str(nllb_dir), protocol="paper", nllb_mapping="babelclip").fingerprint == default.fingerprint


def test_english_mapping_tags_every_language_eng_latn(nllb_dir):
    english = create_model(str(nllb_dir), nllb_mapping="english")
    eng = english._hf.convert_tokens_to_ids("eng_Latn")
    for lang, text in (("de", "ein Hund"), ("zh", "一只猫"), ("ab", "a cat")):  # ab: in no table, no warning
        assert _first_tokens(english, [text], lang) == [eng]
    assert dict(english.fingerprint.extra) == {"nllb_mapping": "english"}
    default = create_model(str(nllb_dir))  # the German text tagged English embeds as under en by default
    np.testing.assert_allclose(english.encode_texts(["ein Hund"], "de"), default.encode_texts(["ein Hund"], "en"),
                               rtol=0, atol=1e-6)


def _imagenet_args(tmp_path) -> list[str]:
    import json

    from PIL import Image

    from babelclip.data.imagenet import imagenet_wnids

    wnids, rng = imagenet_wnids(), np.random.default_rng(0)
    for c in (0, 1):
        (tmp_path / "val" / wnids[c]).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "val" / wnids[c] / "0.png")
    (tmp_path / "labels.json").write_text(json.dumps({"DE": [[0, 1], ["Schleie", "Goldfisch"]]}))
    return ["-q", "eval", "--images", str(tmp_path / "val"), "--labels", str(tmp_path / "labels.json"),
            "--languages", "de", "--tasks", "zeroshot_classification", "--cache-dir", str(tmp_path / "cache"),
            "--language-workers", "1", "--out", str(tmp_path / "out")]


def test_cli_model_options_reach_the_family(nllb_dir, tmp_path, capsys):
    import json

    from babelclip.cli import main

    args = [*_imagenet_args(tmp_path), "--model", str(nllb_dir)]
    assert main([*args, "--model-option", "nllb_mapping=english", "--model-option", "trim=false"]) == 0
    meta = json.loads((tmp_path / "out" / "results.json").read_text())["meta"]
    assert meta["fingerprint"]["extra"] == {"nllb_mapping": "english"}
    # a wrong key or value is refused with what is allowed; the same key twice too
    assert main([*args, "--model-option", "nllb_mapping=flores"]) == 1
    assert "nllb_mapping='flores'; allowed: babelclip, paper, english" in capsys.readouterr().err
    assert main([*args, "--model-option", "nlb_mapping=paper"]) == 1
    err = capsys.readouterr().err
    assert "nlb_mapping" in err and "nllb_mapping: str = 'babelclip'" in err
    assert main([*args, "--model-option", "trim=false", "--model-option", "trim=true"]) == 1
    assert "--model-option trim given twice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "--model-option", "trim"])
    assert "expected KEY=VALUE" in capsys.readouterr().err
    assert main(["models", "no-such-model"]) == 0  # where a user reads each family's options
    assert "nllb_mapping: str = 'babelclip'" in capsys.readouterr().out


def test_unmapped_language_falls_back_under_paper_and_is_unsupported_by_default(nllb_dir, caplog):
    default = create_model(str(nllb_dir))
    paper = create_model(str(nllb_dir), protocol="paper")
    with pytest.raises(UnsupportedLanguageError, match=r"ab \(Abkhazian\).*no NLLB code") as err:
        default.encode_texts(["a cat"], "ab")  # Abkhazian: neither table has an NLLB code
    assert err.value.language == "ab"
    _warn_fallback.cache_clear()  # warned once per language and process: another test may have
    with caplog.at_level(logging.WARNING, logger="babelclip.languages"):
        tokens = _first_tokens(paper, ["a cat"], "ab")
    assert tokens == [paper._hf.convert_tokens_to_ids("eng_Latn")]
    assert "'ab'" in caplog.text and "eng_Latn" in caplog.text


def test_mapping_is_not_in_the_fingerprint_of_models_without_language_tokens(tmp_path):
    d = tiny_openclip_model_dir(tmp_path, "xlmr")
    assert create_model(str(d), protocol="paper").fingerprint == create_model(str(d)).fingerprint


def test_bad_nllb_mapping_names_the_allowed_ones(nllb_dir):
    with pytest.raises(OptionsError, match=r"nllb_mapping='flores'; allowed: babelclip, paper, english"):
        create_model(str(nllb_dir), nllb_mapping="flores")


def _mclip(tmp_path):
    d = tiny_mclip_dir(tmp_path)
    return lambda **kw: create_model(str(d), **kw)


def _st(tmp_path):
    text_dir, image_dir = tiny_st_dirs(tmp_path)
    return lambda **kw: create_model(str(text_dir), image_model=str(image_dir), **kw)


@pytest.mark.parametrize("family", [_mclip, _st], ids=["mclip", "st"])
def test_paper_returns_raw_text_embeddings_and_says_so(family, tmp_path):
    build = family(tmp_path)
    default, paper = build(), build(protocol="paper")
    assert capabilities(default).text_normalized and not capabilities(paper).text_normalized
    raw, unit = paper.encode_texts(TEXTS, "de"), default.encode_texts(TEXTS, "de")
    norms = np.linalg.norm(raw, axis=1)
    assert raw.dtype == np.float32 and np.abs(norms - 1).max() > 1e-2  # not unit rows
    np.testing.assert_allclose(raw / norms[:, None], unit, atol=1e-5)  # same directions
    images = tiny_images(2)
    np.testing.assert_array_equal(paper.encode_images(images), default.encode_images(images))  # images untouched
    assert dict(paper.fingerprint.extra) == {"normalize_text": "false"} and default.fingerprint.extra == ()
    assert paper.fingerprint.key != default.fingerprint.key
    # explicit options win
    assert build(protocol="paper", normalize_text=True).fingerprint == default.fingerprint
