"""``babelclip index`` and ``babelclip search``: thin commands over the library (colour encoder)."""
from __future__ import annotations

import json

import pytest
from _search_encoder import ColourEncoder, write_images

from babelclip.cli import main


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("BABELCLIP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("babelclip.models.registry.create_model", lambda name, **kw: ColourEncoder(name))
    f = tmp_path / "photos"
    write_images(f, {"red.png": "red", "green.png": "green"})
    return f


def test_index_then_search_text_and_image(folder, capsys):
    assert main(["-q", "index", str(folder), "--model", "colour"]) == 0
    assert "2 images indexed with colour (2 new" in capsys.readouterr().out
    assert main(["-q", "index", str(folder), "--model", "colour", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["encoded"] == 0 and rep["scan"]["unchanged"] == 2
    assert main(["search", "grün", "--lang", "de", "--k", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "colour" and [h["rel"] for h in out["hits"]] == ["green.png"]
    assert main(["search", "--image", str(folder / "red.png"), "--index", str(folder)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith("green.png")


def test_bad_input_is_one_clear_line(folder, tmp_path, capsys):
    assert main(["search", "rot", "--lang", "de"]) == 1
    assert "babelclip index" in capsys.readouterr().err  # nothing indexed yet
    main(["-q", "index", str(folder), "--model", "colour"])
    capsys.readouterr()
    assert main(["search", "rot", "--lang", "deutsh"]) == 1
    assert "closest known" in capsys.readouterr().err
    assert main(["search", "rot"]) == 1
    assert "--lang" in capsys.readouterr().err
    # no results: the model the folder is indexed with, said so
    assert main(["search", "rot", "--lang", "de", "--model", "auto"]) == 0
    captured = capsys.readouterr()
    assert "model auto: colour for de — no results files given" in captured.err
    assert captured.out.strip().splitlines()[0].endswith("red.png")


def test_model_auto_picks_among_indexed_models(folder, tmp_path, capsys):
    from babelclip.eval.results import Result, save_results

    main(["-q", "index", str(folder), "--model", "colour"])
    save_results([Result(model="colour", fingerprint="x", dataset="xtd", task="retrieval", language="de",
                         metrics={"t2i_r@1": 0.5}),
                  Result(model="other", fingerprint="y", dataset="xtd", task="retrieval", language="de",
                         metrics={"t2i_r@1": 0.9})], tmp_path / "r" / "results.json")
    capsys.readouterr()
    assert main(["search", "rot", "--lang", "de", "--model", "auto", "--results", str(tmp_path / "r"), "--json"]) == 0
    captured = capsys.readouterr()
    assert "model auto: colour for de" in captured.err and json.loads(captured.out)["hits"][0]["rel"] == "red.png"


def test_unchanged_reindex_by_name_loads_no_model_and_changed_weights_are_noticed(folder, monkeypatch):
    from babelclip.search import IndexNotFoundError, Searcher, build_index

    made = []

    def create(name, **kw):
        made.append(name)
        return ColourEncoder(name, weights=weights[0])

    weights = ["v1"]
    monkeypatch.setattr("babelclip.models.registry.create_model", create)
    (folder / "bad.png").write_bytes(b"not an image")
    first = build_index(folder, "colour")
    assert made == ["colour"] and first.encoded == 2 and list(first.failed) == ["bad.png"]
    again = build_index(folder, "colour")
    assert made == ["colour"]  # nothing to encode: the model was not loaded
    assert (again.encoded, again.cached, list(again.failed), again.fingerprint) == (0, 2, ["bad.png"], first.fingerprint)
    weights[0] = "v2"  # the model's weights change under the same name
    with pytest.raises(IndexNotFoundError, match="colour has changed.*babelclip index"):
        Searcher([folder], "colour")
    redo = build_index(folder, "colour")
    assert redo.encoded == 2 and redo.fingerprint != first.fingerprint
    with Searcher([folder], "colour") as s:
        assert s.text("grün", "de", 1)[0].rel == "green.png"


def test_search_above_the_exact_limit_prints_the_measured_recall(folder, monkeypatch, capsys):
    pytest.importorskip("usearch")
    write_images(folder, {f"more/{i}.png": c for i, c in enumerate(["red", "blue", "green", "yellow"] * 3)})
    main(["-q", "index", str(folder), "--model", "colour"])
    monkeypatch.setattr("babelclip.search.vectors.EXACT_LIMIT", 5)
    capsys.readouterr()
    assert main(["search", "gelb", "--lang", "de", "--k", "3"]) == 0
    captured = capsys.readouterr()
    assert "approximate search (usearch HNSW) over 14 images: recall@10 against exact 1.000" in captured.err
    shown = {line.split()[-1].rpartition("photos/")[2] for line in captured.out.strip().splitlines()}
    assert shown == {"more/3.png", "more/7.png", "more/11.png"}  # the three yellow images
    assert main(["search", "gelb", "--lang", "de", "--k", "3", "--exact"]) == 0
    exact = capsys.readouterr()
    assert "approximate" not in exact.err and exact.out == captured.out
