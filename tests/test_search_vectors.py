"""Exact float16 top-k, and the usearch HNSW index: recall against exact, incremental updates."""
from __future__ import annotations

import numpy as np
import pytest

from babelclip.search.vectors import VectorIndex, exact_top_k, key_of, recall_at_k, sync_ann


def _clustered(n: int, d: int = 32, clusters: int = 50, seed: int = 0) -> np.ndarray:
    """Unit vectors around random centres (embeddings of real images cluster by content)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d))
    x = centres[rng.integers(0, clusters, n)] + 0.5 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("backend", ["usearch", "numpy"])
def test_exact_top_k_matches_a_full_sort_in_float32(backend, monkeypatch):
    if backend == "numpy":  # the fallback without the search extra
        import sys

        monkeypatch.setitem(sys.modules, "usearch.index", None)
    else:
        pytest.importorskip("usearch")
    x = _clustered(3000)
    q = _clustered(5, seed=1)
    rows, scores = exact_top_k(x.astype(np.float16), q, 10)
    full = q @ x.astype(np.float16).astype(np.float32).T
    want = np.argsort(-full, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(rows, want)
    np.testing.assert_allclose(scores, np.take_along_axis(full, want, 1), atol=1e-4)
    # float16 storage moves cosines by less than 1e-3 against float32
    assert np.abs(np.sort(scores, 1) - np.sort(np.take_along_axis(q @ x.T, want, 1), 1)).max() < 1e-3
    r, s = exact_top_k(x[:3].astype(np.float16), q[0], 10)  # k above n: all rows
    assert r.shape == (1, 3) and list(s[0]) == sorted(s[0], reverse=True)


def test_key_of_is_stable_and_63_bit():
    h = "f" * 64
    assert key_of(h) == (2**64 - 1) >> 1 and key_of("0" * 63 + "1") == 0
    assert key_of("00000000000000020000") == 1


def test_hnsw_above_the_limit_reaches_recall_099_and_agrees_with_exact(tmp_path, monkeypatch):
    pytest.importorskip("usearch")
    x = _clustered(4000)
    keys = np.arange(10, 4010)
    idx = VectorIndex(keys, x, exact_limit=1000, ann_path=tmp_path / "a.usearch")
    assert idx.kind == "hnsw" and idx.recall is not None and idx.recall >= 0.99
    q = x[7] + 0.01
    ann_keys, ann_scores = idx.search(q, 5)
    ex_keys, ex_scores = idx.search(q, 5, exact=True)
    assert ann_keys[0] == ex_keys[0] == 17
    np.testing.assert_allclose(ann_scores, ex_scores, atol=2e-3)
    saved = (tmp_path / "a.recall.json").read_text()
    monkeypatch.setattr("babelclip.search.vectors.recall_at_k", lambda *a, **k: pytest.fail("measured again"))
    again = VectorIndex(keys, x, exact_limit=1000, ann_path=tmp_path / "a.usearch")  # unchanged: recall read back
    assert again.recall == idx.recall and str(len(keys)) in saved
    small = VectorIndex(keys[:500], x[:500], exact_limit=1000)
    assert small.kind == "exact" and recall_at_k(small) == 1.0


def test_hnsw_file_is_updated_incrementally(tmp_path):
    pytest.importorskip("usearch")
    path = tmp_path / "a.usearch"
    x = _clustered(1500)
    keys = np.arange(1500, dtype=np.int64)
    assert sync_ann(keys[:1000], x[:1000], path)[1]
    mtime = path.stat().st_mtime_ns
    same, changed = sync_ann(keys[:1000], x[:1000], path)  # nothing changed: file untouched
    assert not changed and path.stat().st_mtime_ns == mtime and len(same) == 1000
    keep = np.r_[keys[100:1000], keys[1000:1200]]  # 100 removed, 200 added
    ann, changed = sync_ann(keep, x[keep], path)
    assert changed
    assert set(np.asarray(ann.keys).tolist()) == set(keep.tolist())
    assert ann.search(x[1100].astype(np.float16), 1).keys[0] == 1100
    assert 5 not in set(np.asarray(ann.search(x[5].astype(np.float16), 10).keys).tolist())
    path.write_bytes(b"damaged")
    rebuilt, _ = sync_ann(keep, x[keep], path)  # a damaged file is rebuilt, not fatal
    assert len(rebuilt) == len(keep)
