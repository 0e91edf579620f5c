"""The "never train on evaluation data" guard: copies dropped and reported, overlap kept and counted."""
from __future__ import annotations

import pytest

from babelclip.languages import get_language
from babelclip.train.leakage import (
    EvalSet,
    filter_leakage,
    labelset_eval_set,
    normalise,
    tuxpaint_eval_set,
)
from babelclip.train.parallel import ParallelCorpus

DE = get_language("de")


def _tux(tmp_path):
    root = tmp_path / "stamps" / "animals"
    root.mkdir(parents=True)
    for name, en, de in [("dog", "A dog wags its tail happily.", "Ein Hund wedelt fröhlich mit dem Schwanz."),
                         ("cat", "Cat.", "Katze.")]:
        (root / f"{name}.png").write_bytes(b"not decoded here")
        (root / f"{name}.txt").write_text(f"{en}\nde.utf8={de}\n", encoding="utf-8")
    return tuxpaint_eval_set(str(tmp_path / "stamps"))


def test_normalise_ignores_case_punctuation_and_width():
    assert normalise("  Ein HUND, wedelt!  ") == normalise("ein hund wedelt") == "ein hund wedelt"
    assert normalise("ＡＢＣ") == "abc"  # NFKC folds full-width letters
    assert normalise("ឆ្មា!") == "ឆ្មា"  # Khmer "cat": its vowel sign and coeng are marks, not separators
    assert normalise("बिल्ली।") == "बिल्ली"  # Hindi "cat" and the danda (punctuation)


def test_tuxpaint_copies_dropped_short_overlap_kept(tmp_path):
    tux = _tux(tmp_path)
    assert tux.texts["de"]["animals/dog"].startswith("Ein Hund")
    corpus = ParallelCorpus(DE, [
        ("A dog wags its tail happily.", "Ein Hund wedelt fröhlich mit dem Schwanz."),  # the stamp pair itself
        ("a happy dog", "ein hund wedelt fröhlich mit dem schwanz"),  # the sentence, other English: still a copy
        ("kitty", "Katze"),  # one word equal to a description: independent overlap
        ("a house", "ein Haus"),
    ], "toy")
    kept, rep = filter_leakage(corpus, [tux])
    assert kept.pairs == [("kitty", "Katze"), ("a house", "ein Haus")]
    assert rep.n_in == 4 and rep.n_dropped == 2 and rep.dropped == {"tuxpaint": 2}
    assert rep.overlap_pairs == {"tuxpaint": 1}
    assert rep.eval_items == {"tuxpaint": 2} and rep.overlap_fraction("tuxpaint") == 0.5
    assert "dropped 2 copies" in rep.summary()


def test_babel_label_entry_dropped_independent_word_kept():
    from babelclip.data.labels import LabelSet

    ls = LabelSet("babel-toy", ("n1", "n2", "n3"), {"en": {0: "dog", 1: "cat", 2: "mouse"}, "de": {0: "Hund", 1: "Katze"}})
    ev = labelset_eval_set(ls)
    corpus = ParallelCorpus(DE, [
        ("dog", "Hund"),  # a label-file entry used as a pair: a copy
        ("cat face", "Katze"),  # CLDR-like name that equals a label: overlap, kept
        ("mouse", "Maus"),  # no German label for class 2: nothing to match
    ], "toy")
    kept, rep = filter_leakage(corpus, [ev])
    assert kept.pairs == [("cat face", "Katze"), ("mouse", "Maus")]
    assert rep.dropped == {"babel-toy": 1} and rep.examples["babel-toy"] == [("dog", "Hund")]
    assert rep.overlap_eval_items == {"babel-toy": 1} and rep.overlap_fraction("babel-toy") == 0.5
    d = rep.as_dict()
    assert d["n_dropped"] == 1 and d["overlap_fraction"] == {"babel-toy": 0.5}


