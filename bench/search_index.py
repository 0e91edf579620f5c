"""Indexing speed on real images: Tux Paint stamps with babel-lite, cold and with nothing changed.

    nice -n 0 python bench/search_index.py [--limit N] [--batch-size B]

Copies ``--limit`` PNG stamps (RGBA, sorted by path) into a fresh folder with a fresh cache
(``BABELCLIP_CACHE`` in a temporary folder), then times ``build_index`` by model *name*, as
``babelclip index DIR`` runs it: cold (model load + scan + hash + decode + encode) and a
re-index with nothing changed (a scan by size + mtime: no file read, no model load, no forward
pass). Prints images/s of each, and the model load alone.
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

    folder = work / "stamps"
    folder.mkdir()
    files = sorted(STAMPS.rglob("*.png"))[: args.limit]
    for i, f in enumerate(files):
        shutil.copy(f, folder / f"{i:04d}_{f.name}")
    t = time.perf_counter()
    cold = build_index(folder, "babel-lite", batch_size=args.batch_size)
    t_cold = time.perf_counter() - t
    t = time.perf_counter()
    warm = build_index(folder, "babel-lite", batch_size=args.batch_size)
    t_warm = time.perf_counter() - t
    t = time.perf_counter()
    create_model("babel-lite")
    t_load = time.perf_counter() - t
    print(f"cpus {os.cpu_count()}; {len(files)} Tux Paint stamps (PNG, RGBA), babel-lite float32, batch {args.batch_size}")
    print(f"cold index:          {t_cold:7.2f} s  {cold.files / t_cold:8.1f} images/s  ({cold.encoded} encoded, "
          f"{len(cold.failed)} skipped; includes the model load)")
    print(f"re-index, no change: {t_warm:7.3f} s  {warm.files / t_warm:8.0f} images/s  ({warm.encoded} encoded, "
          f"{warm.scan.unchanged} unchanged, model not loaded)")
    print(f"model load alone (create_model('babel-lite'), warm file cache): {t_load:.2f} s")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
