"""One results schema for every task, model and dataset.

A :class:`Result` is one (model, dataset, task, language, prompt set) cell with its metric values
and the counts behind them. A run writes a list of them as JSON (``{"schema": ..., "results":
[...]}``); :func:`to_table` turns any number of result files into one flat table (pandas when
installed) for analysis and reports.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

SCHEMA = "babelclip.results/1"

TASKS = ("zeroshot_classification", "retrieval", "image_retrieval", "knn_classification")


@dataclass
class Result:
    model: str  # the name given to create_model
    fingerprint: str  # Fingerprint.key of the model
    dataset: str  # e.g. "babel-imagenet-92", "tuxpaint", "xtd"
    task: str  # one of TASKS
    language: str  # BCP-47 tag
    metrics: dict[str, float]
    counts: dict[str, int] = field(default_factory=dict)
    prompts: str = ""  # prompt set ("label", "openai-en", "nllb", "ensemble"...), "" for retrieval
    labels: str = ""  # label set and its cleaning policy, e.g. "babel-imagenet-92/raw"
    protocol: str = ""  # e.g. retrieval "all-captions" | "first-caption"; class subset "fixed-k=100"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; allowed: {', '.join(TASKS)}")

    def as_row(self) -> dict[str, Any]:
        """A flat dict: identifying columns, then one column per metric and count."""
        row = {k: v for k, v in asdict(self).items() if k not in ("metrics", "counts", "extra")}
        row.update(self.metrics)
        row.update({f"n_{k}": v for k, v in self.counts.items()})
        return row


def save_results(results: Iterable[Result], path: str | os.PathLike, meta: dict[str, Any] | None = None) -> Path:
    """Write results atomically (temp file + rename), so a killed run never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"schema": SCHEMA, "meta": meta or {}, "results": [asdict(r) for r in results]}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
    os.replace(tmp, path)
    return path


def load_results(path: str | os.PathLike) -> list[Result]:
    """Read a file written by :func:`save_results`; anything else is a clear error."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a babelclip results file (expected schema {SCHEMA!r})")
    return [Result(**r) for r in doc["results"]]


def to_table(results: Iterable[Result]):
    """A pandas DataFrame with one row per result (``pip install 'babelclip[eval]'``)."""
    import pandas as pd

    return pd.DataFrame([r.as_row() for r in results])


_ID_COLUMNS = ("model", "fingerprint", "dataset", "task", "language", "prompts", "labels", "protocol")


def from_rows(rows: Iterable[dict[str, Any]]) -> list[Result]:
    """The inverse of :meth:`Result.as_row` (e.g. rows of a CSV written from :func:`to_table`).

    Identifying columns become fields, ``n_*`` columns counts, every other column a metric;
    empty cells (a metric another row has) are dropped. ``extra`` is not in the table and
    comes back empty.
    """
    out = []
    for i, row in enumerate(rows):
        missing = [c for c in ("model", "task", "language") if c not in row]
        if missing:
            raise ValueError(f"row {i}: missing column(s) {', '.join(missing)}; a results table has {', '.join(_ID_COLUMNS)}")
        ids = {c: _cell_str(row.get(c)) for c in _ID_COLUMNS}
        metrics: dict[str, float] = {}
        counts: dict[str, int] = {}
        for k, v in row.items():
            if k in _ID_COLUMNS or _is_empty(v):
                continue
            if k.startswith("n_"):
                counts[k[2:]] = int(float(v))
            else:
                try:
                    metrics[k] = float(v)
                except (TypeError, ValueError):
                    raise ValueError(f"row {i}: column {k!r} is neither an identifying column nor a number: {v!r}") from None
        out.append(Result(**ids, metrics=metrics, counts=counts))
    return out


def _is_empty(v: Any) -> bool:
    return v is None or v == "" or (isinstance(v, float) and math.isnan(v))


def _cell_str(v: Any) -> str:
    return "" if _is_empty(v) else str(v)
