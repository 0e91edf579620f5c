"""The benchmark registry and the generic evaluate(): a benchmark is one file; --out, languages and
bad inputs are checked before compute and answered with messages (issue 17)."""
from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
from _tiny_encoder import patch_create_model
from PIL import Image

from babelclip.cli import main
from babelclip.data import benchmarks
from babelclip.data.benchmarks import all_benchmarks, find_benchmark, get_benchmark
from babelclip.eval.results import load_results
from babelclip.eval.run import LANGUAGE_SELECTORS, evaluate, requested_languages


@pytest.fixture
def tiny(monkeypatch):
    return patch_create_model(monkeypatch)


def write_images(folder, names, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(folder / n)


def caption_set(tmp_path, images=("a.png", "b.png", "c.png"), captions=None):
    write_images(tmp_path / "imgs", images)
    captions = captions if captions is not None else {
        "de": [["ein Hund", "ein Tier"], ["eine Katze"], ["ein Haus"]],
        "jp": [["犬"], ["猫"], ["家"]],
    }
    path = tmp_path / "caps.json"
    path.write_text(json.dumps({"images": list(images), "captions": captions}, ensure_ascii=False))
    return path


def run_captions(tmp_path, out="out", **kw):
    cap = caption_set(tmp_path) if not (tmp_path / "caps.json").exists() else tmp_path / "caps.json"
    kw.setdefault("cache_dir", "none")
    return evaluate("tiny", dataset="mine", captions=cap, images=tmp_path / "imgs", out=tmp_path / out,
                    language_workers=1, n_boot=0, quiet=True, **kw)


def test_every_benchmark_is_data_with_what_the_listing_needs():
    names = [b.name for b in all_benchmarks()]
    assert {"babel-imagenet", "tuxpaint"} <= set(names) and len(names) == len(set(names))
    assert "captions" not in names  # the anonymous set is reachable by --captions only
    for b in all_benchmarks():
        assert b.tasks and set(b.tasks) <= {"zeroshot_classification", "retrieval", "image_retrieval",
                                            "knn_classification"}
        assert b.licence and b.citation and b.sources and b.how_to_get(), b.name
        assert isinstance(b.present(), str)
    # results name their dataset variously: all lead back to one benchmark
    assert find_benchmark("babel-imagenet-92").name == "babel-imagenet"
    assert find_benchmark("Babel_ImageNet").name == "babel-imagenet"
    with pytest.raises(KeyError, match="known: .*babel-imagenet.*tuxpaint"):
        get_benchmark("imagenet-sketch")


def test_a_new_benchmark_is_one_file(tmp_path, monkeypatch, tiny):
    """A module dropped into the package is found and evaluated with no other change."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    write_images(tmp_path / "imgs", ["x.png", "y.png"])
    (pkg / "toy_set.py").write_text(textwrap.dedent(f'''
        from babelclip.data.benchmarks import Benchmark, Prepared, RetrievalTask, Source
        from babelclip.data.captions import CaptionSet
        from babelclip.data.images import image_folder

        def prepare(inputs):
            caps = CaptionSet("toy", ["x.png", "y.png"], {{"fr": [["un"], ["deux"]], "en": [["one"], ["two"]]}})
            half = CaptionSet("toy", ["x.png", "y.png"], {{"fr": [["un"], ["deux"]]}})
            return Prepared("toy", image_folder({str(tmp_path / "imgs")!r}),
                            [RetrievalTask(caps, ("first-caption",)), RetrievalTask(half, ("first-caption",), "toy/half")],
                            {{"made_by": "test"}})

        BENCHMARK = Benchmark("toy", "Toy", ("retrieval",), ("fr", "en"), "2 squares", "CC0-1.0", "none",
                              (Source("local", "nowhere"),), prepare)
    '''))
    monkeypatch.setattr(benchmarks, "__path__", [*benchmarks.__path__, str(pkg)])
    monkeypatch.delitem(sys.modules, "babelclip.data.benchmarks.toy_set", raising=False)
    assert "toy" in [b.name for b in all_benchmarks()]
    res = evaluate("tiny", dataset="toy", out=tmp_path / "out", cache_dir="none", language_workers=1, n_boot=0,
                   quiet=True)
    assert sorted((r.dataset, r.language) for r in res) == [("toy", "en"), ("toy", "fr"), ("toy/half", "fr")]
    meta = json.loads((tmp_path / "out" / "results.json").read_text())["meta"]
    assert (meta["benchmark"], meta["licence"], meta["made_by"]) == ("toy", "CC0-1.0", "test")


def test_out_is_checked_before_the_model_is_loaded(tmp_path, tiny):
    caption_set(tmp_path)
    (tmp_path / "file").write_text("x")
    for bad in (tmp_path / "file", tmp_path / "file" / "sub"):
        with pytest.raises(ValueError, match=r"is a file, not a folder"):
            run_captions(tmp_path, out=bad.relative_to(tmp_path))
    assert tiny.create_calls == [] and tiny.image_forwards == 0


def test_two_runs_into_one_out_do_not_replace_each_other(tmp_path, tiny, capsys):
    caption_set(tmp_path)
    run_captions(tmp_path)
    first = (tmp_path / "out" / "results.json").read_text()
    run_captions(tmp_path)  # the same model on the same set: a re-run replaces its own results
    with pytest.raises(ValueError, match=r"already holds results of tiny on mine .*--overwrite") as err:
        evaluate("other-model", dataset="theirs", captions=tmp_path / "caps.json", images=tmp_path / "imgs",
                 out=tmp_path / "out", cache_dir="none", language_workers=1, n_boot=0, quiet=True)
    assert "other-model on theirs" in str(err.value)
    assert (tmp_path / "out" / "results.json").read_text().count('"model": "tiny"') == first.count('"model": "tiny"')
    evaluate("other-model", dataset="theirs", captions=tmp_path / "caps.json", images=tmp_path / "imgs",
             out=tmp_path / "out", cache_dir="none", language_workers=1, n_boot=0, quiet=True, overwrite=True)
    assert {r.model for r in load_results(tmp_path / "out" / "results.json")} == {"other-model"}
    # the CLI says the same in one line, exit 1
    args = ["-q", "eval", "--captions", str(tmp_path / "caps.json"), "--images", str(tmp_path / "imgs"),
            "--out", str(tmp_path / "out"), "--cache-dir", "none", "--language-workers", "1"]
    assert main(args) == 1
    assert "--overwrite" in capsys.readouterr().err


def test_languages_the_set_lacks_fail_before_compute_naming_its_languages(tmp_path, tiny, capsys):
    caption_set(tmp_path)
    with pytest.raises(ValueError, match=r"no results for languages fr, it; it has 2 languages: de, ja"):
        run_captions(tmp_path, languages="fr,it")
    assert tiny.create_calls == []
    (tmp_path / "caps.json").write_text(json.dumps({"images": ["a.png"], "captions": {}}))
    assert main(["-q", "eval", "--captions", str(tmp_path / "caps.json"), "--images", str(tmp_path / "imgs"),
                 "--out", str(tmp_path / "o2"), "--cache-dir", "none"]) == 1
    assert "no language with labels or captions" in capsys.readouterr().err
    assert not (tmp_path / "o2" / "results.json").exists()


def test_language_selectors_plug_into_the_one_resolver(monkeypatch):
    assert requested_languages("all", ["de"]) is None and requested_languages(["all"], []) is None
    assert requested_languages("DE, jp", []) == ["de", "ja"]
    with pytest.raises(ValueError, match="unknown selector 'nope'"):
        requested_languages("nope:3", ["de", "fr", "ja", "ko"])
    monkeypatch.setitem(LANGUAGE_SELECTORS, "subset", lambda k, have: have[: int(k)])
    assert requested_languages("subset:3", ["de", "fr", "ja", "ko"]) == ["de", "fr", "ja"]


def test_caption_inputs_that_are_wrong_get_messages(tmp_path, tiny, capsys):
    write_images(tmp_path / "imgs", ["a.png", "b.png"])
    base = ["-q", "eval", "--images", str(tmp_path / "imgs"), "--cache-dir", "none", "--out", str(tmp_path / "o")]
    assert main([*base, "--captions", str(tmp_path / "imgs")]) == 1
    assert "is a folder; --captions takes a caption file" in capsys.readouterr().err
    caption_set(tmp_path, images=("a.png", "b.png", "a.png"), captions={"de": [["x"], ["y"], ["z"]]})
    assert main([*base, "--captions", str(tmp_path / "caps.json")]) == 1
    assert "image 'a.png' is listed twice (positions 0 and 2)" in capsys.readouterr().err
    assert tiny.create_calls == []


@pytest.mark.parametrize("content", ["empty", "photos"])
def test_tuxpaint_on_a_folder_without_stamps_says_what_it_expected(tmp_path, tiny, capsys, content):
    folder = tmp_path / "stamps"
    folder.mkdir()
    if content == "photos":
        write_images(folder, ["cat.png", "dog.png"])
    assert main(["-q", "eval", "--dataset", "tuxpaint", "--images", str(folder), "--cache-dir", "none",
                 "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert f"no Tux Paint stamps under {folder}" in err and "NAME.txt" in err and "tuxpaint-stamps-default" in err


def test_a_custom_label_file_is_named_by_itself(tmp_path, tiny):
    from babelclip.data.imagenet import imagenet_wnids

    wnids = imagenet_wnids()
    for c in (0, 1):
        write_images(tmp_path / "val" / wnids[c], ["0.JPEG", "1.JPEG"], seed=c)
    (tmp_path / "my_names.json").write_text(json.dumps({"DE": [[0, 1], ["Schleie", "Goldfisch"]]}))
    res = evaluate("tiny", dataset="babel-imagenet", images=tmp_path / "val", labels=tmp_path / "my_names.json",
                   out=tmp_path / "o", cache_dir="none", language_workers=1, n_boot=0, quiet=True)
    assert [(r.dataset, r.labels) for r in res if r.task == "zeroshot_classification"] == [("my_names", "my_names/raw")]
    meta = json.loads((tmp_path / "o" / "results.json").read_text())["meta"]
    assert meta["benchmark"] == "babel-imagenet" and "BabelNet" in meta["licence"]


@pytest.mark.parametrize("meta, match", [
    ([1, 2], "entry '__babelclip__': expected an object"),
    ({"wnids": "n01440764"}, "expected 'wnids': a list of class ids"),
    ({"provenance": {"DE": "x"}}, "expected 'provenance': "),
])
def test_label_file_metadata_of_the_wrong_type_is_a_message(tmp_path, meta, match):
    from babelclip.data.labels import load_labelset

    (tmp_path / "l.json").write_text(json.dumps({"DE": [[0], ["Schleie"]], "__babelclip__": meta}))
    with pytest.raises(ValueError, match=match):
        load_labelset(tmp_path / "l.json")


def test_benchmarks_command_lists_presence_and_how_to_get(capsys):
    assert main(["benchmarks"]) == 0
    out = capsys.readouterr().out
    blocks = {b.split("  (")[0]: b for b in out.split("\n") if b and not b.startswith(" ")}
    assert set(blocks) == {b.name for b in all_benchmarks()}
    assert "apt-get install tuxpaint-stamps-default" in out
    assert main(["benchmarks", "no-such-set"]) == 1
    assert "unknown benchmark 'no-such-set'" in capsys.readouterr().err


def test_docs_list_every_benchmark():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    for b in all_benchmarks():
        assert f"| `{b.name}`" in doc, f"docs/benchmarks.md has no row for {b.name}"


def test_data_imports_nothing_from_eval_or_models():
    """Inputs stay below evaluation: read from the code, every module of babelclip.data."""
    import ast
    from pathlib import Path

    import babelclip.data

    root = Path(babelclip.data.__file__).parent
    bad = []
    for path in root.rglob("*.py"):
        depth = len(path.relative_to(root).parts)  # 1: data/x.py, 2: data/benchmarks/x.py
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                target = node.module or ""
                if node.level:  # relative: resolve against babelclip.data[.sub]
                    base = ["babelclip", "data", *path.relative_to(root).parts[:-1]][: 2 + depth - node.level]
                    target = ".".join([*base, target] if target else base)
                names = [target]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            bad += [f"{path.name}: {n}" for n in names if n.startswith(("babelclip.eval", "babelclip.models"))]
    assert bad == []


def test_an_unwritable_out_is_a_message_before_compute(tmp_path, tiny, monkeypatch):
    import tempfile

    caption_set(tmp_path)

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)  # as a read-only folder answers (we run as root)
    with pytest.raises(ValueError, match=r"--out .*out: cannot write there \(Permission denied\)"):
        run_captions(tmp_path)
    assert tiny.create_calls == []


def test_results_of_older_versions_are_matched_to_their_benchmark(tmp_path):
    from babelclip.eval.outdir import check_out

    (tmp_path / "results.json").write_text(json.dumps({"meta": {"model": "m", "dataset": "babel-imagenet-92"}}))
    assert check_out(tmp_path, model="m", benchmark="babel-imagenet") == tmp_path  # a re-run: allowed
    with pytest.raises(ValueError, match="results of m on babel-imagenet"):
        check_out(tmp_path, model="m", benchmark="xm3600")
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match="a file babelclip cannot read"):
        check_out(tmp_path, model="m", benchmark="xm3600")
