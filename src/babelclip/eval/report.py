"""A report of per-language results: PNG charts, CSV tables and one self-contained HTML page.

For every setting (model, dataset, task, prompt set, protocol, labels) a bar chart of its
primary metric per language, sorted and coloured by resource group, with 95% CI error bars where
the results carry them, chance level as a tick, and the published numbers of the same protocol
(Babel-ImageNet release) as grey dots; for every model with both tasks the
classification-vs-retrieval scatter with Pearson's r and Spearman's ρ; tables of every value,
the group aggregates and the correlations. The HTML embeds the PNGs as base64 and references
nothing outside itself, so it can be mailed or archived as one file.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import logging
import os
import re
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..languages import UnknownLanguageError, get_language
from .analysis import (
    GROUP_ORDER,
    PRIMARY_METRIC,
    CrossTaskCorrelation,
    classification_vs_retrieval,
    group_aggregates,
    group_of,
    load_published,
    matching_published,
    protocol_key,
)
from ..errors import BabelclipError
from .results import SCHEMA, Result, from_rows, load_results, to_table

log = logging.getLogger(__name__)

__all__ = ["GROUP_COLOURS", "load_any", "make_report", "read_table_csv"]

GROUP_COLOURS = {
    "high": "#1b7837",
    "mid": "#5aae61",
    "low": "#e08214",
    "unseen": "#b2182b",
    "unknown": "#878787",
}

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


# ------------------------------------------------------------------ helpers


def _setting(r: Result) -> tuple[str, ...]:
    return (r.model, r.dataset, r.task, r.prompts, r.protocol, r.labels)


def _setting_title(key: tuple[str, ...]) -> str:
    model, dataset, task, prompts, protocol, labels = key
    parts = [
        dataset,
        task.replace("zeroshot_", "zero-shot "),
        prompts and f"prompts {prompts}",
        protocol,
        labels,
    ]
    return f"{model} — " + ", ".join(p for p in parts if p)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:80] or "x"


def _name(tag: str) -> str:
    try:
        return get_language(tag).name
    except UnknownLanguageError:
        return ""


def _order(results: Sequence[Result], metric: str) -> list[Result]:
    """Group order (high, mid, low, unseen, unknown), then best first within a group."""
    rank = {g: i for i, g in enumerate(GROUP_ORDER)}
    return sorted(
        results,
        key=lambda r: (
            rank.get(group_of(r.language), len(rank)),
            -r.metrics.get(metric, float("-inf")),
        ),
    )


# ------------------------------------------------------------------ plots


def _chance_key(metric: str) -> str:
    """The metric key holding the chance level of ``metric`` (see docs/results.md)."""
    if metric == "top1":
        return "chance"
    if re.fullmatch(r"top\d+", metric):
        return f"{metric}_chance"
    m = re.fullmatch(r"(t2i|i2t)_r@(\d+)", metric)
    return f"{m[1]}_chance@{m[2]}" if m else ""


def _bar_chart(
    key, results: list[Result], metric: str, published: list[Result], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    rows = _order([r for r in results if metric in r.metrics], metric)
    n = len(rows)
    x = np.arange(n)
    values = np.array([r.metrics[metric] for r in rows])
    groups = [group_of(r.language) for r in rows]
    fig, ax = plt.subplots(figsize=(min(max(8.0, 0.22 * n + 3.5), 60.0), 4.2), dpi=100)
    ax.bar(x, values, color=[GROUP_COLOURS.get(g, "#878787") for g in groups], width=0.8, zorder=2)
    lo, hi = f"{metric}_ci_low", f"{metric}_ci_high"
    if all(lo in r.metrics and hi in r.metrics for r in rows):
        err = np.array([[v - r.metrics[lo], r.metrics[hi] - v] for v, r in zip(values, rows)]).T
        ax.errorbar(
            x,
            values,
            yerr=np.clip(err, 0, None),
            fmt="none",
            ecolor="black",
            elinewidth=0.8,
            capsize=1.5,
            zorder=3,
        )
    chance_key = _chance_key(metric)
    if not all(chance_key in r.metrics for r in rows):
        chance_key = ""
    if chance_key:
        ax.scatter(
            x,
            [r.metrics[chance_key] for r in rows],
            marker="_",
            color="black",
            s=40,
            zorder=4,
            linewidths=1,
        )
    handles = [Patch(color=GROUP_COLOURS[g], label=g) for g in GROUP_ORDER if g in groups]
    if published:
        pos = {r.language: i for i, r in enumerate(rows)}
        pts = [
            (pos[p.language], p.metrics[metric])
            for p in published
            if p.language in pos and metric in p.metrics
        ]
        if pts:
            px, py = zip(*pts)
            ax.scatter(px, py, s=9, color="#404040", alpha=0.55, zorder=5, linewidths=0)
            n_models = len({p.model for p in published})
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="o",
                    ls="",
                    color="#404040",
                    alpha=0.55,
                    label=f"published ({n_models} models)",
                )
            )
    if chance_key:
        handles.append(Line2D([], [], marker="_", ls="", color="black", label="chance"))
    ax.set_xticks(x, [r.language for r in rows], rotation=90, fontsize=7)
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_ylabel(metric)
    top = max(
        [1e-9, float(np.nanmax(values))]
        + [r.metrics.get(hi, 0.0) for r in rows]
        + [p.metrics[metric] for p in published if metric in p.metrics]
    )
    ax.set_ylim(0, min(1.0, top * 1.05) if top <= 1 else top * 1.05)
    ax.grid(axis="y", alpha=0.3, zorder=0)
    ax.set_title("\n".join(textwrap.wrap(_setting_title(key), 90)), fontsize=9)
    ax.legend(
        handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False
    )
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def _scatter(c: CrossTaskCorrelation, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    groups = [group_of(lang) for lang in c.languages]
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=100)
    ax.scatter(c.x, c.y, c=[GROUP_COLOURS.get(g, "#878787") for g in groups], s=22, zorder=3)
    for lang, xi, yi in zip(c.languages, c.x, c.y):
        ax.annotate(lang, (xi, yi), fontsize=6, xytext=(2, 2), textcoords="offset points")
    ax.set_xlabel(f"{c.classification_metric}: {c.classification}", fontsize=8)
    ax.set_ylabel(f"{c.retrieval_metric}: {c.retrieval}", fontsize=8)
    s = c.stats
    ax.set_title(
        f"{c.model}\nPearson r = {s['pearson_r']:.2f} (p = {s['pearson_p']:.2g}), "
        f"Spearman ρ = {s['spearman_rho']:.2f} (p = {s['spearman_p']:.2g}), n = {s['n']}",
        fontsize=8,
    )
    ax.grid(alpha=0.3, zorder=0)
    ax.legend(
        handles=[Patch(color=GROUP_COLOURS[g], label=g) for g in GROUP_ORDER if g in groups],
        fontsize=7,
    )
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


# ------------------------------------------------------------------ tables


def _setting_table(results: list[Result], metric: str, published: list[Result]):
    """Language rows: name, group, the metric (with CI), chance, counts, then one column per
    published model of the same protocol."""
    import pandas as pd

    rows = []
    pub: dict[str, dict[str, float]] = {}
    for p in published:
        if metric in p.metrics:
            pub.setdefault(p.model, {})[p.language] = p.metrics[metric]
    for r in _order([r for r in results if metric in r.metrics], metric):
        row = {
            "language": r.language,
            "name": _name(r.language),
            "group": group_of(r.language),
            metric: r.metrics[metric],
        }
        if f"{metric}_ci_low" in r.metrics:
            row["95% CI"] = (
                f"[{r.metrics[f'{metric}_ci_low']:.4f}, {r.metrics[f'{metric}_ci_high']:.4f}]"
            )
        for k in (
            "top5",
            "mean_per_class_recall",
            "chance",
            "top1_norm",
            "i2t_r@1",
            "t2i_r@5",
            "t2i_r@10",
        ):
            if k != metric and k in r.metrics:
                row[k] = r.metrics[k]
        row.update({f"n_{k}": v for k, v in r.counts.items()})
        for model, by_lang in pub.items():
            row[f"published: {model}"] = by_lang.get(r.language)
        rows.append(row)
    return pd.DataFrame(rows)


def _html_table(df) -> str:
    return df.to_html(
        index=False,
        escape=True,
        float_format=lambda v: f"{v:.4f}",
        na_rep="",
        border=0,
        classes="t",
    )


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:2em} h3{font-size:1em}
img{max-width:100%;height:auto;border:1px solid #ddd}
table.t{border-collapse:collapse;font-size:12px;margin:.5em 0}
table.t th,table.t td{padding:2px 6px;border-bottom:1px solid #eee;text-align:right}
table.t th{background:#f4f4f4} .note{color:#555;font-size:13px}
details{margin:.5em 0}
"""


