"""Indexing speed on real images: Tux Paint stamps with babel-lite, cold and with nothing changed.

    nice -n 0 python bench/search_index.py [--limit N] [--batch-size B]

Copies ``--limit`` PNG stamps into a fresh folder with a fresh cache, then times
``build_index`` three ways: cold (every image decoded and encoded), a re-index with nothing
changed (a scan by size + mtime; no file read, no forward pass), and the model load that both
include (create_model), so the scan's own rate is visible. Prints images/s for each.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

STAMPS = Path("/usr/share/tuxpaint/stamps")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-search-"))
    os.environ["BABELCLIP_CACHE"] = str(work / "cache")
    from babelclip import create_model
    from babelclip.search import build_index

    files = sorted(STAMPS.rglob("*.png"))[: args.limit]
    for i, f in enumerate(files):
        shutil.copy(f, work / f"{i:04d}_{f.name}")
    model = create_model("babel-lite")  # loaded once; load time measured separately below
    t = time.perf_counter()
    cold = build_index(work, model, batch_size=args.batch_size)
    t_cold = time.perf_counter() - t
    t = time.perf_counter()
    warm = build_index(work, model, batch_size=args.batch_size)
    t_warm = time.perf_counter() - t
    t = time.perf_counter()
    create_model("babel-lite")
    t_load = time.perf_counter() - t
    print(f"cpus {os.cpu_count()}; {len(files)} Tux Paint stamps (PNG, RGBA), babel-lite float32, batch {args.batch_size}")
    print(f"cold index:        {t_cold:7.2f} s  {cold.encoded / t_cold:8.1f} images/s  ({cold.encoded} encoded, "
          f"{len(cold.failed)} skipped)")
    print(f"re-index, no change: {t_warm:5.3f} s  {warm.files / t_warm:8.0f} images/s  ({warm.encoded} encoded, "
          f"{warm.scan.unchanged} unchanged)")
    print(f"model load (babelclip index pays it once per run): {t_load:.2f} s")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
