"""User errors get one clear line naming the file, never a traceback (issue 17, items 8 and 10)."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from babelclip.cli import main
from babelclip.data.captions import load_captions
from babelclip.data.labels import META_KEY, load_labelset
from babelclip.errors import BabelclipError
from babelclip.eval.report import load_any
from babelclip.eval.results import SCHEMA, load_results
from babelclip.languages import UnknownLanguageError
from babelclip.train.parallel import ParallelDataError, read_moses, read_tsv

GOOD_RECORD = {"model": "m", "fingerprint": "fp", "dataset": "d", "task": "retrieval", "language": "de",
               "metrics": {"t2i_r@1": 0.5}}


def _results(tmp_path, records, name="r.json"):
    p = tmp_path / name
    p.write_text(json.dumps({"schema": SCHEMA, "meta": {}, "results": records}), encoding="utf-8")
    return p


# -- __babelclip__ entries of the wrong type ----------------------------------------------------------
@pytest.mark.parametrize("meta", [
    "not an object", ["a"], {"wnids": "n01440764"}, {"wnids": [1, 2]}, {"name": 3},
    {"provenance": ["x"]}, {"provenance": {"de": "x"}}, {"provenance": {"de": {"0": 1}}},
])
def test_label_file_with_a_malformed_babelclip_entry(tmp_path, meta):
    p = tmp_path / "labels.json"
    p.write_text(json.dumps({"de": [[0, 1], ["Hund", "Katze"]], META_KEY: meta}), encoding="utf-8")
    with pytest.raises(ValueError) as e:
        load_labelset(p)
    assert str(p) in str(e.value) and META_KEY in str(e.value)


# -- hand-made results records -----------------------------------------------------------------------
@pytest.mark.parametrize("record, says", [
    ({**GOOD_RECORD, "metrics": [0.5]}, "metrics"),
    ({**GOOD_RECORD, "metrics": {"top1": "high"}}, "metrics"),
    ({k: v for k, v in GOOD_RECORD.items() if k != "language"}, "missing language"),
    ({**GOOD_RECORD, "colour": "red"}, "unknown field"),
    ({**GOOD_RECORD, "task": "captioning"}, "unknown task"),
    ({**GOOD_RECORD, "model": ["a"]}, "model"),
    ("just a string", "expected an object"),
])
def test_report_refuses_malformed_records_with_the_file_named(tmp_path, record, says, capsys):
    p = _results(tmp_path, [GOOD_RECORD, record])
    with pytest.raises(BabelclipError) as e:
        load_results(p)
    assert str(p) in str(e.value) and "result 1" in str(e.value) and says in str(e.value)
    assert main(["report", str(p), "--out", str(tmp_path / "rep")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(p) in err


def test_results_list_missing_is_a_clear_error(tmp_path):
    p = tmp_path / "r.json"
    p.write_text(json.dumps({"schema": SCHEMA}), encoding="utf-8")
    with pytest.raises(BabelclipError, match="'results' must be a list"):
        load_results(p)


# -- training data -----------------------------------------------------------------------------------
def test_training_data_that_is_not_utf8_names_file_line_and_byte(tmp_path):
    p = tmp_path / "pairs.tsv"
    p.write_bytes(b"dog\tHund\ncat\tKatze\nhouse\tMaison \xe0 louer\n")
    with pytest.raises(ParallelDataError) as e:
        read_tsv(p, "fr")
    msg = str(e.value)
    assert f"{p}:3" in msg and "0xe0" in msg and "UTF-8" in msg


def test_whitespace_only_targets_say_so(tmp_path):
    en, fr = tmp_path / "en.txt", tmp_path / "fr.txt"
    p = tmp_path / "pairs.tsv"
    p.write_text("dog\t  \ncat\t\u3000\n", encoding="utf-8")
    with pytest.raises(ParallelDataError) as e:
        read_tsv(p, "fr")
    assert "whitespace-only" in str(e.value) and "evaluation data" not in str(e.value)
    en.write_text("dog\ncat\n", encoding="utf-8")
    fr.write_text(" \n\t\n", encoding="utf-8")
    with pytest.raises(ParallelDataError):
        read_moses(en, fr, "fr")


# -- the CLI: no traceback for input problems ---------------------------------------------------------
def test_cli_prints_os_errors_as_one_line_naming_the_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    res = _results(tmp_path, [GOOD_RECORD])
    code = main(["report", str(res), "--out", str(tmp_path / "afile" / "sub")])  # --out under a file
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and str(tmp_path / "afile") in err


def test_cli_keeps_the_traceback_with_vv(tmp_path):
    p = _results(tmp_path, ["bad"])
    with pytest.raises(BabelclipError):
        main(["-vv", "report", str(p), "--out", str(tmp_path / "rep")])


def test_babelclip_error_stays_a_value_error():
    assert issubclass(BabelclipError, ValueError) and issubclass(ParallelDataError, BabelclipError)


# -- fuzz: random and malformed JSON ------------------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
KEYS = st.sampled_from(["images", "captions", "de", "en", "zz", META_KEY, "schema", "results", "metrics",
                        "pretrained", "model", "task", "language", "dataset", "fingerprint", "counts"])
NEAR = st.dictionaries(KEYS, JSON | st.just(SCHEMA) | st.just(["a.jpg"]) | st.just([[0], ["Hund"]])
                       | st.just([GOOD_RECORD]) | st.just("zeroshot_classification"), max_size=6)
DOCS = JSON | NEAR | st.lists(NEAR, max_size=2)
RAW = st.binary(max_size=40) | DOCS.map(lambda d: json.dumps(d).encode())  # also truncated below

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check(loader, tmp_path, raw: bytes):
    p = tmp_path / "fuzz.json"
    p.write_bytes(raw)
    try:
        loader(p)
    except (ValueError, UnknownLanguageError) as e:  # the documented family, the file named
        assert str(p) in str(e) or p.name in str(e), f"{type(e).__name__} without the file: {e}"


@FUZZ
@given(raw=RAW, cut=st.integers(0, 3))
def test_fuzz_results_files(tmp_path, raw, cut):
    _check(load_any, tmp_path, raw[: len(raw) - cut] if cut else raw)


@FUZZ
@given(raw=RAW, cut=st.integers(0, 3))
def test_fuzz_label_files(tmp_path, raw, cut):
    _check(load_labelset, tmp_path, raw[: len(raw) - cut] if cut else raw)


@FUZZ
@given(raw=RAW, cut=st.integers(0, 3))
def test_fuzz_caption_files(tmp_path, raw, cut):
    _check(load_captions, tmp_path, raw[: len(raw) - cut] if cut else raw)
