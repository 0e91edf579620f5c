"""Memory-mapped vector snapshots: used when current, rebuilt when a folder changed or a file is
damaged, never serving a vector of a file that changed (tiny colour encoder; no model weights)."""
from __future__ import annotations

import logging
import os
import sqlite3

import numpy as np
import pytest
from _search_encoder import ColourEncoder, write_images

from babelclip.search import Searcher, build_index
from babelclip.search.snapshot import Snapshot, Vectors, file_check
from babelclip.search.store import FileTable


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("BABELCLIP_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "photos"
    write_images(folder, {"red.png": "red", "sub/green.png": "green", "sub/deep/blue.png": "blue"})
    enc = ColourEncoder()
    build_index(folder, enc)
    return folder, enc


def _snapshot_files(folder_env_tmp) -> dict[str, object]:
    from babelclip.cache_dir import search_dir

    return {p.name.split(".", 1)[1]: p for p in (search_dir() / "snapshots").iterdir() if not p.name.endswith(".tmp")}


def _no_cache_read(monkeypatch):
    def fail(*a, **k):
        pytest.fail("vectors read from the embedding cache although the snapshot is current")

    monkeypatch.setattr("babelclip.search.query.vectors_from_cache", fail)


def test_second_open_maps_the_snapshot_and_reads_no_vector_from_the_cache(env, monkeypatch):
    folder, enc = env
    with Searcher([folder], enc) as s:
        first = [(h.rel, h.score) for h in s.text("grün", "de", 3)]
    assert set(_snapshot_files(env)) == {"json", "keys.npy", "sha.npy", "f16.npy"}
    _no_cache_read(monkeypatch)
    with Searcher([folder], enc) as s:
        assert isinstance(s.vectors.matrix, np.memmap) and s.vectors.matrix.dtype == np.float16
        assert [(h.rel, h.score) for h in s.text("grün", "de", 3)] == first
        assert s.image(folder / "red.png", 1)[0].rel != "red.png"  # image query: its vector from the map


def test_reindex_after_delete_and_change_is_seen_by_new_and_open_searchers(env):
    folder, enc = env
    open_searcher = Searcher([folder], enc)  # as the server holds one
    assert open_searcher.text("blau", "de", 1)[0].rel == "sub/deep/blue.png"
    with Searcher([folder], enc) as s:
        assert len(s) == 3
    (folder / "sub" / "green.png").unlink()
    write_images(folder, {"sub/deep/blue.png": "yellow"})  # same name, new content
    os.utime(folder / "sub/deep/blue.png", ns=(1, 1))
    rep = build_index(folder, enc)
    assert (rep.scan.deleted, rep.scan.changed, rep.encoded) == (1, 1, 1)
    for s in (Searcher([folder], enc), open_searcher):
        with s:
            assert "sub/green.png" not in {h.rel for h in s.text("green", "en", 10)}
            assert s.text("gelb", "de", 1)[0].rel == "sub/deep/blue.png"  # its new vector, not the blue one
            assert s.text("blue", "en", 1)[0].rel != "sub/deep/blue.png"
            assert len(s) == 2  # the open one reloaded on its first query


@pytest.mark.parametrize("damage", ["truncate", "overwrite", "meta", "header"])
def test_a_damaged_snapshot_is_detected_and_rebuilt(env, damage, caplog):
    folder, enc = env
    with Searcher([folder], enc) as s:
        want = [(h.rel, h.score) for h in s.text("red", "en", 3)]
    files = _snapshot_files(env)
    f16 = files["f16.npy"]
    data = f16.read_bytes()
    if damage == "truncate":
        f16.write_bytes(data[: len(data) - 10])
    elif damage == "overwrite":  # same size, one vector's bytes changed
        f16.write_bytes(data[:-8] + b"\x00\x3c" * 4)
    elif damage == "meta":
        files["json"].write_text("{not json")
    else:
        files["keys.npy"].write_bytes(b"garbage" * 20)
    with caplog.at_level(logging.WARNING), Searcher([folder], enc) as s:
        assert [(h.rel, h.score) for h in s.text("red", "en", 3)] == want
    if damage != "meta":
        assert "damaged" in caplog.text
    with Searcher([folder], enc) as s:  # rewritten: intact again
        assert isinstance(s.vectors.matrix, np.memmap)


def test_vectors_encoded_after_an_interrupted_index_are_not_missed(env):
    folder, enc = env
    write_images(folder, {f"more/{i}.png": "yellow" for i in range(4)})
    enc.fail_after = enc.images_encoded + 2
    with pytest.raises(KeyboardInterrupt):
        build_index(folder, enc, batch_size=1)
    with Searcher([folder], enc) as s:
        assert len(s) == 5  # 3 + the 2 encoded before the interruption
        with FileTable() as t:
            before = t.generations([folder])
    # the missing vectors reach the shared cache without this folder's counter moving (as
    # `babelclip eval` with content hashes would put them there)
    from babelclip.cache_dir import embeddings_dir
    from babelclip.data.images import ImageItem, load_image
    from babelclip.eval.cache import EmbeddingCache

    rest = [folder / "more" / f"{i}.png" for i in range(4)]
    with EmbeddingCache(embeddings_dir(), enc.fingerprint.key, enc.dim) as cache:
        keys = [ImageItem(p.name, str(p)).identity(content_hash=True) for p in rest]
        cache.put_images(keys, ColourEncoder().encode_images([load_image(ImageItem(p.name, str(p))) for p in rest]))
    with FileTable() as t:
        assert t.generations([folder]) == before
    with Searcher([folder], enc) as s:
        assert len(s) == 7


def test_hnsw_file_is_mapped_when_current_and_rebuilt_when_damaged(env, monkeypatch, caplog):
    pytest.importorskip("usearch")
    folder, enc = env
    write_images(folder, {f"y{i}.png": "yellow" for i in range(5)})
    build_index(folder, enc)
    with Searcher([folder], enc, exact_limit=2) as s:
        assert s.index.kind == "hnsw" and s.text("gelb", "de", 1)[0].rel.startswith("y")
    ann = _snapshot_files(env)["usearch"]
    with monkeypatch.context() as m:
        m.setattr("babelclip.search.vectors.sync_ann", lambda *a, **k: pytest.fail("HNSW rebuilt"))
        with Searcher([folder], enc, exact_limit=2) as s:
            assert s.index.kind == "hnsw" and s.index.recall is not None
            assert s.text("rot", "de", 1)[0].rel == "red.png"
    ann.write_bytes(ann.read_bytes()[:100])
    with caplog.at_level(logging.WARNING), Searcher([folder], enc, exact_limit=2) as s:
        assert s.text("rot", "de", 1)[0].rel == "red.png" and len(s.index.ann) == 8
    assert "does not match its check" in caplog.text
    (folder / "red.png").unlink()
    build_index(folder, enc)
    with Searcher([folder], enc, exact_limit=2) as s:  # updated, not served stale
        assert len(s.index.ann) == 7 and "red.png" not in {h.rel for h in s.text("rot", "de", 7)}


def test_sampled_check_sees_truncation_and_overwritten_blocks_of_a_large_file(tmp_path):
    rng = np.random.default_rng(0)
    n, d = 2000, 128  # 500 KiB of float16: sampled, not hashed whole
    snap = Snapshot(tmp_path, "m")
    stamp = {"fingerprint": "f", "dim": d, "folders": {"/x": 1}}
    vecs = Vectors(np.arange(n, dtype=np.int64), rng.integers(0, 255, (n, 32), dtype=np.uint8),
                   rng.standard_normal((n, d)).astype(np.float16), [])
    snap.write(stamp, vecs)
    got = snap.read(stamp, cache=None)
    np.testing.assert_array_equal(np.asarray(got.matrix), vecs.matrix)
    assert snap.read({**stamp, "folders": {"/x": 2}}, cache=None) is None  # another generation: stale
    path = snap.part("f16")
    check = file_check(path)
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2 - 2048)  # a block the check samples (64 spread over the file)
        f.write(b"\xff" * 8192)
    assert file_check(path) != check and snap.read(stamp, cache=None) is None
    snap.write(stamp, vecs)
    with open(path, "ab") as f:
        f.write(b"\0")
    assert snap.read(stamp, cache=None) is None