def test_independent_source_keeps_label_pairs_as_overlap():
    from babelclip.data.labels import LabelSet

    ev = labelset_eval_set(LabelSet("babel-toy", ("n1", "n2"), {"en": {0: "dog", 1: "cat"}, "de": {0: "Hund", 1: "Katze"}}))
    long = ("the dog runs fast", "der Hund rennt sehr schnell")
    ev.texts["de"]["9"], ev.texts["en"]["9"] = long[1], long[0]
    cldr_like = ParallelCorpus(DE, [("dog", "Hund"), long], "cldr:de", meta={"independent": "yes"})
    kept, rep = filter_leakage(cldr_like, [ev])
    assert kept.pairs == [("dog", "Hund")]  # an independent word pair is knowledge; a sentence never is
    assert rep.independent and rep.dropped == {"babel-toy": 1} and rep.overlap_eval_items == {"babel-toy": 1}


def test_other_languages_do_not_count():
    ev = EvalSet("x", {"en": {"a": "dog"}, "ja": {"a": "犬"}})
    kept, rep = filter_leakage(ParallelCorpus(DE, [("dog", "犬")], "toy"), [ev])
    assert kept.pairs == [("dog", "犬")] and rep.n_dropped == 0 and rep.eval_items == {"x": 0}


@pytest.mark.skipif(not __import__("os").path.isdir("/usr/share/tuxpaint/stamps"), reason="tuxpaint-stamps-default not installed")
def test_real_tuxpaint_german_descriptions_are_caught():
    tux = tuxpaint_eval_set()
    sid, de = next(iter(tux.texts["de"].items()))
    kept, rep = filter_leakage(ParallelCorpus(DE, [(tux.texts["en"][sid], de), ("x", "y")], "toy"), [tux])
    assert rep.dropped == {"tuxpaint": 1} and kept.pairs == [("x", "y")]


def test_cldr_is_not_independent_of_babel_emoji():
    """The guard against the benchmark built from CLDR: its evaluation-half pairs are copies."""
    from babelclip.train.leakage import emoji_eval_set
    from babelclip.train.sources import cldr_pairs

    ev = emoji_eval_set("eval")
    assert ev.texts["de"]["1f431"] == "Katzengesicht" and "1f436" not in ev.texts["de"]  # 🐱 eval, 🐶 train
    kept, rep = filter_leakage(cldr_pairs("de"), [ev])  # the default training half: nothing to drop
    assert rep.n_dropped == 0
    mixed = cldr_pairs("de", emoji="all")  # both halves meet: the evaluation half is dropped
    kept, rep = filter_leakage(mixed, [ev])
    assert ("cat face", "Katzengesicht") in mixed.pairs and ("cat face", "Katzengesicht") not in kept.pairs
    assert ("dog face", "Hundegesicht") in kept.pairs
    assert rep.dropped["babel-emoji"] > 0.4 * len(mixed)  # names and keyword lines of the evaluation half
    # an independent corpus that is not CLDR keeps the same pair as overlap, as before
    other = ParallelCorpus(DE, [("cat face", "Katzengesicht")], "bible:x", meta={"independent": "yes"})
    assert filter_leakage(other, [ev])[1].n_dropped == 0


def test_results_where_training_and_evaluation_meet_are_marked(tmp_path):
    import json

    from babelclip.eval.results import Result
    from babelclip.train.leakage import adapter_emoji_training, mark_emoji_results

    for lang, data in [("de", {"source": "cldr:de", "cldr_emoji": "train"}), ("sw", {"source": "cldr:sw", "cldr_emoji": "all"}),
                       ("fr", {"source": "bible:l-4"})]:
        (tmp_path / lang).mkdir()
        (tmp_path / lang / "babelclip_adapter.json").write_text(json.dumps({"lang": lang, "data": data}), encoding="utf-8")
    trained = adapter_emoji_training([tmp_path / x for x in ("de", "sw", "fr")])
    assert trained == {"de": "train", "sw": "all"}

    def res(lang, half):
        return Result("m", "fp", "babel-emoji", "zeroshot_classification", lang, {"top1": 0.5}, labels=f"babel-emoji-{half}/raw")

    results = [res("de", "all"), res("de", "eval"), res("sw", "eval"), res("fr", "all"), res("it", "all")]
    assert mark_emoji_results(results, trained) == 2
    assert [("leakage" in r.extra) for r in results] == [True, False, True, False, False]
    assert "'train' emoji half" in results[0].extra["leakage"]
