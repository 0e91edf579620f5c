"""Retrieval caption sets (XTD / xFlickr&CO format)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _paths import REFERENCE

from babelclip.data.captions import load_captions
from babelclip.languages import UnknownLanguageError

REF = REFERENCE
BI = REF / "babel-imagenet"
needs_ref = pytest.mark.skipif(
    not BI.is_dir(), reason="reference files of the Babel-ImageNet release not present"
)


def write(tmp_path: Path, doc: object) -> Path:
    p = tmp_path / "caps.json"
    p.write_text(
        doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False), encoding="utf-8"
    )
    return p


@needs_ref
def test_xtd_codes_become_tags():
    cs = load_captions(BI / "xtd.json")
    assert cs.name == "xtd" and len(cs.images) == 1000
    assert "ja" in cs.languages() and "jp" not in cs.languages() and "zh-Hans" in cs.languages()
    texts, owner = cs.pairs("jp")
    assert len(texts) == 1000 and owner[:3] == [0, 1, 2]


@needs_ref
def test_xflickrco_empty_caption_dropped_with_warning(caplog):
    cs = load_captions(BI / "xflickrco.json")
    assert len(cs.images) == 2000 and len(cs.pairs("en")[0]) == 2000
    assert len(cs.pairs("de")[0]) == 1999 and "dropped 1 empty captions" in caplog.text


def test_pairs_with_several_captions(tmp_path):
    cs = load_captions(
        write(tmp_path, {"images": ["a.jpg", "b.jpg"], "captions": {"de": [["x", "y"], "z"]}})
    )
    assert cs.pairs("de") == (["x", "y", "z"], [0, 0, 1])
    with pytest.raises(KeyError, match="no en captions"):
        cs.pairs("en")


@pytest.mark.parametrize(
    "doc, err, match",
    [
        ("{", ValueError, "malformed JSON"),
        ({"images": ["a.jpg"]}, ValueError, "expected"),
        (
            {"images": ["a.jpg", "b.jpg"], "captions": {"de": [["x"]]}},
            ValueError,
            "1 caption lists for 2 images",
        ),
        ({"images": ["a.jpg"], "captions": {"de": [[1]]}}, ValueError, r"image 0 \(a.jpg\)"),
        ({"images": ["a.jpg"], "captions": {"xx-nope": [["x"]]}}, UnknownLanguageError, "xx-nope"),
    ],
)
def test_bad_caption_files(tmp_path, doc, err, match):
    p = write(tmp_path, doc)
    with pytest.raises(err, match=match) as e:
        load_captions(p)
    assert str(p) in str(e.value)
