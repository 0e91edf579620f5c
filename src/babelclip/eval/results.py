"""One results schema for every task, model and dataset.

A :class:`Result` is one (model, dataset, task, language, prompt set) cell with its metric values
and the counts behind them. A run writes a list of them as JSON (``{"schema": ..., "results":
[...]}``); :func:`to_table` turns any number of result files into one flat table (pandas when
installed) for analysis and reports.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable

from ..errors import BabelclipError

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
    """Write results atomically (temp file + rename), so a killed run never leaves half a file.

    The file gets the permissions of any new file (``0666`` less the umask, typically ``0644``);
    a failed write (a full disk) removes its temporary file. A string that is not valid Unicode
    (a lone surrogate from a file name that is not UTF-8) is written as a JSON ``\\uXXXX`` escape.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"schema": SCHEMA, "meta": meta or {}, "results": [asdict(r) for r in results]}
    write_atomic(path, lambda f: json.dump(doc, f, ensure_ascii=False, indent=1))
    return path


def write_atomic(path: Path, write: Any, *, newline: str | None = None) -> None:
    """Call ``write(f)`` on a new text file beside ``path``, then rename it to ``path``.

    The temporary file is made with mode ``0666`` (the umask applies, unlike ``mkstemp``'s
    ``0600``) and removed when anything fails, so no ``*.tmp`` is left behind.
    """
    for attempt in range(100):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{attempt}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 stale temporaries of this very pid
        raise FileExistsError(f"cannot create a temporary file beside {path}")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace", newline=newline) as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_results(path: str | os.PathLike) -> list[Result]:
    """Read a file written by :func:`save_results`; anything else (not JSON, not UTF-8, another
    schema, a malformed record) is a :class:`~babelclip.errors.BabelclipError` naming the file."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise BabelclipError(f"{path}: not valid JSON ({e})") from None
    except UnicodeDecodeError as e:
        raise BabelclipError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason}); expected a babelclip results file") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise BabelclipError(f"{path}: not a babelclip results file (expected schema {SCHEMA!r})")
    records = doc.get("results")
    if not isinstance(records, list):
        raise BabelclipError(f"{path}: 'results' must be a list of result records, got {type(records).__name__}")
    return [result_from_dict(r, f"{path}: result {i}") for i, r in enumerate(records)]


_STR_FIELDS = ("model", "fingerprint", "dataset", "task", "language", "prompts", "labels", "protocol")
_REQUIRED = ("model", "fingerprint", "dataset", "task", "language", "metrics")


def result_from_dict(record: Any, where: str) -> Result:
    """A :class:`Result` from one JSON record, every field type-checked; ``where`` prefixes errors."""
    if not isinstance(record, dict):
        raise BabelclipError(f"{where}: expected an object with {', '.join(_REQUIRED)}, got {type(record).__name__}")
    missing = [k for k in _REQUIRED if k not in record]
    unknown = sorted(set(record) - {f.name for f in fields(Result)})
    if missing or unknown:
        raise BabelclipError(f"{where}: " + "; ".join(
            ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unknown field(s) {', '.join(unknown)}"] if unknown else [])))
    for k in _STR_FIELDS:
        if k in record and not isinstance(record[k], str):
            raise BabelclipError(f"{where}: {k} must be a string, got {record[k]!r:.80}")
    for k, kinds, what in (("metrics", (int, float), "numbers"), ("counts", (int,), "integers")):
        value = record.get(k, {})
        if not isinstance(value, dict) or not all(
                isinstance(v, kinds) and not isinstance(v, bool) for v in value.values()):
            raise BabelclipError(f"{where}: {k} must map names to {what}, got {value!r:.80}")
    if not isinstance(record.get("extra", {}), dict):
        raise BabelclipError(f"{where}: extra must be an object, got {record['extra']!r:.80}")
    try:
        return Result(**record)
    except ValueError as e:  # an unknown task
        raise BabelclipError(f"{where}: {e}") from None


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
