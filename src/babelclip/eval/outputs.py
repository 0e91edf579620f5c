"""What a run writes into ``--out``: ``results.json`` (with its meta), ``results.csv``, and the
extra formats (CLIP_benchmark's JSON, MTEB-style JSON)."""
from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .results import Result, save_results

log = logging.getLogger(__name__)

# Extra outputs beside results.json/.csv, each in a folder of ``out`` named like the format.
FORMATS = ("clip-benchmark", "mteb")


def check_formats(formats: Sequence[str] | str) -> list[str]:
    """The output format names (a list, or comma-separated); an unknown one raises naming the allowed."""
    names = [f.strip() for f in formats.split(",") if f.strip()] if isinstance(formats, str) else list(formats)
    bad = [f for f in names if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown output format(s) {bad}; allowed: {', '.join(FORMATS)}")
    return names


def write_formats(results: Sequence[Result], out: Path, formats: Sequence[str], seconds: float) -> list[Path]:
    """CLIP_benchmark JSON in ``out/clip_benchmark/`` (for the tasks CLIP_benchmark has: not
    image→image retrieval or k-NN), MTEB-style JSON in ``out/mteb/``."""
    paths: list[Path] = []
    if "clip-benchmark" in formats:
        from .clip_benchmark_compat import CLIP_BENCHMARK_TASKS, write_clip_benchmark

        kept = [r for r in results if r.task in CLIP_BENCHMARK_TASKS]
        if len(kept) < len(results):
            log.info("clip-benchmark format: %d image-only results left out (CLIP_benchmark has no such task)",
                     len(results) - len(kept))
        paths += write_clip_benchmark(kept, out / "clip_benchmark")
    if "mteb" in formats:
        from .mteb_compat import write_mteb

        paths += write_mteb(results, out / "mteb", evaluation_time=seconds)
    return paths


def write_csv(results: Sequence[Result], path: Path) -> Path:
    rows = [r.as_row() for r in results]
    cols = list(dict.fromkeys(k for row in rows for k in row))
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)
    return path


def write_outputs(results: Sequence[Result], out: Path, meta: dict[str, Any], formats: Sequence[str]) -> None:
    """``results.json`` (with ``meta``), ``results.csv`` and the extra ``formats`` into ``out``."""
    path = save_results(results, out / "results.json", meta)
    write_csv(results, out / "results.csv")
    write_formats(results, out, formats, meta["seconds"]["total"])
    log.info("wrote %d results to %s", len(results), path)
