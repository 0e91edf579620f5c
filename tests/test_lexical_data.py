"""Synonym sets for the lexical objective: CLDR (training half only), BabelNet synsets through the
builder's client (recorded responses), JSONL files, and the leakage guard over them."""
from __future__ import annotations

import json
import shutil

import pytest
from test_builder import GOLDFISH, KEY, TENCH, FakeFetch

from babelclip.build.babelnet import BabelNetSource
from babelclip.data.emoji import emoji_half
from babelclip.train.leakage import EvalSet, emoji_eval_set, filter_synonym_leakage
from babelclip.train.recipe import load_synonym_sets
from babelclip.train.sources import CLDR_ANNOTATIONS, cldr_synonym_sets
from babelclip.train.synonyms import (
    SynonymDataError,
    SynonymSets,
    lexicon_sets,
    make_set,
    read_synonyms,
)


@pytest.fixture(scope="module")
def cldr(tmp_path_factory):
    """The real annotations of three locales, in a folder of their own (fast to read)."""
    d = tmp_path_factory.mktemp("cldr") / "annotations"
    d.mkdir()
    for loc in ("en", "de", "sw"):
        shutil.copy(CLDR_ANNOTATIONS / f"{loc}.xml", d / f"{loc}.xml")
    return d


def test_cldr_sets_hold_every_locale_and_only_the_training_half(cldr):
    sets = cldr_synonym_sets(cldr)
    by_key = {s.key: s for s in sets}
    assert all(emoji_half(k.removeprefix("cldr:")) == "train" for k in by_key)  # 🐱 (eval half) is absent
    assert "cldr:1f431" not in by_key and emoji_half("1f431") == "eval"
    dog = by_key["cldr:1f436"]  # 🐶, training half
    assert dog.texts("en")[0] == "dog face" and dog.texts("de")[0] == "Hundegesicht" and dog.texts("sw")[0] == "uso wa mbwa"
    assert sets.meta == {"independent": "yes", "cldr_emoji": "train", "keywords": "distinctive"}
    names_only = {s.key: s for s in cldr_synonym_sets(cldr, keywords="none")}
    assert all(len(s.texts(g)) <= 1 for s in names_only.values() for g in ("en", "de", "sw"))
    with pytest.raises(ValueError, match="keywords='all'; allowed: distinctive, none"):
        cldr_synonym_sets(cldr, keywords="all")


def test_distinctive_keywords_belong_to_one_emoji_only(cldr):
    from babelclip.data.emoji import emoji_id
    from babelclip.train.sources import read_cldr_annotations

    en = read_cldr_annotations(cldr / "en.xml")
    owners: dict[str, set[str]] = {}
    for cp, (name, kws) in en.items():
        for t in [name, *kws]:
            owners.setdefault(t.casefold(), set()).add(emoji_id(cp))
    sets = cldr_synonym_sets(cldr)
    extra = [(s.key, t) for s in sets for t in s.texts("en")[1:]]  # members beyond the name: keywords
    assert extra, "some English keywords are distinctive"
    assert all(owners[t.casefold()] == {k.removeprefix("cldr:")} for k, t in extra)
    assert "face" not in {t for _, t in extra} and "animal" not in {t for _, t in extra}  # shared by many emoji


def test_guard_drops_the_evaluation_half_and_copies_keeps_overlap():
    sets = SynonymSets([
        make_set("cldr:1f431", [("en", "cat face"), ("de", "Katzengesicht")]),  # 🐱: Babel-Emoji's evaluation half
        make_set("cldr:1f436", [("en", "dog face"), ("de", "Hundegesicht"), ("de", "Katzengesicht"),  # an eval text
                                ("de", "Ein Hund wedelt fröhlich mit dem Schwanz."), ("de", "Hund"), ("de", "Welpe")]),
    ], "cldr:synonyms", "Unicode", {"independent": "yes", "cldr_emoji": "train"})
    tux = EvalSet("tuxpaint", {"de": {"animals/dog": "Ein Hund wedelt fröhlich mit dem Schwanz.", "x/welpe": "Welpe"}})
    kept, rep = filter_synonym_leakage(sets, [tux, emoji_eval_set("eval")], "de")
    assert [s.key for s in kept] == ["cldr:1f436"] and rep.sets_dropped == 1
    assert kept.sets[0].members == (("en", "dog face"), ("de", "Hundegesicht"), ("de", "Welpe"))
    # Babel-Emoji: the 🐱 set (2), and two names of evaluation-half emoji in a training set (🐱's and
    # 🐕's "Hund": CLDR is not independent of the benchmark built from it); Tux Paint: the sentence
    assert rep.dropped == {"babel-emoji": 4, "tuxpaint": 1}
    assert rep.overlap_eval_items["tuxpaint"] == 1  # "Welpe": a short text of an independent source, kept and counted
    assert rep.unit == "members" and rep.n_in == 8 and rep.n_kept == 3


