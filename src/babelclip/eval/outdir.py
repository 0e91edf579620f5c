"""The ``--out`` folder, checked before any compute: writable, not under a file, and never
silently taking over another run's results.

Rule for an existing ``results.json``: a run of the same model on the same benchmark (same
``model`` and ``benchmark``/``dataset`` in its meta) is a re-run and replaces it; any other
run refuses, naming the run already there, unless ``overwrite=True`` (``--overwrite``).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

RESULTS = "results.json"


class OutputError(ValueError):
    """``--out`` cannot take this run's results; the message says why and what to do."""


def check_out(out: str | os.PathLike, *, model: str, benchmark: str, overwrite: bool = False) -> Path:
    """Create ``out`` if needed and prove it writable; refuse another run's results (module doc)."""
    out = Path(out)
    for p in (out, *out.parents):
        if p.exists() and not p.is_dir():
            raise OutputError(f"--out {out}: {p} is a file, not a folder; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise OutputError(f"--out {out}: cannot write there ({e.strerror or e}); choose a writable folder") from None
    existing = out / RESULTS
    if existing.exists() and not overwrite:
        other = _existing_run(existing)
        if other is None or other != (model, benchmark):
            said = "a file babelclip cannot read" if other is None else f"results of {other[0]} on {other[1]}"
            raise OutputError(f"--out {out} already holds {said} ({existing}); this run ({model} on {benchmark}) "
                              "would replace them: choose another --out, or pass --overwrite to replace them")
    return out


def _existing_run(path: Path) -> tuple[str, str] | None:
    """(model, benchmark) of a results file; files of older versions name only their dataset
    (``babel-imagenet-92``), which leads back to its benchmark through the registry."""
    from ..data.benchmarks import find_benchmark

    try:
        meta = json.loads(path.read_text(encoding="utf-8")).get("meta", {})
        named = str(meta.get("benchmark") or meta["dataset"])
        model = str(meta["model"])
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return None
    bench = None if "benchmark" in meta else find_benchmark(named)
    return model, bench.name if bench is not None else named
