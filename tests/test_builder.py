"""Builder rules, BabelNet source against recorded-format responses, OMW source via `wn`."""

from __future__ import annotations

import json
import logging
import urllib.parse
from pathlib import Path

import pytest

from babelclip.build.babelnet import BabelNetSource, redact
from babelclip.build.builder import build_labelset
from babelclip.build.sources import LexicalSource, Sense, parse_wnid
from babelclip.data.labels import load_labelset, save_labelset

FIX = Path(__file__).parent / "fixtures"
TENCH, GOLDFISH = "n01440764", "n01443537"
KEY = "s3cr3t-KEY-123"


class FakeFetch:
    """Serves tests/fixtures/babelnet/<endpoint>/<id>[-<lang>].json; checks the key is sent."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        parts = urllib.parse.urlsplit(url)
        q = dict(urllib.parse.parse_qsl(parts.query))
        assert q["key"] == KEY
        endpoint = parts.path.rsplit("/", 1)[-1]
        name = q["id"].replace(":", "-", 1) + (f"-{q['targetLang']}" if "targetLang" in q else "")
        path = FIX / "babelnet" / endpoint / f"{name}.json"
        if not path.exists():  # a synset with no sense in the asked language
            return json.dumps({"senses": [], "glosses": [], "synsetType": "CONCEPT"}).encode()
        return path.read_bytes()


class DictSource:
    """An in-memory source: {(wnid, tag): [Sense, ...]}."""

    name = "dict"
    licence = "test data"

    def __init__(self, table: dict[tuple[str, str], list[Sense]]) -> None:
        self.table = table

    def senses(self, synset: str, lang: str) -> list[Sense]:
        return list(self.table.get((synset, lang), []))


def test_parse_wnid():
    assert parse_wnid("n01440764") == ("01440764", "n")
    with pytest.raises(ValueError, match="8 digits"):
        parse_wnid("tench")


def test_rules_on_recorded_babelnet_responses(tmp_path):
    fetch = FakeFetch()
    src = BabelNetSource(key=KEY, cache=tmp_path / "cache", fetch=fetch)
    assert isinstance(src, LexicalSource)
    ls = build_labelset([TENCH, GOLDFISH], ["en", "de", "ja", "zh-Hans"], [src], name="fish")
    # English: the first sense, '_' -> space is not needed here; all classes present.
    assert ls.labels["en"] == {0: "tench", 1: "goldfish"}
    # German tench: 'goldfish' (an English lemma of another class) dropped, 'Schlei' (WNTR, machine
    # translated) dropped, the Wikipedia redirect 'Schleihe' passed over for the WIKI sense.
    assert ls.labels["de"] == {0: "Schleie", 1: "Goldfisch"}
    assert ls.provenance["de"][0] == "babelnet:WIKI"
    # Japanese tench: 'Tench' equals an English lemma (case-insensitively) -> dropped; only a
    # Wikidata alias is left, which is taken as the fallback and marked. Goldfish has only an
    # automatic translation -> no label.
    assert ls.labels["ja"] == {0: "テンチ"}
    assert ls.provenance["ja"][0] == "babelnet:WIKIDATA_ALIAS+alias"
    # No response for Chinese at all -> the language is dropped.
    assert "zh-Hans" not in ls.labels
    assert "BabelNet Non-Commercial" in ls.licence
    # Responses are cached: a second build makes no request, even without a key.
    n = len(fetch.calls)
    again = build_labelset(
        [TENCH, GOLDFISH], ["de"], [BabelNetSource(cache=tmp_path / "cache", fetch=fetch)]
    )
    assert again.labels["de"] == ls.labels["de"] and len(fetch.calls) == n


def test_babelnet_key_never_logged_or_shown(tmp_path, caplog, monkeypatch):
    def failing(url: str) -> bytes:
        raise OSError(f"HTTP Error 403: Forbidden for url {url}")

    monkeypatch.setenv("BABELNET_KEY", KEY)
    src = BabelNetSource(cache=tmp_path, fetch=failing)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RuntimeError) as err:
        src.synset_ids(TENCH)
    assert KEY not in str(err.value) and "key=***" in str(err.value)
    assert KEY not in caplog.text and KEY not in repr(src)
    assert redact(f"x?key={KEY}&id=1", KEY) == "x?key=***&id=1"


def test_babelnet_without_key_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("BABELNET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="BABELNET_KEY"):
        BabelNetSource(cache=tmp_path, fetch=FakeFetch()).senses(TENCH, "de")


def test_underscore_and_sources_in_order():
    a = DictSource(
        {(TENCH, "en"): [Sense("Tinca_tinca")], (TENCH, "de"): [Sense("Schleie_Fisch", "x")]}
    )
    b = DictSource({(TENCH, "de"): [Sense("Schlei", "y")]})
    ls = build_labelset([TENCH], ["de", "en"], [a, b])
    assert ls.labels == {"de": {0: "Schleie Fisch"}, "en": {0: "Tinca tinca"}}
    # the English rule compares after '_' -> space: 'Tinca tinca' in German is dropped
    c = DictSource(
        {
            (TENCH, "en"): [Sense("Tinca_tinca")],
            (TENCH, "de"): [Sense("Tinca tinca"), Sense("Schleie")],
        }
    )
    assert build_labelset([TENCH], ["de"], [c]).labels["de"] == {0: "Schleie"}


def test_bad_wnid_and_no_source():
    with pytest.raises(ValueError, match="n01440764"):
        build_labelset(["tench"], ["de"], [DictSource({})])
    with pytest.raises(ValueError, match="at least one"):
        build_labelset([TENCH], ["de"], [])


def test_omw_source_from_lmf_file(tmp_path):
    wn = pytest.importorskip("wn")
    old = wn.config.data_directory
    wn.config.data_directory = tmp_path / "wn"
    try:
        wn.add(FIX / "omw-mini.xml", progress_handler=None)
        from babelclip.build.omw import OMWSource

        src = OMWSource()
        ls = build_labelset([TENCH, GOLDFISH], ["en", "de", "ja"], [src], name="omw-fish")
        assert ls.labels["en"] == {0: "tench", 1: "goldfish"}
        # mini-de has its own synset ids: reached through the ILI of omw-en's synset
        assert ls.labels["de"] == {0: "Schleie", 1: "Goldfisch"}
        # Japanese 'tench' is an English lemma -> dropped, the katakana lemma is kept
        assert ls.labels["ja"] == {0: "テンチ"}
        assert ls.provenance["ja"][0] == "omw:omw-ja:1.4"
        assert "creativecommons.org/licenses/by-sa/3.0" in ls.licence
    finally:
        wn.config.data_directory = old


def test_built_set_round_trips_through_the_release_format(tmp_path):
    src = DictSource(
        {(TENCH, "en"): [Sense("tench", "WN")], (GOLDFISH, "de"): [Sense("Goldfisch", "WIKI")]}
    )
    ls = build_labelset([TENCH, GOLDFISH], ["en", "de"], [src], name="mini")
    path = save_labelset(ls, tmp_path / "mini.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["DE"] == [[1], ["Goldfisch"]] and doc["EN"] == [
        [0],
        ["tench"],
    ]  # release format, codes
    back = load_labelset(path)
    assert (back.name, back.wnids, back.labels, back.licence) == (
        ls.name,
        ls.wnids,
        ls.labels,
        ls.licence,
    )
    assert back.provenance["de"] == {1: "dict:WIKI"}


def test_cli_build_with_omw(tmp_path, capsys):
    wn = pytest.importorskip("wn")
    from babelclip.cli import main

    old = wn.config.data_directory
    wn.config.data_directory = tmp_path / "wn"
    try:
        wn.add(FIX / "omw-mini.xml", progress_handler=None)
        ids = tmp_path / "wnids.txt"
        ids.write_text(f"# two fish\n{TENCH}\n{GOLDFISH}\n", encoding="utf-8")
        out = tmp_path / "built.json"
        rc = main(
            [
                "labels",
                "build",
                "--wnids",
                str(ids),
                "--langs",
                "en,de,ja",
                "--source",
                "omw",
                "--name",
                "fish",
                "-o",
                str(out),
            ]
        )
        assert rc == 0 and "ja\t1/2 classes" in capsys.readouterr().out
        ls = load_labelset(out)
        assert ls.id == "fish/raw" and ls.labels["de"] == {0: "Schleie", 1: "Goldfisch"}
    finally:
        wn.config.data_directory = old
