"""The embedding cache under hostile conditions: odd file names, transient read errors, damaged
rows and files, folders that cannot be written, a full disk. None of them may abort a run with a
traceback or silently change a number (issue 17, items 1, 2, 6, 7)."""
from __future__ import annotations

import json
import os
import sqlite3
import sys

import numpy as np
import pytest
from _tiny_encoder import TinyEncoder
from PIL import Image

from babelclip.data.images import image_folder
from babelclip.errors import BabelclipError, CacheError
from babelclip.eval.cache import EmbeddingCache
from babelclip.eval.encode import encode_images, encode_texts
from babelclip.eval.results import Result, load_results, save_results

BAD_NAME = os.fsdecode(b"caf\xe9-latin1.png")  # not UTF-8: a lone surrogate in the str


def _img(path, seed=0, size=(9, 11)):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)


def _folder(root, n=4):
    root.mkdir(exist_ok=True)
    for i in range(n):
        _img(root / f"{i:03d}.png", i)
    return root


needs_bytes_names = pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="file names must be bytes (Linux)")


# -- item 1: file names that are not UTF-8 ------------------------------------------------------------
@needs_bytes_names
@pytest.mark.parametrize("on_disk", [True, False])
def test_non_utf8_file_name_never_aborts_and_reaches_the_results(tmp_path, on_disk):
    root = _folder(tmp_path / "img", 2)
    _img(os.path.join(root, BAD_NAME), 7)
    with open(os.path.join(root, os.fsdecode(b"broken-\xff.png")), "wb") as f:
        f.write(b"not a png")
    src = image_folder(root)
    enc = TinyEncoder()
    with EmbeddingCache(tmp_path / "c" if on_disk else None, enc.fingerprint.key, enc.dim) as cache:
        emb = encode_images(enc, src, cache, batch_size=2)
        again = encode_images(enc, src, cache, batch_size=2)
    assert len(emb.ids) == 3 and len(emb.failed) == 1
    assert again.vectors.tobytes() == emb.vectors.tobytes() and again.n_encoded == 0
    # ids are printable text (the bytes escaped), so results meta and logs can carry them
    bad_id = next(i for i in emb.ids if i.startswith("caf"))
    assert bad_id == "caf\\xe9-latin1.png"
    (failed_id,) = emb.failed
    assert failed_id == "broken-\\xff.png"
    out = save_results([], tmp_path / "out" / "results.json", {"images_skipped": emb.failed, "ids": emb.ids})
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["meta"]["images_skipped"] == emb.failed


# -- item 2: transient read errors are retried; verified content -------------------------------------
def test_a_permission_error_is_not_remembered(tmp_path, monkeypatch):
    import babelclip.eval.encode as encode_mod

    root = _folder(tmp_path / "img", 3)
    src = image_folder(root)
    enc = TinyEncoder()
    real_read = encode_mod.read_bytes

    def denied(item):  # what chmod 000 gives a non-root user (tests may run as root)
        if item.id == "001.png":
            raise PermissionError(13, "Permission denied", item.path)
        return real_read(item)

    monkeypatch.setattr(encode_mod, "read_bytes", denied)
    with EmbeddingCache(tmp_path / "c", enc.fingerprint.key, enc.dim) as cache:
        first = encode_images(enc, src, cache, batch_size=2)
    monkeypatch.setattr(encode_mod, "read_bytes", real_read)  # the user fixed the permissions
    assert "001.png" in first.failed and "PermissionError" in first.failed["001.png"]
    assert "001.png" in first.failed["001.png"]  # the message names the file
    with EmbeddingCache(tmp_path / "c", enc.fingerprint.key, enc.dim) as cache:
        second = encode_images(enc, src, cache, batch_size=2)
    assert second.failed == {} and "001.png" in second.ids  # retried once readable
    with EmbeddingCache(None, enc.fingerprint.key, enc.dim) as fresh:
        cold = encode_images(enc, src, fresh, batch_size=2)
    np.testing.assert_allclose(second.vectors, cold.vectors, rtol=1e-5, atol=1e-6)  # not the cache's history