# ------------------------------------------------------------------ the report


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
    the published results of the same protocols and languages.
    """
    results = load_any(result_paths_or_results)
    if not results:
        raise ValueError("no results to report")
    out = Path(out_dir)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    if published is None:
        pub_all: list[Result] = []
    elif isinstance(published, (str, os.PathLike)):
        pub_all = load_published(published)
    else:
        pub_all = list(published)
    pub = matching_published(results, pub_all)
    log.info(
        "report: %d results, %d published results of the same protocol", len(results), len(pub)
    )

    to_table(results).to_csv(out / "results.csv", index=False)
    groups = group_aggregates(results, n_boot=n_boot)
    groups.to_csv(out / "groups.csv", index=False)
    if pub:
        to_table(pub).to_csv(out / "published.csv", index=False)

    by_setting: dict[tuple, list[Result]] = {}
    for r in results:
        by_setting.setdefault(_setting(r), []).append(r)

    sections: list[str] = []
    for i, (key, rs) in enumerate(by_setting.items()):
        metric = PRIMARY_METRIC[key[2]]
        if not any(metric in r.metrics for r in rs):
            log.warning(
                "report: %s has no %s; shown in the tables only", _setting_title(key), metric
            )
            continue
        pk = protocol_key(rs[0])
        same = [p for p in pub if protocol_key(p) == pk]
        png = plots / f"{i:02d}-{_slug(' '.join(key))}.png"
        _bar_chart(key, rs, metric, same, png)
        g = groups[
            (groups["model"] == key[0])
            & (groups["dataset"] == key[1])
            & (groups["task"] == key[2])
            & (groups["prompts"] == key[3])
            & (groups["protocol"] == key[4])
            & (groups["labels"] == key[5])
        ]
        sections.append(
            f"<h2>{html.escape(_setting_title(key))}</h2>\n{_img(png, _setting_title(key))}\n"
            f"<h3>Resource groups ({html.escape(metric)}, mean over languages, 95% bootstrap CI over languages)</h3>\n"
            f"{_html_table(g.drop(columns=['model', 'dataset', 'task', 'prompts', 'protocol', 'labels']))}\n"
            f"<details open><summary>Per language ({len(rs)})</summary>\n{_html_table(_setting_table(rs, metric, same))}</details>"
        )

    import pandas as pd

    corr = classification_vs_retrieval(results)
    corr_rows = []
    for j, c in enumerate(corr):
        png = (
            plots
            / f"scatter-{j:02d}-{_slug(c.model + ' ' + c.classification + ' ' + c.retrieval)}.png"
        )
        _scatter(c, png)
        sections.append(
            f"<h2>{html.escape(c.model)}: classification vs retrieval</h2>\n{_img(png, 'scatter')}"
        )
        corr_rows.append(
            {
                "model": c.model,
                "classification": c.classification,
                "retrieval": c.retrieval,
                "x": c.classification_metric,
                "y": c.retrieval_metric,
                **c.stats,
            }
        )
    corr_df = pd.DataFrame(
        corr_rows,
        columns=[
            "model",
            "classification",
            "retrieval",
            "x",
            "y",
            "n",
            "pearson_r",
            "pearson_p",
            "spearman_rho",
            "spearman_p",
        ],
    )
    corr_df.to_csv(out / "correlations.csv", index=False)
    if corr_rows:
        sections.append(f"<h2>Correlations across languages</h2>\n{_html_table(corr_df)}")

    models = sorted({r.model for r in results})
    head = (
        f"<h1>{html.escape(title)}</h1>\n<p class='note'>{len(results)} results; models: "
        f"{html.escape(', '.join(models))}; {len({r.language for r in results})} languages. Bars are coloured by "
        "resource group (XLM-R CC-100 data size: high &ge; 10 GiB &gt; mid &ge; 1 GiB &gt; low; unseen: not in "
        "CC-100) and sorted by group, then value. Error bars: 95% percentile bootstrap over the queries "
        "(images for classification; texts for text&rarr;image, images for image&rarr;text retrieval). "
        + (
            f"Grey dots: {len({p.model for p in pub})} published models on the same protocol (Babel-ImageNet "
            "release, Geigle et al. 2024)."
            if pub
            else "No published numbers shown."
        )
        + " Tables as CSV beside this file.</p>"
    )
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + head
        + "\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
