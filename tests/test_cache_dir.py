"""The cache rule (babelclip.cache_dir): one root, one named sub-folder per kind, one flag."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from babelclip import cache_dir as C

SRC = Path(__file__).resolve().parents[1] / "src" / "babelclip"
KINDS = (C.embeddings_dir, C.babel_lite_dir, C.downloads_dir, C.babelnet_dir, C.verified_weights_file,
         C.tokenizers_dir)


def test_every_kind_lives_in_its_own_place_under_one_root(monkeypatch, tmp_path):
    monkeypatch.setenv("BABELCLIP_CACHE", str(tmp_path))
    places = [kind() for kind in KINDS]
    assert all(p.parent == tmp_path for p in places), places
    assert len(set(places)) == len(places)  # no two kinds share a folder, none is the root itself
    # the folder names predate the rule: caches written before it stay valid
    assert [p.name for p in places] == ["embeddings", "babel-lite", "babel-imagenet", "babelnet",
                                        "verified-weights.json", "tokenizers"]
    monkeypatch.delenv("BABELCLIP_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert C.cache_root() == tmp_path / "xdg" / "babelclip"
    assert C.embeddings_dir() == tmp_path / "xdg" / "babelclip" / "embeddings"


def test_cache_dir_choice_none_path_or_off(monkeypatch, tmp_path):
    monkeypatch.setenv("BABELCLIP_CACHE", str(tmp_path))
    assert C.embeddings_dir(None) == C.embeddings_dir("") == tmp_path / "embeddings"
    assert C.embeddings_dir("none") is None
    assert C.embeddings_dir(tmp_path / "x") == tmp_path / "x"
    assert C.embeddings_dir("None") == Path("None")  # only the documented sentinel turns it off
    assert C.teacher_cache_dir(tmp_path / "run") == tmp_path / "run" / "teacher_cache"


def test_consumers_use_the_kind_functions(monkeypatch, tmp_path):
    """The places that cache find their folder through the rule, so BABELCLIP_CACHE moves them."""
    from babelclip.build.babelnet import BabelNetSource
    from babelclip.models.babel_lite import weights

    monkeypatch.setenv("BABELCLIP_CACHE", str(tmp_path))
    assert BabelNetSource(key="k").cache == tmp_path / "babelnet"
    assert weights._verified_cache() == tmp_path / "verified-weights.json"


def test_only_cache_dir_reads_the_cache_environment():
    """No module but cache_dir.py computes a cache root: a second rule could not creep in."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "cache_dir.py" and path.parent == SRC:
            continue
        text = path.read_text(encoding="utf-8")
        if "BABELCLIP_CACHE" in text and "os.environ" in text or "XDG_CACHE_HOME" in text:
            offenders.append(f"{path.relative_to(SRC)}: reads the cache environment")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "cache_root":
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}: calls cache_root() (use a kind function)")
    assert not offenders, offenders


def test_every_encoding_command_takes_the_same_flag(capsys):
    from babelclip.cli import build_parser

    parser = build_parser()
    ev = parser.parse_args(["eval", "--dataset", "tuxpaint", "--cache-dir", "none"])
    assert ev.cache_dir == "none"
    tr = parser.parse_args(["train", "--lang", "de", "--parallel", "cldr", "--out", "o", "--cache-dir", "d"])
    assert tr.cache_dir == "d"
    old = parser.parse_args(["train", "--lang", "de", "--parallel", "cldr", "--out", "o", "--cache", "d"])
    assert old.cache_dir == "d"  # the old spelling still works, hidden from --help, and says it is deprecated
    assert "--cache is deprecated, use --cache-dir" in capsys.readouterr().err
    for cmd in ("eval", "train"):
        with pytest.raises(SystemExit):
            parser.parse_args([cmd, "--help"])
        help_text = capsys.readouterr().out
        assert "--cache-dir DIR|none" in help_text and "--cache " not in help_text, cmd
