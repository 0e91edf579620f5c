"""The report's HTML: tables of a setting's languages, embedded PNGs, the page around them.

Everything a user wrote (model names, titles, labels) is escaped; the page references nothing
outside itself (PNGs are embedded as base64).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from ..languages import UnknownLanguageError, get_language
from .analysis import group_of
from .report_plots import order
from .results import Result

# Metrics shown beside the primary one in a setting's table, when the results have them.
SIDE_METRICS = ("top5", "mean_per_class_recall", "chance", "top1_norm", "i2t_r@1", "t2i_r@5", "t2i_r@10")

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:2em} h3{font-size:1em}
img{max-width:100%;height:auto;border:1px solid #ddd}
table.t{border-collapse:collapse;font-size:12px;margin:.5em 0}
table.t th,table.t td{padding:2px 6px;border-bottom:1px solid #eee;text-align:right}
table.t th{background:#f4f4f4} .note{color:#555;font-size:13px}
details{margin:.5em 0}
"""


def _name(tag: str) -> str:
    try:
        return get_language(tag).name
    except UnknownLanguageError:
        return ""


def setting_table(results: list[Result], metric: str, published: list[Result]):
    """Language rows: name, group, the metric (with CI), chance, counts, then one column per
    published model of the same protocol."""
    import pandas as pd

    pub: dict[str, dict[str, float]] = {}
    for p in published:
        if metric in p.metrics:
            pub.setdefault(p.model, {})[p.language] = p.metrics[metric]
    rows = []
    for r in order([r for r in results if metric in r.metrics], metric):
        row = {"language": r.language, "name": _name(r.language), "group": group_of(r.language), metric: r.metrics[metric]}
        if f"{metric}_ci_low" in r.metrics:
            row["95% CI"] = f"[{r.metrics[f'{metric}_ci_low']:.4f}, {r.metrics[f'{metric}_ci_high']:.4f}]"
        row.update({k: r.metrics[k] for k in SIDE_METRICS if k != metric and k in r.metrics})
        row.update({f"n_{k}": v for k, v in r.counts.items()})
        for model, by_lang in pub.items():
            row[f"published: {model}"] = by_lang.get(r.language)
        rows.append(row)
    return pd.DataFrame(rows)


def html_table(df) -> str:
    return df.to_html(index=False, escape=True, float_format=lambda v: f"{v:.4f}", na_rep="", border=0, classes="t")


def img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def setting_section(title: str, png: Path, metric: str, groups_table, languages_table, n: int) -> str:
    return (
        f"<h2>{html.escape(title)}</h2>\n{img(png, title)}\n"
        f"<h3>Resource groups ({html.escape(metric)}, mean over languages, 95% bootstrap CI over languages)</h3>\n"
        f"{html_table(groups_table)}\n"
        f"<details open><summary>Per language ({n})</summary>\n{html_table(languages_table)}</details>"
    )


def page(title: str, results: list[Result], models: list[str], published: list[Result], sections: list[str]) -> str:
    """The whole self-contained page: a header saying what is shown, then the sections."""
    head = (
        f"<h1>{html.escape(title)}</h1>\n<p class='note'>{len(results)} results; models: "
        f"{html.escape(', '.join(models))}; {len({r.language for r in results})} languages. Bars are coloured by "
        "resource group (XLM-R CC-100 data size: high &ge; 10 GiB &gt; mid &ge; 1 GiB &gt; low; unseen: not in "
        "CC-100) and sorted by group, then value. Error bars: 95% percentile bootstrap over the queries "
        "(images for classification; texts for text&rarr;image, images for image&rarr;text retrieval). "
        + (
            f"Grey dots: {len({p.model for p in published})} published models on the same protocol (Babel-ImageNet "
            "release, Geigle et al. 2024)."
            if published
            else "No published numbers shown."
        )
        + " Models that share a name but not a fingerprint (e.g. float32 and int8) are shown apart, as "
        "<i>name [fingerprint]</i>. Tables as CSV beside this file.</p>"
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>\n"
        + head + "\n" + "\n".join(sections) + "\n</body></html>\n"
    )
