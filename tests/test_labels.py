"""LabelSet and the Babel-ImageNet loaders (reference files by path, never copied)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _paths import REFERENCE

from babelclip.data import labels as L
from babelclip.data import release_files as R
from babelclip.data.labels import (
    LabelSet,
    imagenet_clip_labelset,
    load_babel_imagenet,
    load_labelset,
    release_file,
    save_labelset,
)
from babelclip.languages import UnknownLanguageError

REF = REFERENCE
BI = REF / "babel-imagenet"
needs_ref = pytest.mark.skipif(
    not BI.is_dir(), reason="reference files of the Babel-ImageNet release not present"
)


def write(tmp_path: Path, doc: object, name: str = "labels.json") -> Path:
    p = tmp_path / name
    p.write_text(
        doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False), encoding="utf-8"
    )
    return p


@needs_ref
def test_release_92_loads_with_tags_and_imagenet_order():
    ls = load_babel_imagenet(BI / "babel_imagenet.json")
    assert ls.id == "babel-imagenet-92/raw" and len(ls.wnids) == 1000
    assert len(ls.languages()) == 93 and "en" in ls.languages() and "zh-Hans" in ls.languages()
    # File codes became BCP-47 tags; any code finds them.
    idx, labs = ls.classes("DE")
    assert (
        idx == sorted(idx)
        and ls.classes("de") == (idx, labs)
        and ls.classes("deu_Latn") == (idx, labs)
    )
    assert labs[idx.index(1)] == "Goldfisch"  # class 1 is goldfish in ImageNet-1k order
    assert ls.labels["en"][0] == "Tinca tinca"  # English = BabelNet lemmas by default
    assert "Non-Commercial" in ls.licence and ls.provenance["de"][1].startswith(
        "babel-imagenet@317c498"
    )


@needs_ref
def test_release_298_and_clip_english():
    ls = load_babel_imagenet(BI / "babel_imagenet-298.json", english="clip")  # release from the name
    assert len(ls.languages()) == 298
    assert ls.name == "babel-imagenet-298+clip-en"
    assert ls.labels["en"][0] == "tench" and len(ls.labels["en"]) == 1000
    assert ls.provenance["en"][0] == "openai-clip-classnames"


def test_clip_labelset():
    ls = imagenet_clip_labelset()
    assert ls.id == "imagenet-clip-en/raw" and ls.classes("en")[1][:2] == ["tench", "goldfish"]
    with pytest.raises(KeyError, match="has no labels for 'de'"):
        ls.classes("de")


def test_unknown_code_error_names_file_and_code_or_skips(tmp_path):
    p = write(tmp_path, {"DE": [[0], ["Schleie"]], "XX_NOPE": [[1], ["foo"]]})
    with pytest.raises(UnknownLanguageError) as err:
        load_labelset(p)
    assert str(p) in str(err.value) and "XX_NOPE" in str(err.value)
    ls = load_labelset(p, unknown="skip")
    assert ls.languages() == ["de"] and ls.skipped == ("XX_NOPE",)


@pytest.mark.parametrize(
    "doc, match",
    [
        ('{"DE": [[0], ["a"]', "malformed JSON at line 1"),
        ([1, 2], "expected an object"),
        ({"DE": [[0, 1], ["a"]]}, "2 class indices but 1 labels"),
        ({"DE": [[1000], ["a"]]}, r"class index 1000 out of range; allowed: integers 0\.\.999"),
        ({"DE": [[-1], ["a"]]}, "out of range"),
        ({"DE": [["3"], ["a"]]}, "out of range"),
        ({"DE": [[0], [""]]}, "non-empty string"),
        ({"DE": [[0, 0], ["a", "b"]]}, "appears twice"),
        ({"DE": {"0": "a"}}, r"expected \[\[class_idx"),
        ({"DE": [[0], ["a"]], "deu_Latn": [[1], ["b"]]}, "already given by entry 'DE'"),
    ],
)
def test_bad_files_are_clear_errors(tmp_path, doc, match):
    p = write(tmp_path, doc)
    with pytest.raises(ValueError, match=match) as err:
        load_labelset(p)
    assert str(p) in str(err.value)


def test_source_order_path_then_clip_benchmark_then_cache_then_download(tmp_path, monkeypatch):
    monkeypatch.setenv("BABELCLIP_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        release_file("babel_imagenet.json", tmp_path / "missing.json")
    monkeypatch.setattr(R, "_clip_benchmark_copy", lambda filename: None)
    # "Download" from a local file:// URL into the cache, then served from the cache.
    src = write(tmp_path, {"DE": [[0], ["Schleie"]]}, "remote.json")
    got = release_file("babel_imagenet.json", url=src.as_uri())
    assert (
        got == tmp_path / "cache" / "babel-imagenet" / L.RELEASE_COMMIT[:12] / "babel_imagenet.json"
    )
    assert json.loads(got.read_text())["DE"] == [[0], ["Schleie"]]
    src.unlink()
    assert release_file("babel_imagenet.json") == got  # cached: no second download
    with pytest.raises(FileNotFoundError, match="allow the download"):
        release_file("babel_imagenet-298.json", allow_download=False)


def test_download_url_and_bad_download(tmp_path, monkeypatch):
    monkeypatch.setenv("BABELCLIP_CACHE", str(tmp_path))
    monkeypatch.setattr(R, "_clip_benchmark_copy", lambda filename: None)
    seen = []

    class Resp:
        def __init__(self, body: bytes) -> None:
            self.body = body

        def read(self) -> bytes:
            return self.body

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    def fake_urlopen(url, timeout=None):
        seen.append(url)
        return Resp(b"<html>rate limited</html>")

    monkeypatch.setattr(L.urllib.request, "urlopen", fake_urlopen)
    with pytest.raises(ValueError, match="not a JSON file"):
        release_file("babel_imagenet-298.json")
    url = (
        "https://raw.githubusercontent.com/gregor-ge/Babel-ImageNet/"
        "317c49896f04bc61d0c7a5dfc6fd4e3b0d8a9430/data/babel_imagenet-298.json"
    )
    assert seen == [url]
    assert not list(tmp_path.rglob("*.json"))  # nothing half-written in the cache


@needs_ref
def test_clip_benchmark_copy_is_found_when_installed():
    found = R._clip_benchmark_copy("babel_imagenet.json")
    if found is None:
        pytest.skip("clip-benchmark not installed")
    assert found.read_bytes() == (BI / "babel_imagenet.json").read_bytes()


def test_save_and_load_round_trip(tmp_path):
    ls = LabelSet(
        "mini",
        ("n01440764", "n01443537"),
        {"de": {1: "Goldfisch"}, "ja": {0: "テンチ"}},
        {"de": {1: "x"}, "ja": {0: "y"}},
        cleaning="strip-disambiguators",
        licence="L",
    )
    back = load_labelset(save_labelset(ls, tmp_path / "m.json"))
    assert back.id == "mini/strip-disambiguators"
    assert (back.wnids, back.labels, back.provenance, back.licence) == (
        ls.wnids,
        ls.labels,
        ls.provenance,
        "L",
    )
