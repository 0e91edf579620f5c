"""``babelclip search`` latency through the CLI on a large synthetic index, and what opening the
index's vectors costs with and without its memory-mapped snapshot.

    nice -n 0 python bench/search_cli.py [--n 100000] [--model babel-lite] [--runs 3] [--before-src DIR]

Builds, in a fresh ``BABELCLIP_CACHE``, a folder of ``--n`` small distinct files indexed by a
real scan (``FileTable.scan``: stat + SHA-256) whose vectors are synthetic unit vectors around
1000 centres (``search_latency.clustered``) at the model's dimension, stored in the embedding
cache under the model's fingerprint, as ``babelclip index`` would leave them. Then:

* in-process, with the model already loaded: ``Searcher`` open from the embedding cache (every
  vector read from SQLite, the snapshot written: what every call did before snapshots), and
  open from the snapshot (memory-mapped), and one query on each;
* through the CLI (``babelclip search "ein roter Apfel" --lang de --index DIR --model M``, a new
  process each time): the first call (query encoded, snapshot written), then ``--runs`` calls
  with the snapshot (the query's embedding cached: a model by name loads no weights), then one
  call with a new query (the weights load to encode it). ``--before-src DIR`` first times the same calls with another checkout's
  ``src`` first on ``PYTHONPATH`` (e.g. main's, for the figure before snapshots).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_index(folder: Path, n: int, encoder) -> None:
    """``n`` distinct files, scanned into the file table; synthetic vectors in the embedding cache."""
    from search_latency import clustered

    from babelclip.cache_dir import embeddings_dir
    from babelclip.eval.cache import EmbeddingCache
    from babelclip.search.store import FileTable, content_key

    for i in range(n):
        d = folder / f"{i // 1000:04d}"
        d.mkdir(exist_ok=True)
        (d / f"{i:07d}.jpg").write_bytes(i.to_bytes(8, "little"))  # not images: only scanned, never decoded
    with FileTable() as table:
        t = time.perf_counter()
        table.scan(folder)
        print(f"scan of {n:,} files: {time.perf_counter() - t:.1f} s", flush=True)
        rid = table.root_id(folder)
        x = clustered(n, encoder.dim)
        keys = [content_key(hashlib.sha256(i.to_bytes(8, "little")).hexdigest()) for i in range(n)]
        with EmbeddingCache(embeddings_dir(), encoder.fingerprint.key, encoder.dim) as cache:
            for s in range(0, n, 10_000):
                cache.put_images(keys[s : s + 10_000], x[s : s + 10_000].astype("float32"))
        table.note_model(rid, encoder.fingerprint.key, encoder.fingerprint.name, encoder.dim)
        table.touch(rid)


def in_process(folder: Path, encoder) -> None:
    from babelclip.cache_dir import search_dir
    from babelclip.search import Searcher

    for label in ("from the embedding cache (writes the snapshot)", "from the snapshot (memory-mapped)"):
        if label.startswith("from the embedding"):
            shutil.rmtree(search_dir() / "snapshots", ignore_errors=True)
        t = time.perf_counter()
        s = Searcher([folder], encoder)
        opened = time.perf_counter() - t
        t = time.perf_counter()
        s.text("ein roter Apfel", "de", 20)
        print(f"Searcher open {label}: {opened:6.3f} s; then one query {time.perf_counter() - t:6.3f} s "
              f"({len(s):,} vectors, {s.index.kind})", flush=True)
        s.close()


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    out = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return time.perf_counter() - t


def cli(folder: Path, model: str, runs: int, src: str) -> None:
    """The first call, ``runs`` repeats of the same query, then one call with a new query."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)  # "": this checkout
    base = [sys.executable, "-m", "babelclip", "search", "--lang", "de", "--index", str(folder), "--model", model,
            "--k", "20"]
    times = [_timed([*base, "ein roter Apfel"], env) for _ in range(runs + 1)]
    new = _timed([*base, "ein blaues Auto"], env)
    print(f"babelclip search (CLI, {src or 'this checkout'}): first call {times[0]:.2f} s; same query again: "
          + ", ".join(f"{s:.2f}" for s in times[1:]) + f" s; a new query: {new:.2f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--model", default="babel-lite")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--before-src", default="", help="also time the CLI of another checkout's src folder first "
                    "(e.g. main's: the figure before snapshots)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-search-cli-"))
    os.environ["BABELCLIP_CACHE"] = str(work / "cache")
    from babelclip import create_model

    t = time.perf_counter()
    encoder = create_model(args.model)
    print(f"cpus {os.cpu_count()}; {args.model} (dim {encoder.dim}) loaded in {time.perf_counter() - t:.1f} s")
    folder = work / "photos"
    folder.mkdir()
    try:
        make_index(folder, args.n, encoder)
        in_process(folder, encoder)
        if args.before_src:
            cli(folder, args.model, args.runs, args.before_src)
        cli(folder, args.model, args.runs, "")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
