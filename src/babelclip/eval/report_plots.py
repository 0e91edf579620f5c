"""The report's charts: per-language bars of one setting, and the cross-task scatter (PNG).

Both are generic over benchmarks: a bar chart needs only a metric per language (with
``<metric>_ci_low``/``_ci_high`` for error bars and the metric's chance key for chance ticks,
when every result has them), so a new benchmark or metric needs no code here.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from pathlib import Path

from .analysis import GROUP_ORDER, CrossTaskCorrelation, group_of
from .results import Result

GROUP_COLOURS = {
    "high": "#1b7837",
    "mid": "#5aae61",
    "low": "#e08214",
    "unseen": "#b2182b",
    "unknown": "#878787",
}


def order(results: Sequence[Result], metric: str) -> list[Result]:
    """Group order (high, mid, low, unseen, unknown), then best first within a group."""
    rank = {g: i for i, g in enumerate(GROUP_ORDER)}
    return sorted(
        results,
        key=lambda r: (
            rank.get(group_of(r.language), len(rank)),
            -r.metrics.get(metric, float("-inf")),
        ),
    )


def _chance_key(metric: str) -> str:
    """The metric key holding the chance level of ``metric`` (see docs/results.md)."""
    if metric == "top1":
        return "chance"
    if re.fullmatch(r"top\d+", metric):
        return f"{metric}_chance"
    m = re.fullmatch(r"(t2i|i2t)_r@(\d+)", metric)
    return f"{m[1]}_chance@{m[2]}" if m else ""


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _error_bars(ax, x, values, rows: list[Result], metric: str) -> None:
    import numpy as np

    lo, hi = f"{metric}_ci_low", f"{metric}_ci_high"
    if not all(lo in r.metrics and hi in r.metrics for r in rows):
        return
    err = np.array([[v - r.metrics[lo], r.metrics[hi] - v] for v, r in zip(values, rows)]).T
    ax.errorbar(x, values, yerr=np.clip(err, 0, None), fmt="none", ecolor="black", elinewidth=0.8,
                capsize=1.5, zorder=3)


def _chance_ticks(ax, x, rows: list[Result], metric: str) -> list:
    """Chance-level ticks when every result has the metric's chance key; the legend handle."""
    from matplotlib.lines import Line2D

    key = _chance_key(metric)
    if not key or not all(key in r.metrics for r in rows):
        return []
    ax.scatter(x, [r.metrics[key] for r in rows], marker="_", color="black", s=40, zorder=4, linewidths=1)
    return [Line2D([], [], marker="_", ls="", color="black", label="chance")]


def _published_dots(ax, rows: list[Result], metric: str, published: list[Result]) -> list:
    """Grey dots of the published results of the same protocol; the legend handle."""
    from matplotlib.lines import Line2D

    pos = {r.language: i for i, r in enumerate(rows)}
    pts = [(pos[p.language], p.metrics[metric]) for p in published if p.language in pos and metric in p.metrics]
    if not pts:
        return []
    px, py = zip(*pts)
    ax.scatter(px, py, s=9, color="#404040", alpha=0.55, zorder=5, linewidths=0)
    n_models = len({p.model for p in published})
    return [Line2D([], [], marker="o", ls="", color="#404040", alpha=0.55, label=f"published ({n_models} models)")]


def bar_chart(title: str, results: list[Result], metric: str, published: list[Result], path: Path) -> None:
    """Bars of ``metric`` per language, coloured by resource group, with CIs, chance and published dots."""
    import numpy as np
    from matplotlib.patches import Patch

    plt = _pyplot()
    rows = order([r for r in results if metric in r.metrics], metric)
    n = len(rows)
    x = np.arange(n)
    values = np.array([r.metrics[metric] for r in rows])
    groups = [group_of(r.language) for r in rows]
    fig, ax = plt.subplots(figsize=(min(max(8.0, 0.22 * n + 3.5), 60.0), 4.2), dpi=100)
    ax.bar(x, values, color=[GROUP_COLOURS.get(g, "#878787") for g in groups], width=0.8, zorder=2)
    _error_bars(ax, x, values, rows, metric)
    chance = _chance_ticks(ax, x, rows, metric)
    handles = [Patch(color=GROUP_COLOURS[g], label=g) for g in GROUP_ORDER if g in groups]
    handles += _published_dots(ax, rows, metric, published) + chance
    ax.set_xticks(x, [r.language for r in rows], rotation=90, fontsize=7)
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_ylabel(metric)
    top = max([1e-9, float(np.nanmax(values))] + [r.metrics.get(f"{metric}_ci_high", 0.0) for r in rows]
              + [p.metrics[metric] for p in published if metric in p.metrics])
    ax.set_ylim(0, min(1.0, top * 1.05) if top <= 1 else top * 1.05)
    ax.grid(axis="y", alpha=0.3, zorder=0)
    ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=9)
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def scatter(c: CrossTaskCorrelation, title: str, path: Path) -> None:
    """Classification metric against retrieval metric per language, with r and ρ in the title."""
    from matplotlib.patches import Patch

    plt = _pyplot()
    groups = [group_of(lang) for lang in c.languages]
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=100)
    ax.scatter(c.x, c.y, c=[GROUP_COLOURS.get(g, "#878787") for g in groups], s=22, zorder=3)
    for lang, xi, yi in zip(c.languages, c.x, c.y):
        ax.annotate(lang, (xi, yi), fontsize=6, xytext=(2, 2), textcoords="offset points")
    ax.set_xlabel(f"{c.classification_metric}: {c.classification}", fontsize=8)
    ax.set_ylabel(f"{c.retrieval_metric}: {c.retrieval}", fontsize=8)
    s = c.stats
    ax.set_title(
        f"{title}\nPearson r = {s['pearson_r']:.2f} (p = {s['pearson_p']:.2g}), "
        f"Spearman ρ = {s['spearman_rho']:.2f} (p = {s['spearman_p']:.2g}), n = {s['n']}",
        fontsize=8,
    )
    ax.grid(alpha=0.3, zorder=0)
    ax.legend(handles=[Patch(color=GROUP_COLOURS[g], label=g) for g in GROUP_ORDER if g in groups], fontsize=7)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
