"""Babel-Emoji's data layer: CLDR inheritance, the emoji set's rules, the split, the pictures."""
import hashlib
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from babelclip.data.emoji import (
    COMPONENTS,
    emoji_half,
    emoji_images,
    emoji_keyword_queries,
    emoji_labelset,
    emoji_names,
    in_half,
    load_emoji,
)
from babelclip.data.emoji.cldr import (
    CLDR_ROOT,
    emoji_id,
    load_annotations,
    parent_chain,
    parent_locales,
    read_annotation_file,
)
from babelclip.data.emoji.render import _font, font_path, render_all, render_emoji

ANN = CLDR_ROOT / "annotations"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The whole set, rendered once into a fresh cache (~10 s)."""
    return load_emoji(cache=tmp_path_factory.mktemp("emoji-cache"))


def test_ids_drop_variation_selectors_and_keep_joiners():
    assert emoji_id("\u263a\ufe0f") == emoji_id("\u263a") == "263a"
    assert emoji_id("\u2764\ufe0e") == "2764"
    assert emoji_id("\U0001F636\u200d\U0001F32B\ufe0f") == "1f636-200d-1f32b"
    with pytest.raises(ValueError, match="variation selectors"):
        emoji_id("\ufe0f")


def test_parent_chains_follow_cldr_supplemental_data():
    parents = parent_locales(str(CLDR_ROOT))
    assert parent_chain("de_CH", parents) == ["de_CH", "de", "root"]  # truncation
    assert parent_chain("en_AU", parents) == ["en_AU", "en_001", "en", "root"]  # explicit parent
    assert parent_chain("nn", parents) == ["nn", "no", "root"]
    assert parent_chain("zh_Hant", parents) == ["zh_Hant", "root"]  # not zh: another script


def test_a_regional_locale_overrides_its_parents_name_by_name():
    ann = load_annotations()["en-AU"]
    own, _ = read_annotation_file(ANN / "en_AU.xml")
    mid, _ = read_annotation_file(ANN / "en_001.xml")
    base, _ = read_annotation_file(ANN / "en.xml")
    changed = next(e for e in own if base.get(e) not in (None, own[e]))
    assert ann.names[changed] == own[changed] != base[changed]
    from_mid = next(e for e in mid if e not in own and base.get(e) not in (None, mid[e]))
    assert ann.names[from_mid] == mid[from_mid]
    inherited = next(e for e in base if e not in own and e not in mid)
    assert ann.names[inherited] == base[inherited]
    assert ann.own_names == len(own) < len(ann.names)


def _write(path: Path, entries: list[tuple[str, str, str | None]]) -> None:
    root = ET.Element("ldml")
    anns = ET.SubElement(root, "annotations")
    for cp, text, kind in entries:
        el = ET.SubElement(anns, "annotation", cp=cp, **({"type": kind} if kind else {}))
        el.text = text
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8")


def test_inheritance_markers_are_absent_so_the_parent_value_shows(tmp_path):
    # nn's parent is no (CLDR parentLocales); ↑↑↑ in nn.xml means "take no's"
    _write(tmp_path / "annotations" / "en.xml", [("🐶", "dog face", "tts"), ("🐶", "dog | face", None)])
    _write(tmp_path / "annotations" / "no.xml", [("🐶", "hundefjes", "tts"), ("🐶", "hund | fjes", None)])
    _write(tmp_path / "annotations" / "nn.xml", [("🐶", "↑↑↑", "tts"), ("🐶", "hund | andlet", None)])
    sup = tmp_path / "supplemental" / "supplementalData.xml"
    sup.parent.mkdir()
    sup.write_text('<supplementalData><parentLocales><parentLocale parent="no" locales="nb nn"/>'
                   "</parentLocales></supplementalData>", encoding="utf-8")
    ann = load_annotations(tmp_path)
    assert ann["nn"].names == {"1f436": "hundefjes"}  # the marker is no value
    assert ann["nn"].keywords == {"1f436": ["hund", "andlet"]}  # the own keywords win
    assert ann["nn"].own_names == 0 and ann["nn"].chain == ("nn", "no")


def test_missing_cldr_names_the_package_and_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="unicode-cldr-core.*common/annotations/LOCALE.xml"):
        load_annotations(tmp_path)


def test_split_is_fixed_by_the_hash_of_the_id():
    # Golden values: the split must never move an emoji (trained adapters rely on it). They are
    # the rule of the docstring computed here by hand, not read back from emoji_half.
    for eid in ("1f600", "263a", "1f415", "2764-200d-1f525", "1f636-200d-1f32b", "1f34e"):
        first = hashlib.sha256(f"babel-emoji:{eid}".encode("ascii")).digest()[0]
        assert emoji_half(eid) == ("train" if first % 2 == 0 else "eval")
    assert [emoji_half(e) for e in ("1f600", "263a", "1f415", "1f636-200d-1f32b")] == ["eval", "train", "eval", "train"]
    assert emoji_half("263A-FE0F") == emoji_half("263a")  # the form of the id does not matter
    with pytest.raises(ValueError, match="allowed: all, train, eval"):
        in_half(["263a"], "test")


def test_the_set_follows_its_rules(data):
    english = load_annotations()["en"].names
    assert set(data.ids) | set(data.excluded) == set(english)
    assert not set(data.ids) & COMPONENTS and "23" in data.excluded  # '#': an ASCII keycap base
    assert "2192" in data.excluded  # '→' is named by CLDR but has no emoji picture
    assert "1f636-200d-1f32b" in data.ids  # a ZWJ sequence drawn as one ligature
    assert not any(p in COMPONENTS for e in data.ids for p in e.split("-"))  # no skin-tone sequence
    halves = [emoji_half(e) for e in data.ids]
    assert 0.45 < halves.count("train") / len(halves) < 0.55
    assert len(data.ids) > 1400


def test_labelsets_of_the_halves_partition_the_names(data):
    full, ev, tr = (emoji_labelset(data, h) for h in ("all", "eval", "train"))
    assert full.id == "babel-emoji-all/raw" and ev.id == "babel-emoji-eval/raw"
    assert set(ev.wnids) | set(tr.wnids) == set(full.wnids) and not set(ev.wnids) & set(tr.wnids)
    assert all(emoji_half(e) == "eval" for e in ev.wnids)
    de = {full.wnids[i]: n for i, n in full.labels["de"].items()}
    assert de == emoji_names(data, "de") and de["1f436"] == "Hundegesicht"
    assert len(ev.labels["de"]) + len(tr.labels["de"]) == len(full.labels["de"])


def test_images_are_rgb_pictures_one_class_each(data):
    src = emoji_images(data)
    assert src.classes == data.ids and [it.label for it in src.items] == list(range(len(data.ids)))
    im = Image.open(next(it.path for it in src.items if it.id == "1f34e"))  # red apple
    assert im.mode == "RGB" and im.size == (136, 136)
    px = np.asarray(im).reshape(-1, 3).astype(int)
    assert (px == 255).all(1).mean() > 0.3 and (px.max(1) - px.min(1) > 60).mean() > 0.1  # white ground, colour


def test_keyword_queries_list_every_emoji_carrying_the_keyword(data):
    q = emoji_keyword_queries(data, "all")
    kw = {k.casefold(): [q.images[i] for i in rel] for k, rel in q.queries["en"]}
    carriers = [e for e in data.ids if "dog" in [k.casefold() for k in data.annotations["en"].keywords.get(e, [])]]
    assert sorted(kw["dog"]) == sorted(carriers) and len(carriers) >= 3
    ev = emoji_keyword_queries(data, "eval")
    assert all(emoji_half(ev.images[i]) == "eval" for _, rel in ev.queries["en"] for i in rel)


def test_rendering_is_deterministic_and_refuses_what_the_font_lacks(tmp_path):
    texts = {"1f436": "\U0001F436", "2764-200d-1f525": "\u2764\u200d\U0001F525", "2192": "\u2192"}
    a, failed = render_all(texts, cache=tmp_path / "a")
    b, _ = render_all(texts, cache=tmp_path / "b")
    assert set(failed) == {"2192"}
    for e in ("1f436", "2764-200d-1f525"):
        assert np.array_equal(np.asarray(Image.open(a / f"{e}.png")), np.asarray(Image.open(b / f"{e}.png")))
    font = _font(str(font_path()))
    assert render_emoji("\U0001F436\U0001F436", font) is None  # two glyphs: not one emoji
    again, _ = render_all({"1f436": "\U0001F436"}, cache=tmp_path / "a")  # a complete folder is reused
    assert again == a and (a / "1f436.png").stat().st_mtime_ns == (again / "1f436.png").stat().st_mtime_ns


def test_a_missing_font_names_the_package_and_the_override(tmp_path, monkeypatch):
    monkeypatch.setenv("BABELCLIP_EMOJI_FONT", str(tmp_path / "none.ttf"))
    with pytest.raises(FileNotFoundError, match="fonts-noto-color-emoji.*BABELCLIP_EMOJI_FONT"):
        load_emoji(cache=tmp_path)
