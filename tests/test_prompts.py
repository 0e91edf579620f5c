"""Prompt sets: validation, normalisation, de-duplication, explicit fallback."""

from __future__ import annotations

import json
import logging

import pytest
from _paths import REFERENCE

from babelclip.data.prompts import (
    PromptSet,
    english_templates_native_labels,
    label_only,
    load_nllb_prompts,
    normalise_template,
    openai_english,
    prompts_from_dict,
)

REF = REFERENCE
NLLB = REF / "babel-imagenet" / "nllb_dist13b_prompts.json"
needs_ref = pytest.mark.skipif(not NLLB.is_file(), reason="reference NLLB prompts not present")


@pytest.mark.parametrize(
    "raw, clean",
    [
        (" {}  悪い写真", "{} 悪い写真"),
        ('彫刻の" {} "', '彫刻の"{}"'),
        ('татуировка " {} ".', 'татуировка "{}".'),
        ("ein Foto von einem  {} .", "ein Foto von einem {}."),
        ("« {} » en photo", "«{}» en photo"),
        ("a photo of a {}.", "a photo of a {}."),  # correct templates are untouched
        ("une photo du  {}  difficile à voir.", "une photo du {} difficile à voir."),
    ],
)
def test_normalise(raw, clean):
    assert normalise_template(raw) == clean


def test_label_only_and_english_sets():
    assert label_only().templates("ja") == ["{}"]
    en = openai_english()
    assert len(en.templates("de")) == 80 and en.templates("de") == en.templates("en")
    # English templates around native labels is the same set under its own explicit name
    assert english_templates_native_labels().templates("sw") == en.templates("en")
    assert english_templates_native_labels().name == "openai-en"


def test_slot_validation_names_file_language_and_template(tmp_path):
    for bad, n in (("a photo", 0), ("{} and {}", 2)):
        with pytest.raises(ValueError) as err:
            prompts_from_dict({"DE": ["ein {}", bad]}, source="p.json", name="t")
        msg = str(err.value)
        assert (
            "p.json" in msg
            and "'DE'" in msg
            and "template 1" in msg
            and f"has {n}" in msg
            and "exactly one" in msg
        )
    with pytest.raises(ValueError, match="no other braces"):
        prompts_from_dict({"DE": ["ein {} {0}"]}, source="p.json", name="t")


def test_dedup_counts_and_fallback_policies(caplog):
    doc = {"DE": ["ein  {} .", "ein {}.", "zwei {}"], "JA": ["{}の写真"]}
    ps = prompts_from_dict(doc, source="p.json", name="mini", fallback="english")
    assert ps.templates("de") == ["ein {}.", "zwei {}"]
    assert ps.counts["de"] == (3, 3, 2)  # 3 in file, 3 distinct as released, 2 after normalisation
    caplog.set_level(logging.WARNING)
    assert ps.templates("zh-Hans")[0] == "a bad photo of a {}."
    assert ps.fallbacks == {"zh-Hans": "english"} and "falling back to english" in caplog.text
    assert ps.with_fallback("label").templates("zh-Hans") == ["{}"]
    strict = ps.with_fallback("error")
    with pytest.raises(KeyError, match="no templates for zh-Hans"):
        strict.templates("zh-Hans")
    assert strict.fallbacks == {}
    with pytest.raises(ValueError, match="allowed: english, label, error"):
        PromptSet("x", fallback="guess")


@needs_ref
def test_released_nllb_prompts():
    ps = load_nllb_prompts(NLLB, fallback="error")
    assert len(ps.languages()) == 90
    # Japanese: 80 templates, 60 distinct as released, 59 once spacing is normalised
    assert ps.counts["ja"] == (80, 60, 59)
    ja = ps.templates("ja")
    assert all(t.count("{}") == 1 and t == t.strip() and "  " not in t for t in ja)
    assert '彫刻の"{}"' in ja
    # Breton, West Frisian and Latin have no translations: explicit, never silent
    for code in ("br", "fy", "la"):
        assert not ps.has(code)
        with pytest.raises(KeyError):
            ps.templates(code)
    fb = ps.with_fallback("label")
    assert fb.templates("BR") == ["{}"] and fb.fallbacks == {"br": "label"}


def test_malformed_prompt_file(tmp_path):
    p = tmp_path / "p.json"
    p.write_text('{"DE": ["ein {}",]}', encoding="utf-8")
    with pytest.raises(ValueError, match="malformed JSON"):
        load_nllb_prompts(p)
    p.write_text(json.dumps({"DE": []}), encoding="utf-8")
    with pytest.raises(ValueError, match="non-empty list"):
        load_nllb_prompts(p)
