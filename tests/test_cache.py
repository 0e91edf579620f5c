"""The embedding cache: atomic batches, bitwise-identical resume, concurrent writers."""
from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest
from _tiny_encoder import TinyEncoder
from PIL import Image

from babelclip.data.images import image_folder
from babelclip.eval.cache import EmbeddingCache
from babelclip.eval.encode import encode_images, encode_texts


def _folder(root, n=10):
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (9, 11, 3), dtype=np.uint8)).save(root / f"{i:03d}.png")
    return image_folder(root)


class Killed(RuntimeError):
    pass


def test_killed_run_resumes_bitwise_identical(tmp_path, monkeypatch):
    (tmp_path / "img").mkdir()
    src = _folder(tmp_path / "img")
    enc = TinyEncoder()
    with EmbeddingCache(tmp_path / "ref", enc.fingerprint.key, enc.dim) as ref_cache:
        ref = encode_images(enc, src, ref_cache, batch_size=3)
    calls = {"n": 0}
    real_put = EmbeddingCache.put_images

    def dying_put(self, *a, **k):  # the process dies right after its 2nd committed batch
        real_put(self, *a, **k)
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed

    enc2 = TinyEncoder()
    with EmbeddingCache(tmp_path / "c", enc2.fingerprint.key, enc2.dim) as cache:
        monkeypatch.setattr(EmbeddingCache, "put_images", dying_put)
        with pytest.raises(Killed):
            encode_images(enc2, src, cache, batch_size=3)
        monkeypatch.setattr(EmbeddingCache, "put_images", real_put)
        assert cache.counts()["images"] == 6  # two whole batches committed, nothing half-written
    with EmbeddingCache(tmp_path / "c", enc2.fingerprint.key, enc2.dim) as cache:  # a new process, same dir
        enc2.image_forwards = 0
        resumed = encode_images(enc2, src, cache, batch_size=3)
        assert enc2.image_forwards == 4  # only what was never committed
        assert resumed.n_cached == 6 and resumed.n_encoded == 4
    assert resumed.ids == ref.ids
    assert resumed.vectors.tobytes() == ref.vectors.tobytes()


def test_rollback_leaves_no_partial_batch(tmp_path):
    with EmbeddingCache(tmp_path, "fp", 4) as cache:
        with pytest.raises(ValueError, match="does not fit"):
            cache.put_images(["a", "b"], [np.ones(4), np.ones(5)])
        assert cache.counts()["images"] == 0
    with pytest.raises(ValueError, match="4-d vectors"):
        EmbeddingCache(tmp_path, "fp", 8)


def _writer(path, wid, n, q):
    try:
        with EmbeddingCache(path, "fp", 8, timeout=60) as cache:
            for i in range(n):
                keys = [f"shared-{i}", f"w{wid}-{i}"]  # one key both write, one of its own
                cache.put_images(keys, np.full((2, 8), wid * 1000 + i, np.float32))
                cache.put_texts("de", [f"t{i}"], np.full((1, 8), wid, np.float32))
                cache.get_images(keys)
        q.put("ok")
    except Exception as e:  # pragma: no cover - reported to the parent
        q.put(repr(e))


def test_two_processes_share_a_cache(tmp_path):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(tmp_path, w, 60, q)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [q.get(timeout=5) for _ in procs] == ["ok", "ok"]
    with EmbeddingCache(tmp_path, "fp", 8) as cache:
        assert cache.counts() == {"images": 180, "texts": 60}
        got = cache.get_images([f"shared-{i}" for i in range(60)] + [f"w2-{i}" for i in range(60)])
        for i in range(60):  # first writer wins, whole rows, never a mix
            v = got[f"shared-{i}"]
            assert len(set(v.tolist())) == 1 and v[0] in (1000 + i, 2000 + i)
            assert np.all(got[f"w2-{i}"] == 2000 + i)


def test_texts_encoded_once_across_calls_and_keyed_by_language(tmp_path):
    enc = TinyEncoder()
    with EmbeddingCache(tmp_path, enc.fingerprint.key, enc.dim) as cache:
        a = encode_texts(enc, ["ein Hund", "eine Katze", "ein Hund"], "de", cache)
        assert enc.text_forwards == 2 and np.array_equal(a[0], a[2])
        encode_texts(enc, ["eine Katze", "ein Hund"], "de", cache)
        assert enc.text_forwards == 2
        encode_texts(enc, ["ein Hund"], "ja", cache)  # same string, other language: its own key
        assert enc.text_forwards == 3
    shared = TinyEncoder(text_language_agnostic=True)
    with EmbeddingCache(None, shared.fingerprint.key, shared.dim) as cache:
        encode_texts(shared, ["x y"], "de", cache)
        encode_texts(shared, ["x y"], "ja", cache)
        assert shared.text_forwards == 1


