"""Search latency and memory on synthetic vectors: exact float16 top-k against usearch HNSW.

    nice -n 0 python bench/search_latency.py [--sizes 10000,100000,1000000] [--dim 512] [--ann-dim D]
        [--skip-exact] [--expansions 384,512] [--save-dir DIR]

For each size: p50/p95 query latency (top-20, one query at a time, 200 queries) of exact search
on the float16 matrix and of the HNSW index; memory per million vectors (the float16 matrix,
and usearch's own ``memory_usage``); HNSW build time (usearch's threads: all cores); recall@10
of HNSW against brute force on the same sampled queries (``--skip-exact`` skips only the exact
latency figures); ``--expansions``: latency and recall at other search-time candidate-list sizes
on the same graph.

Vectors are unit-norm points around 1000 random centres (embeddings of real images cluster
by content; uniform random points in 512-d are a worst case no image collection resembles).
Queries are stored vectors plus Gaussian noise of norm 0.5. ``--ann-dim`` builds the HNSW of the
largest sizes at a smaller dimension to fit a few minutes on two cores (noted in the output).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from babelclip.search.vectors import (
    CONNECTIVITY,
    EXPANSION_SEARCH,
    VectorIndex,
    exact_top_k,
    recall_at_k,
    sync_ann,
)


def clustered(n: int, d: int, seed: int = 0, clusters: int = 1000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d), dtype=np.float32)
    out = np.empty((n, d), np.float16)
    for s in range(0, n, 100_000):  # in blocks: no float32 copy of the whole set
        m = min(100_000, n - s)
        x = centres[rng.integers(0, clusters, m)] + 0.7 * rng.standard_normal((m, d), dtype=np.float32)
        out[s : s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def percentiles(times: list[float]) -> str:
    t = np.asarray(times) * 1000
    return f"p50 {np.percentile(t, 50):7.2f} ms  p95 {np.percentile(t, 95):7.2f} ms"


def queries(x: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = x[rng.choice(len(x), n, replace=False)].astype(np.float32)
    q += rng.normal(0, 0.5 / np.sqrt(x.shape[1]), q.shape).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def latency(index: VectorIndex, qs: np.ndarray) -> str:
    times = []
    for v in qs:
        t = time.perf_counter()
        index.search(v, 20)
        times.append(time.perf_counter() - t)
    return percentiles(times)


def hnsw(n: int, d: int, x: np.ndarray, args: argparse.Namespace) -> None:
    """Build the HNSW (usearch's own threads: all cores), time queries, measure recall@10 against
    brute force on ``--queries`` sampled queries; with ``--save-dir``, also save it and time
    opening it memory-mapped (``Index.restore(view=True)``, what ``babelclip search`` does)."""
    keys = np.arange(n, dtype=np.int64)
    t = time.perf_counter()
    ann, _ = sync_ann(keys, x, None)
    build = time.perf_counter() - t
    idx = VectorIndex(keys, x, ann=ann)
    lat = latency(idx, queries(x, args.queries))
    t = time.perf_counter()
    recall = recall_at_k(idx, n_queries=args.queries)
    exact_s = time.perf_counter() - t
    print(f"n={n:>9,} d={d} HNSW (usearch f16): {lat}  build {build:6.1f} s ({n / build:,.0f} vectors/s, "
          f"{os.cpu_count()} threads)  memory {ann.memory_usage / n * 1e6 / 2**20:8.1f} MiB per million vectors "
          f"(graph + f16 vectors)  recall@10 vs exact {recall:.4f} ({args.queries} queries, brute force "
          f"{exact_s:.1f} s)", flush=True)
    for ef in (int(e) for e in args.expansions.split(",") if e):  # search-time only: no rebuild
        ann.expansion_search = ef
        print(f"n={n:>9,} d={d} HNSW expansion_search {ef}: {latency(idx, queries(x, args.queries))}  recall@10 vs "
              f"exact {recall_at_k(idx, n_queries=args.queries):.4f}", flush=True)
    ann.expansion_search = EXPANSION_SEARCH
    if args.save_dir:
        from usearch.index import Index

        path = Path(args.save_dir) / f"bench-{n}-{d}.usearch"
        ann.save(str(path))
        del idx, ann
        t = time.perf_counter()
        view = Index.restore(str(path), view=True)
        opened = time.perf_counter() - t
        print(f"n={n:>9,} d={d} HNSW file {path.stat().st_size / 2**20:,.0f} MiB; memory-mapped open "
              f"{opened * 1000:.1f} ms; queries on the mapped file: "
              f"{latency(VectorIndex(keys, x, ann=view), queries(x, args.queries, seed=2))}", flush=True)
        del view
        path.unlink()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--ann-dim", type=int, default=0, help="dimension of the HNSW at sizes >= 1M (0: --dim)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--skip-ann-above", type=int, default=10**9)
    ap.add_argument("--skip-exact", action="store_true", help="HNSW only (exact figures from an earlier run)")
    ap.add_argument("--expansions", default="", help="also measure these expansion_search values, e.g. 384,512")
    ap.add_argument("--save-dir", default="", help="also save each HNSW here and time its memory-mapped open")
    args = ap.parse_args()
    print(f"cpus {os.cpu_count()}; HNSW connectivity {CONNECTIVITY}, expansion_search {EXPANSION_SEARCH}")
    for n in map(int, args.sizes.split(",")):
        x = clustered(n, args.dim)
        if not args.skip_exact:
            times = []
            for v in queries(x, args.queries):
                t = time.perf_counter()
                exact_top_k(x, v, 20)
                times.append(time.perf_counter() - t)
            print(f"n={n:>9,} d={args.dim} exact float16: {percentiles(times)}  "
                  f"memory {x.nbytes / n * 1e6 / 2**20:8.1f} MiB per million vectors", flush=True)
        if n > args.skip_ann_above:
            continue
        d = args.ann_dim if args.ann_dim and n >= 1_000_000 else args.dim
        xa = x if d == args.dim else clustered(n, d)
        hnsw(n, d, xa, args)
        del xa, x


if __name__ == "__main__":
    main()
