"""Parallel-text readers and offline sources: formats, language resolution, clear errors."""
from __future__ import annotations

import json
import os

import pytest

from babelclip.train.parallel import (
    ParallelDataError,
    read_jsonl,
    read_moses,
    read_parallel,
    read_tatoeba,
    read_tsv,
)
from babelclip.train.sources import BIBLES, bible_pairs, cldr_pairs, read_cldr_annotations


def test_tsv_with_header_and_language_resolution(tmp_path):
    p = tmp_path / "p.tsv"
    p.write_text("en\tde\na dog\tein Hund\n\na cat\teine Katze\n", encoding="utf-8")
    c = read_tsv(p, "deu_Latn")  # an NLLB code resolves to the same language
    assert c.lang.tag == "de"
    assert c.pairs == [("a dog", "ein Hund"), ("a cat", "eine Katze")]


def test_tsv_wrong_columns_names_line(tmp_path):
    p = tmp_path / "bad.tsv"
    p.write_text("a dog\tein Hund\nonly one column\n", encoding="utf-8")
    with pytest.raises(ParallelDataError, match=r"bad.tsv:2: expected 2"):
        read_tsv(p, "de")


def test_jsonl_keys(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text(json.dumps({"en": "a dog", "ja": "犬"}) + "\n" + json.dumps({"source": "a cat", "target": "猫"}) + "\n", encoding="utf-8")
    assert read_parallel(p, "ja").pairs == [("a dog", "犬"), ("a cat", "猫")]
    p.write_text(json.dumps({"english": "x"}) + "\n", encoding="utf-8")
    with pytest.raises(ParallelDataError, match="expected keys"):
        read_jsonl(p, "ja")


def test_moses_aligned_and_misaligned(tmp_path):
    en, de = tmp_path / "c.en", tmp_path / "c.de"
    en.write_text("a dog\na cat\n", encoding="utf-8")
    de.write_text("ein Hund\neine Katze\n", encoding="utf-8")
    assert read_parallel([en, de], "de").pairs == [("a dog", "ein Hund"), ("a cat", "eine Katze")]
    de.write_text("ein Hund\n", encoding="utf-8")
    with pytest.raises(ParallelDataError, match=r"c\.en has 2 lines but .*c\.de has 1"):
        read_moses(en, de, "de")
    de.write_text("", encoding="utf-8")
    with pytest.raises(ParallelDataError, match="empty parallel file"):
        read_moses(en, de, "de")


def test_unknown_language_is_an_error(tmp_path):
    p = tmp_path / "p.tsv"
    p.write_text("a\tb\n", encoding="utf-8")
    with pytest.raises(KeyError, match="unknown language code 'xx-nope'"):
        read_tsv(p, "xx-nope")


def test_tatoeba_export_and_pair_tsv(tmp_path):
    (tmp_path / "sentences.csv").write_text(
        "1\teng\tI see a dog.\n2\tdeu\tIch sehe einen Hund.\n3\tjpn\t犬が見える。\n4\teng\tUnlinked.\n", encoding="utf-8"
    )
    (tmp_path / "links.csv").write_text("1\t2\n2\t1\n1\t3\n", encoding="utf-8")
    assert read_parallel(tmp_path, "de").pairs == [("I see a dog.", "Ich sehe einen Hund.")]
    assert read_tatoeba(tmp_path / "sentences.csv", tmp_path / "links.csv", "ja").pairs == [("I see a dog.", "犬が見える。")]
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("1\tI see a dog.\t2\tIch sehe einen Hund.\n", encoding="utf-8")
    assert read_parallel(pairs, "de").pairs == [("I see a dog.", "Ich sehe einen Hund.")]


def test_empty_file_names_it(tmp_path):
    p = tmp_path / "empty.tsv"
    p.write_text("", encoding="utf-8")
    with pytest.raises(ParallelDataError, match="empty.tsv"):
        read_tsv(p, "de")


def test_cldr_alignment_on_code_point(tmp_path):
    head = '<?xml version="1.0" encoding="UTF-8" ?><ldml><annotations>'
    (tmp_path / "en.xml").write_text(
        head + '<annotation cp="🐶">dog | face | pet</annotation><annotation cp="🐶" type="tts">dog face</annotation>'
        '<annotation cp="🐱" type="tts">cat face</annotation></annotations></ldml>', encoding="utf-8")
    (tmp_path / "de.xml").write_text(
        head + '<annotation cp="🐱" type="tts">Katzengesicht</annotation><annotation cp="🐶">Hund | Gesicht</annotation>'
        '<annotation cp="🐶" type="tts">Hundegesicht</annotation><annotation cp="🐭" type="tts">Maus</annotation>'
        '</annotations></ldml>', encoding="utf-8")
    assert read_cldr_annotations(tmp_path / "de.xml")["🐶"] == ("Hundegesicht", ["Hund", "Gesicht"])
    c = cldr_pairs("de", tmp_path, emoji="all")
    assert sorted(c.pairs) == sorted([("cat face", "Katzengesicht"), ("dog face", "Hundegesicht"), ("dog, face, pet", "Hund, Gesicht")])
    assert "Unicode" in c.licence and c.meta["cldr_emoji"] == "all"
    # by default only Babel-Emoji's training half: 🐶 (1f436) is in it, 🐱 (1f431) is evaluation data
    default = cldr_pairs("de", tmp_path)
    assert sorted(default.pairs) == sorted([("dog face", "Hundegesicht"), ("dog, face, pet", "Hund, Gesicht")])
    assert default.meta["cldr_emoji"] == "train"
    assert cldr_pairs("de", tmp_path, emoji="eval").pairs == [("cat face", "Katzengesicht")]
    with pytest.raises(ValueError, match="allowed: all, train, eval"):
        cldr_pairs("de", tmp_path, emoji="both")
    with pytest.raises(ParallelDataError, match="no CLDR annotations for ja"):
        cldr_pairs("ja", tmp_path)


@pytest.mark.skipif(not os.path.isdir("/usr/share/unicode/cldr/common/annotations"), reason="Debian unicode-cldr-core not installed")
def test_cldr_real_german():
    c = cldr_pairs("de", emoji="all")
    assert len(c) > 2000  # ~1800 emoji with names, plus keyword lines
    assert ("dog face", "Hundegesicht") in c.pairs
    from babelclip.data.emoji import emoji_half
    from babelclip.data.emoji.cldr import read_annotation_file

    names, _ = read_annotation_file("/usr/share/unicode/cldr/common/annotations/en.xml")
    half = {n: emoji_half(e) for e, n in names.items()}
    train = cldr_pairs("de")  # the default: no name pair of an evaluation-half emoji
    assert {half[en] for en, _ in train.pairs if en in half} == {"train"}
    assert 0.4 < len(train) / len(c) < 0.6


@pytest.mark.skipif(not os.path.isdir("/usr/share/unicode/cldr/common/annotations"), reason="Debian unicode-cldr-core not installed")
def test_cldr_names_source_drops_keyword_lines():
    from babelclip.train.recipe import load_training_pairs

    both, names = load_training_pairs(["cldr"], "de"), load_training_pairs(["cldr-names"], "de")
    assert ("dog face", "Hundegesicht") in names.pairs
    assert set(names.pairs) < set(both.pairs) and len(names) < 0.7 * len(both)
    every = load_training_pairs(["cldr-names:all"], "de")  # a named half: every emoji
    assert ("cat face", "Katzengesicht") in every.pairs and ("cat face", "Katzengesicht") not in names.pairs
    assert every.meta["cldr_emoji"] == "all" and names.meta["cldr_emoji"] == "train"


def test_bible_licences_are_recorded_and_enforced():
    assert all(b.licence for b in BIBLES.values())
    assert not BIBLES["j"].usable  # New Japanese Bible 1973: copyrighted
    with pytest.raises(ParallelDataError, match="not usable for training"):
        bible_pairs("ja", db="/nonexistent.db")  # refused before the database is opened


def test_bible_pairs_from_a_tiny_database(tmp_path):
    import sqlite3

    db = tmp_path / "bible.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE bible (id INTEGER, bbName TEXT, bNumber INTEGER, cNumber INTEGER, vNumber INTEGER, vText TEXT)")
    con.executemany("INSERT INTO bible VALUES (?,?,?,?,?,?)", [
        (1, "4", 1, 1, 1, "In the beginning."), (2, "4", 1, 1, 2, "The earth."),
        (3, "e", 1, 1, 2, "Die Erde."), (4, "e", 1, 1, 1, "Im Anfang."), (5, "s", 1, 1, 1, "Am Anfang."),
    ])
    con.commit()
    con.close()
    c = bible_pairs("de", db=db)  # Elberfelder 1932 (public domain) is preferred over Schlachter
    assert c.pairs == [("In the beginning.", "Im Anfang."), ("The earth.", "Die Erde.")]
    assert "public domain" in c.licence