def test_an_undecodable_file_is_remembered_by_content(tmp_path):
    root = _folder(tmp_path / "img", 2)
    (root / "bad.png").write_bytes(b"not a png at all")
    src = image_folder(root)
    enc = TinyEncoder()
    with EmbeddingCache(tmp_path / "c", enc.fingerprint.key, enc.dim) as cache:
        first = encode_images(enc, src, cache)
        assert list(first.failed) == ["bad.png"]
        assert len(cache._db.execute("SELECT * FROM failures").fetchall()) == 1
        calls = []
        import babelclip.eval.encode as encode_mod

        real = encode_mod._Decoded.__getitem__
        encode_mod._Decoded.__getitem__ = lambda self, i: calls.append(i) or real(self, i)
        try:
            again = encode_images(enc, src, cache)
        finally:
            encode_mod._Decoded.__getitem__ = real
    assert calls == [] and "bad.png" in again.failed  # not read or decoded again


def test_verify_content_refreshes_an_image_rewritten_with_same_size_and_mtime(tmp_path):
    root = tmp_path / "img"
    root.mkdir()
    p = root / "000.bmp"  # BMP: the same size whatever the pixels
    _img(p, 1)
    enc = TinyEncoder()
    with EmbeddingCache(tmp_path / "c", enc.fingerprint.key, enc.dim) as cache:
        before = encode_images(enc, image_folder(root), cache, content_hash=True)
        st = p.stat()
        data = bytearray(p.read_bytes())
        _img(p, 99)  # other pixels; same size on disk forced below
        new = p.read_bytes()
        assert len(new) == len(data)
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
        stale = encode_images(enc, image_folder(root), cache)  # size+mtime: documented limit
        verified = encode_images(enc, image_folder(root), cache, content_hash=True)
    with EmbeddingCache(None, enc.fingerprint.key, enc.dim) as fresh:
        truth = encode_images(enc, image_folder(root), fresh)
    assert verified.vectors.tobytes() == truth.vectors.tobytes()
    assert not np.array_equal(before.vectors[0], truth.vectors[0])
    del stale


# -- item 7: damaged bytes inside the cache -----------------------------------------------------------
def _flip_vec_bytes(db_path, table, where=""):
    db = sqlite3.connect(db_path)
    col = "vecs" if table == "text_blocks" else "vec"
    rowid, blob = db.execute(f"SELECT rowid, {col} FROM {table} {where} LIMIT 1").fetchone()
    damaged = bytearray(blob)
    damaged[5] ^= 0x40
    db.execute(f"UPDATE {table} SET {col} = ? WHERE rowid = ?", (bytes(damaged), rowid))
    db.commit()
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"  # SQLite sees nothing wrong
    db.close()


def test_overwritten_image_row_is_detected_and_recomputed(tmp_path, caplog):
    root = _folder(tmp_path / "img", 3)
    enc = TinyEncoder()
    with EmbeddingCache(tmp_path / "c", enc.fingerprint.key, enc.dim) as cache:
        ref = encode_images(enc, image_folder(root), cache)
        path = cache.path
    _flip_vec_bytes(path, "images")
    with EmbeddingCache(tmp_path / "c", enc.fingerprint.key, enc.dim) as cache:
        enc.image_forwards = 0
        again = encode_images(enc, image_folder(root), cache)
    # the damaged row is recomputed alone (a batch of 1 instead of 3: float rounding may differ)
    np.testing.assert_allclose(again.vectors, ref.vectors, rtol=1e-5, atol=1e-6)
    assert enc.image_forwards == 1
    assert "checksum" in caplog.text


@pytest.mark.parametrize("table", ["texts", "text_blocks"])
def test_overwritten_text_rows_are_detected_and_recomputed(tmp_path, table, caplog):
    enc = TinyEncoder()
    texts = ["ein Hund", "eine Katze", "ein Vogel"]
    with EmbeddingCache(tmp_path, enc.fingerprint.key, enc.dim) as cache:
        ref = encode_texts(enc, texts, "de", cache)
        path = cache.path
    _flip_vec_bytes(path, table)
    if table == "texts":  # without the block the per-text rows are read
        db = sqlite3.connect(path)
        db.execute("DELETE FROM text_blocks")
        db.commit()
        db.close()
    with EmbeddingCache(tmp_path, enc.fingerprint.key, enc.dim) as cache:
        again = encode_texts(enc, texts, "de", cache)
    assert again.tobytes() == ref.tobytes()
    assert "checksum" in caplog.text