def test_babelnet_synsets_become_sets_and_an_evaluation_concept_is_dropped_whole(tmp_path):
    fetch = FakeFetch()
    src = BabelNetSource(key=KEY, cache=tmp_path / "cache", fetch=fetch)
    sets = lexicon_sets(src, [TENCH, GOLDFISH], ["de", "en", "ja"])
    gold = {s.key: s for s in sets}[f"babelnet:{GOLDFISH}"]
    assert "Goldfisch" in gold.texts("de") and "goldfish" in gold.texts("en")
    assert "Carassius auratus" in gold.texts("en")  # lemmas read with spaces, not BabelNet's underscores
    assert sets.licence.startswith("BabelNet Non-Commercial") and "independent" not in sets.meta
    # Babel-ImageNet's German label of goldfish is a BabelNet lemma: the synset is that evaluation item
    labels = EvalSet("babel-imagenet-92", {"de": {"1": "Goldfisch"}, "en": {"1": "goldfish"}})
    kept, rep = filter_synonym_leakage(sets, [labels], "de")
    assert f"babelnet:{GOLDFISH}" not in {s.key for s in kept} and rep.sets_dropped == 1
    assert all("Goldfisch" not in s.texts("de") for s in kept)
    # the recipe's babelnet:FILE spec asks the client for the listed synsets in lang + anchors
    ids = tmp_path / "synsets.txt"
    ids.write_text(f"# fish\n{GOLDFISH}\n", encoding="utf-8")
    via_spec = load_synonym_sets([f"babelnet:{ids}"], "de", ["en"], lexicon=src)
    assert [s.key for s in via_spec] == [f"babelnet:{GOLDFISH}"] and {g for g, _ in via_spec.sets[0].members} == {"de", "en"}
    with pytest.raises(SynonymDataError, match="need the BabelNet client"):
        load_synonym_sets([f"babelnet:{ids}"], "de")


def test_jsonl_sets_and_their_errors(tmp_path):
    good = tmp_path / "sets.jsonl"
    good.write_text('{"id": "dog", "members": {"en": ["dog", "hound"], "swh_Latn": "mbwa"}}\n'
                    '{"members": {"en": "alone"}}\n\n', encoding="utf-8")
    sets = read_synonyms(good)
    assert len(sets) == 1 and sets.sets[0].members == (("en", "dog"), ("en", "hound"), ("sw", "mbwa"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "members": {"zz-nope": "a", "en": "b"}}\n', encoding="utf-8")
    with pytest.raises(SynonymDataError, match=r"bad.jsonl:1: unknown language code 'zz-nope'"):
        read_synonyms(bad)
    bad.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(SynonymDataError, match="bad.jsonl:1: expected a JSON object per line, found list"):
        read_synonyms(bad)
    with pytest.raises(SynonymDataError, match="neither cldr, cldr-names, babelnet:FILE nor an existing path"):
        load_synonym_sets(["nope.jsonl"], "de")
    with pytest.raises(SynonymDataError, match="no synonym sets given"):
        load_synonym_sets([], "de")


def test_for_language_keeps_target_and_anchor_members():
    sets = SynonymSets([make_set("a", [("en", "dog"), ("fr", "chien"), ("de", "Hund")]),
                        make_set("b", [("en", "cat"), ("fr", "chat")]),  # no German member: unusable for de
                        make_set("c", [("de", "Maus"), ("fr", "souris")])], "toy")
    de = sets.for_language("de", ["en"])
    assert [s.key for s in de] == ["a"] and de.sets[0].members == (("en", "dog"), ("de", "Hund"))
    assert [s.key for s in sets.for_language("de")] == ["a", "c"] and json.dumps(de.meta) == '{"target": "de", "anchor_langs": "en"}'
