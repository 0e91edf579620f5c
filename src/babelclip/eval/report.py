"""A report of per-language results: PNG charts, CSV tables and one self-contained HTML page.

This module loads results and assembles the report; the charts are drawn by
:mod:`babelclip.eval.report_plots`, the HTML by :mod:`babelclip.eval.report_html`.

For every setting (model, dataset, task, prompt set, protocol, labels) a bar chart of its
primary metric per language, sorted and coloured by resource group, with 95% CI error bars where
the results carry them, chance level as a tick, and the published numbers of the same protocol
(Babel-ImageNet release) as grey dots; for every model with both tasks the
classification-vs-retrieval scatter with Pearson's r and Spearman's ρ; tables of every value,
the group aggregates and the correlations. The HTML embeds the PNGs as base64 and references
nothing outside itself, so it can be mailed or archived as one file.
"""

from __future__ import annotations

import csv
import html
import json
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import BabelclipError
from .analysis import (
    PRIMARY_METRIC,
    SETTING_COLUMNS,
    _setting_key,
    classification_vs_retrieval,
    display_names,
    group_aggregates,
    load_published,
    matching_published,
    protocol_key,
)
from .report_html import html_table, img, page, setting_section, setting_table
from .report_plots import GROUP_COLOURS, bar_chart, scatter
from .results import SCHEMA, Result, from_rows, load_results, to_table

log = logging.getLogger(__name__)

__all__ = ["GROUP_COLOURS", "load_any", "make_report", "read_table_csv"]

ResultsLike = Result | str | os.PathLike


def load_any(items: Iterable[ResultsLike] | ResultsLike) -> list[Result]:
    """Results from :class:`Result` objects, babelclip results files, CLIP_benchmark result JSON,
    or folders of either (every ``*.json`` inside)."""
    from .clip_benchmark_compat import from_clip_benchmark

    if isinstance(items, (Result, str, os.PathLike)):
        items = [items]
    out: list[Result] = []
    for item in items:
        if isinstance(item, Result):
            out.append(item)
            continue
        path = Path(item)
        if path.is_dir():
            files = sorted(path.glob("*.json"))
            if not files:
                raise FileNotFoundError(f"{path}: no *.json results in this folder")
            out += load_any(files)
            continue
        if not path.exists():
            raise FileNotFoundError(f"results file {path} does not exist")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise BabelclipError(f"{path}: not valid JSON ({e})") from None
        except UnicodeDecodeError as e:
            raise BabelclipError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason}); expected results JSON") from None
        if isinstance(doc, dict) and doc.get("schema") == SCHEMA:
            out += load_results(path)
        elif isinstance(doc, dict) and "metrics" in doc and "pretrained" in doc:
            try:
                out.append(from_clip_benchmark(doc, source=str(path)))
            except (TypeError, AttributeError, KeyError) as e:  # a hand-made or damaged record
                raise BabelclipError(f"{path}: malformed CLIP_benchmark result ({e})") from None
        else:
            raise ValueError(
                f"{path}: neither a babelclip results file (schema {SCHEMA!r}) nor a CLIP_benchmark result"
            )
    return out


def read_table_csv(path: str | os.PathLike) -> list[Result]:
    """Results back from a ``results.csv`` the report wrote (``extra`` is not in the table)."""
    with open(path, newline="", encoding="utf-8") as f:
        return from_rows(csv.DictReader(f))


# ------------------------------------------------------------------ the report


def _setting_title(key: tuple[str, ...], names: dict[tuple[str, str], str]) -> str:
    model, fingerprint, dataset, task, prompts, protocol, labels = key
    parts = [dataset, task.replace("zeroshot_", "zero-shot "), prompts and f"prompts {prompts}", protocol, labels]
    return f"{names[(model, fingerprint)]} — " + ", ".join(p for p in parts if p)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:80] or "x"


def _published(published: str | os.PathLike | Iterable[Result] | None) -> list[Result]:
    if published is None:
        return []
    if isinstance(published, (str, os.PathLike)):
        return load_published(published)
    return list(published)