def test_a_cache_written_without_checksums_is_still_read(tmp_path):
    enc = TinyEncoder()
    db_path = tmp_path / f"{enc.fingerprint.key}.sqlite"
    db = sqlite3.connect(db_path)  # the layout of babelclip <= 0.x: no checksum column
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE images (item TEXT PRIMARY KEY, vec BLOB NOT NULL);
        CREATE TABLE failures (item TEXT PRIMARY KEY, reason TEXT NOT NULL);
        CREATE TABLE texts (lang TEXT NOT NULL, text TEXT NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (lang, text));
        CREATE TABLE text_blocks (lang TEXT NOT NULL, digest TEXT NOT NULL, n INTEGER NOT NULL,
                                  vecs BLOB NOT NULL, PRIMARY KEY (lang, digest));
    """)
    v = np.arange(enc.dim, dtype=np.float32)
    db.execute("INSERT INTO meta VALUES ('dim', ?)", (str(enc.dim),))
    db.execute("INSERT INTO texts VALUES ('de', 'alt', ?)", (v.tobytes(),))
    db.commit()
    db.close()
    with EmbeddingCache(tmp_path, enc.fingerprint.key, enc.dim) as cache:
        got = cache.get_texts("de", ["alt"])
    np.testing.assert_array_equal(got["alt"], v)


def test_truncated_cache_file_gives_advice(tmp_path):
    enc = TinyEncoder()
    with EmbeddingCache(tmp_path, enc.fingerprint.key, enc.dim) as cache:
        encode_texts(enc, [f"text {i}" * 20 for i in range(300)], "de", cache)
        path = cache.path
    for suffix in ("-wal", "-shm"):
        if os.path.exists(f"{path}{suffix}"):
            os.remove(f"{path}{suffix}")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CacheError) as e, EmbeddingCache(tmp_path, enc.fingerprint.key, enc.dim) as cache:
        encode_texts(enc, [f"text {i}" * 20 for i in range(300)], "de", cache)
    msg = str(e.value)
    assert str(path) in msg and "--cache-dir" in msg and "delete" in msg
    assert isinstance(e.value, BabelclipError) and isinstance(e.value, ValueError)


def test_garbage_cache_file_gives_advice(tmp_path):
    enc = TinyEncoder()
    (tmp_path / f"{enc.fingerprint.key}.sqlite").write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(CacheError, match="--cache-dir"):
        EmbeddingCache(tmp_path, enc.fingerprint.key, enc.dim)


# -- item 6: folders that cannot be written; results files -------------------------------------------
def test_cache_folder_under_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(CacheError) as e:
        EmbeddingCache(tmp_path / "f" / "cache", "fp", 4)
    assert str(tmp_path / "f" / "cache") in str(e.value) and "--cache-dir" in str(e.value)


def test_read_only_cache_is_a_clear_error_with_the_real_time_waited(tmp_path, monkeypatch):
    d = tmp_path / "ro"
    with EmbeddingCache(d, "fp", 4) as cache:
        cache.put_texts("de", ["x"], np.ones((1, 4), np.float32))
    real_connect = sqlite3.connect

    def read_only(target, *a, **k):  # what a read-only file or folder gives a non-root user
        return real_connect(f"file:{target}?mode=ro", *a, uri=True, **k)

    monkeypatch.setattr(sqlite3, "connect", read_only)
    with pytest.raises(CacheError) as e:
        EmbeddingCache(d, "fp", 4, timeout=0.5)
    msg = str(e.value)
    assert str(d) in msg and "--cache-dir" in msg
    assert "120" not in msg and "waited 0 s" not in msg


def test_failed_results_write_leaves_no_temp_file(tmp_path, monkeypatch):
    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(json, "dump", full)
    with pytest.raises(OSError):
        save_results([], tmp_path / "results.json")
    assert list(tmp_path.iterdir()) == []


def test_results_file_respects_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        p = save_results([Result("m", "fp", "d", "retrieval", "de", {"x": 1.0})], tmp_path / "results.json")
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == 0o644
    assert load_results(p)[0].language == "de"


def test_a_cache_locked_too_long_says_how_long_it_really_waited(tmp_path):
    import re

    with EmbeddingCache(tmp_path, "fp", 4) as cache:
        cache.put_texts("de", ["x"], np.ones((1, 4), np.float32))
        holder = sqlite3.connect(cache.path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another process mid-write, for longer than we wait
        try:
            with pytest.raises(CacheError) as e:
                EmbeddingCache(tmp_path, "fp", 4, timeout=0.3)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    msg = str(e.value)
    waited = float(re.search(r"after waiting ([\d.]+) s", msg)[1])
    assert 0.2 <= waited < 30 and str(cache.path) in msg and "--cache-dir" in msg