def test_an_older_file_table_gains_the_change_counter(tmp_path):
    db = sqlite3.connect(tmp_path / "files.sqlite")
    db.execute("CREATE TABLE roots (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE)")
    db.execute("INSERT INTO roots (path) VALUES (?)", (str(tmp_path.resolve()),))
    db.commit()
    db.close()
    with FileTable(tmp_path) as t:
        assert t.generations([tmp_path]) == {str(tmp_path.resolve()): 0}
        t.touch(t.root_id(tmp_path))
        assert t.generations([tmp_path, tmp_path / "never"]) == {str(tmp_path.resolve()): 1,
                                                                 str((tmp_path / "never").resolve()): 0}


def test_a_model_by_name_loads_no_weights_for_a_cached_query_or_an_indexed_image(tmp_path, monkeypatch):
    from _tiny_openclip import tiny_openclip_model_dir

    monkeypatch.setenv("BABELCLIP_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "photos"
    write_images(folder, {"red.png": "red", "green.png": "green"})
    name = str(tiny_openclip_model_dir(tmp_path, "clip"))  # a local model folder: its files are watched
    build_index(folder, name)
    with Searcher([folder], name) as s:
        first = s.text("a red apple", "en", 2)
    with Searcher([folder], name) as s:
        assert not s.encoder.loaded  # a LazyEncoder from the record of the first open
        assert s.text("a red apple", "en", 2) == first and not s.encoder.loaded
        assert s.image(folder / "red.png", 1)[0].rel == "green.png" and not s.encoder.loaded
        s.text("a green apple", "en", 2)  # not cached: the weights load now
        assert s.encoder.loaded


def test_an_hnsw_file_from_before_snapshots_is_taken_over(env):
    pytest.importorskip("usearch")
    from babelclip.cache_dir import search_dir

    folder, enc = env
    with Searcher([folder], enc, exact_limit=2) as s:
        assert s.index.kind == "hnsw"
        name = next(p for p in (search_dir() / "snapshots").glob("*.usearch")).name
    legacy = search_dir() / name
    os.replace(search_dir() / "snapshots" / name, legacy)  # the layout before snapshots
    legacy.with_suffix(".recall.json").write_text("{}")
    with Searcher([folder], enc, exact_limit=2) as s:
        assert s.text("blau", "de", 1)[0].rel == "sub/deep/blue.png" and len(s.index.ann) == 3
    assert not legacy.exists() and not legacy.with_suffix(".recall.json").exists()
    assert (search_dir() / "snapshots" / name).exists()