def test_repeated_call_reads_one_block_bitwise_and_encodes_nothing(tmp_path, monkeypatch):
    texts = ["ein Hund", "eine Katze", "ein Hund", "ein Baum"]
    enc = TinyEncoder()
    with EmbeddingCache(tmp_path, enc.fingerprint.key, enc.dim) as cache:
        cold = encode_texts(enc, texts, "de", cache)
        assert enc.text_forwards == 3
    enc2 = TinyEncoder()  # a later run: new process, same cache directory

    def no_row_reads(*a, **k):
        raise AssertionError("a warm call must not read per-text rows")

    monkeypatch.setattr(EmbeddingCache, "get_texts", no_row_reads)
    with EmbeddingCache(tmp_path, enc2.fingerprint.key, enc2.dim) as cache:
        warm = encode_texts(enc2, texts, "de", cache)
    assert enc2.text_forwards == 0
    assert warm.tobytes() == cold.tobytes()
    assert np.array_equal(warm[0], warm[2])  # duplicates map to their text's row
    warm[0] += 1.0  # callers get a writable array that does not alias the cache


def test_changed_text_list_misses_the_block_and_reuses_rows(tmp_path, monkeypatch):
    import babelclip.eval.encode as enc_mod

    monkeypatch.setattr(enc_mod, "TEXT_CHUNK_BATCHES", 1)  # with batch_size=1: chunks of one text
    enc = TinyEncoder()
    with EmbeddingCache(tmp_path, enc.fingerprint.key, enc.dim) as cache:
        a = encode_texts(enc, ["ein Hund", "eine Katze"], "de", cache, batch_size=1)
        b = encode_texts(enc, ["ein Hund", "eine Kuh"], "de", cache, batch_size=1)  # one label changed
        assert enc.text_forwards == 3  # only the new text
        assert b[0].tobytes() == a[0].tobytes()
        fresh = TinyEncoder().encode_texts(["eine Kuh"], "de")
        assert b[1].tobytes() == fresh[0].tobytes()  # the new text, not the stale block's row
        c = encode_texts(enc, ["eine Katze", "ein Hund"], "de", cache, batch_size=1)  # same texts, other order
        assert enc.text_forwards == 3 and c.tobytes() == a[::-1].tobytes()
        assert cache.get_text_block("ja", ["ein Hund", "eine Katze"]) is None  # keyed by language
        assert cache.get_text_block("de", ["ein Hund", "eine Katze"]).tobytes() == a.tobytes()
    with pytest.raises(ValueError, match="does not fit"):
        EmbeddingCache(None, "fp", 4).put_text_block("de", ["x"], np.ones((2, 4)))
    # the digest separates lists that concatenate to the same string
    assert EmbeddingCache.texts_digest(["ab", "c"]) != EmbeddingCache.texts_digest(["a", "bc"])


def test_killed_text_call_stores_no_block_and_resumes_bitwise(tmp_path, monkeypatch):
    import babelclip.eval.encode as enc_mod

    texts = [f"text number {i}" for i in range(40)]
    ref_enc = TinyEncoder()
    with EmbeddingCache(None, ref_enc.fingerprint.key, ref_enc.dim) as cache:
        ref = encode_texts(ref_enc, texts, "de", cache, batch_size=2)
    monkeypatch.setattr(enc_mod, "TEXT_CHUNK_BATCHES", 5)  # chunks of 10 texts
    calls = {"n": 0}
    real_put = EmbeddingCache.put_texts

    def dying_put(self, *a, **k):
        real_put(self, *a, **k)
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed

    enc = TinyEncoder()
    with EmbeddingCache(tmp_path, enc.fingerprint.key, enc.dim) as cache:
        monkeypatch.setattr(EmbeddingCache, "put_texts", dying_put)
        with pytest.raises(Killed):
            encode_texts(enc, texts, "de", cache, batch_size=2)
        monkeypatch.setattr(EmbeddingCache, "put_texts", real_put)
        assert cache.get_text_block("de", texts) is None
        assert cache.counts()["texts"] == 20
    enc2 = TinyEncoder()
    with EmbeddingCache(tmp_path, enc2.fingerprint.key, enc2.dim) as cache:
        resumed = encode_texts(enc2, texts, "de", cache, batch_size=2)
        assert enc2.text_forwards == 20
    assert resumed.tobytes() == ref.tobytes()


def test_texts_digest_separates_lists_and_is_stable():
    d = EmbeddingCache.texts_digest
    assert d(["ein Hund", "Katze"]) == d(["ein Hund", "Katze"])
    for a, b in [(["ab", "c"], ["a", "bc"]), (["é", "a"], ["éa"]), (["a\x00", "b"], ["a", "\x00b"]),
                 (["x", "y"], ["y", "x"]), ([], [""]), ([""], ["", ""])]:
        assert d(a) != d(b), (a, b)
    assert len(d(["\ud800 lone surrogate", "猫"])) == 64  # any Python str hashes, no UnicodeError


def test_opening_waits_for_another_process_holding_the_new_file(tmp_path):
    """Switching a new cache to WAL needs an exclusive lock and SQLite answers "database is locked"
    at once, ignoring busy_timeout, while another connection holds a lock (two ranks creating the
    same cache): the cache must wait for it instead of failing."""
    import sqlite3
    import threading

    path = tmp_path / "fp.sqlite"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE IF NOT EXISTS held (x)")
    other.execute("BEGIN IMMEDIATE")
    threading.Timer(0.3, lambda: other.execute("COMMIT")).start()
    with EmbeddingCache(tmp_path, "fp", 4, timeout=10) as cache:
        assert cache._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()