def _setting_sections(results: list[Result], groups, pub: list[Result], names, plots: Path) -> list[str]:
    """One section per setting (model by name *and* fingerprint, dataset, task, ...): bar chart,
    group means, per-language table. Generic over benchmarks: only the task picks the metric."""
    by_setting: dict[tuple, list[Result]] = {}
    for r in results:
        by_setting.setdefault(_setting_key(r), []).append(r)
    sections = []
    for i, (key, rs) in enumerate(by_setting.items()):
        title = _setting_title(key, names)
        metric = PRIMARY_METRIC[key[3]]
        if not any(metric in r.metrics for r in rs):
            log.warning("report: %s has no %s; shown in the tables only", title, metric)
            continue
        pk = protocol_key(rs[0])
        same = [p for p in pub if protocol_key(p) == pk]
        png = plots / f"{i:02d}-{_slug(' '.join(key))}.png"
        bar_chart(title, rs, metric, same, png)
        mask = np.logical_and.reduce([groups[c] == v for c, v in zip(SETTING_COLUMNS, key)])
        g = groups[mask].drop(columns=list(SETTING_COLUMNS))
        sections.append(setting_section(title, png, metric, g, setting_table(rs, metric, same), len(rs)))
    return sections


CORRELATION_COLUMNS = ["model", "classification", "retrieval", "x", "y", "n", "pearson_r", "pearson_p",
                       "spearman_rho", "spearman_p", "fingerprint"]


def _correlation_sections(results: list[Result], names, plots: Path, out: Path) -> list[str]:
    """A scatter per model with both tasks, and ``correlations.csv``."""
    import pandas as pd

    sections, rows = [], []
    for j, c in enumerate(classification_vs_retrieval(results)):
        name = names.get((c.model, c.fingerprint), c.model)
        png = plots / f"scatter-{j:02d}-{_slug(name + ' ' + c.classification + ' ' + c.retrieval)}.png"
        scatter(c, name, png)
        sections.append(f"<h2>{html.escape(name)}: classification vs retrieval</h2>\n{img(png, 'scatter')}")
        rows.append({"model": name, "fingerprint": c.fingerprint, "classification": c.classification,
                     "retrieval": c.retrieval, "x": c.classification_metric, "y": c.retrieval_metric, **c.stats})
    corr = pd.DataFrame(rows, columns=CORRELATION_COLUMNS)
    corr.to_csv(out / "correlations.csv", index=False)
    if rows:
        sections.append(f"<h2>Correlations across languages</h2>\n{html_table(corr)}")
    return sections


def make_report(
    result_paths_or_results: Iterable[ResultsLike] | ResultsLike,
    out_dir: str | os.PathLike,
    published: str | os.PathLike | Iterable[Result] | None = None,
    *,
    title: str = "babelclip report",
    n_boot: int = 1000,
) -> Path:
    """Write the report into ``out_dir`` and return the path of its ``index.html``.

    ``out_dir`` receives ``index.html`` (self-contained), ``plots/*.png``, ``results.csv`` (every
    result, one row each; :func:`read_table_csv` reads it back), ``groups.csv`` (resource-group
    means with bootstrap CIs over languages), ``correlations.csv`` and, when ``published`` (the
    Babel-ImageNet release's ``results/`` folder, or results) is given, ``published.csv`` with
    the published results of the same protocols and languages. A model is its name and its
    fingerprint: two models sharing a name are never pooled, and are shown as
    ``name [fingerprint]``.
    """
    results = load_any(result_paths_or_results)
    if not results:
        raise BabelclipError("no results to report")
    out = Path(out_dir)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    pub = matching_published(results, _published(published))
    log.info("report: %d results, %d published results of the same protocol", len(results), len(pub))
    to_table(results).to_csv(out / "results.csv", index=False)
    groups = group_aggregates(results, n_boot=n_boot)
    groups.to_csv(out / "groups.csv", index=False)
    if pub:
        to_table(pub).to_csv(out / "published.csv", index=False)
    names = display_names(results)
    sections = _setting_sections(results, groups, pub, names, plots)
    sections += _correlation_sections(results, names, plots, out)
    index = out / "index.html"
    index.write_text(page(title, results, sorted(set(names.values())), pub, sections), encoding="utf-8")
    return index
