"""babel-lite 1 (English-trained head) against babel-lite 2 (multilingual text side), per language.

    nice -n 0 python bench/babel_lite_versions.py [--after babel-lite|DIR] [--before babel-lite@v1] [--json OUT]

Prints, per language, with 95 % percentile-bootstrap CIs (the change's CI paired over the same
items, :func:`babelclip.train.evaluate.before_after`):

1. Babel-ImageNet label → class alignment (text only; a label's head distribution puts its own
   class first of 1000), on all labels and on the **unseen** labels: those whose text is not a
   training target of the multilingual text side in that language (CLDR training-half names,
   compared after the leakage guard's normalisation);
2. Tux Paint text → image R@1 / R@5 over the PNG stamps.

Means over languages carry a CI from resampling every language's items at once. "worse" marks
a language whose change CI lies below zero ("unseen-worse": the same on its unseen labels). The
labels and stamps are evaluation data only.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from _reference import BABEL_IMAGENET
from babel_lite_quality import DEFAULT_BABEL_LANGS, DEFAULT_TUX_LANGS, queries, read_stamps

from babelclip.train.evaluate import before_after
from babelclip.train.evaluate import percent_cell as fmt

N_BOOT = 1000


def hits_labels(model, labels: list[str], idx: list[int], lang) -> np.ndarray:
    with torch.inference_mode():
        pred = torch.cat([model.text_distribution(labels[i : i + 512], lang).argmax(-1) for i in range(0, len(labels), 512)])
    return (pred.numpy() == np.asarray(idx)).astype(np.float64)


def hits_retrieval(model, texts: list[str], rel: list[set[int]], p: torch.Tensor, lang, ks=(1, 5)) -> dict[str, np.ndarray]:
    """Text → image hits at each k (``r@k``); ``lang`` (a Language) selects babel-lite 2's text side."""
    with torch.inference_mode():
        q = torch.cat([model.text_distribution(texts[i : i + 512], lang) for i in range(0, len(texts), 512)])
    top = (q @ p.T).topk(max(ks), -1).indices.tolist()
    return {f"r@{k}": np.array([float(bool(set(top[i][:k]) & rel[i])) for i in range(len(rel))]) for k in ks}


def mean_ci(per_lang: list[np.ndarray], seed: int = 0) -> tuple[float, float, float]:
    """Mean over languages of each language's mean, with a CI resampling items within languages."""
    rng = np.random.default_rng(seed)
    boots = np.mean([[rng.choice(h, len(h)).mean() for _ in range(N_BOOT)] for h in per_lang], axis=0)
    return float(np.mean([h.mean() for h in per_lang])), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def training_targets(tag: str) -> set[str]:
    from babelclip.train.leakage import normalise
    from babelclip.train.sources import cldr_pairs

    try:
        return {normalise(t) for _, t in cldr_pairs(tag, keywords=False, emoji="train")}
    except (ValueError, FileNotFoundError):  # no CLDR locale: nothing of it was trained on
        return set()


def run_labels(m1, m2, langs: list[str], babel: dict) -> dict:
    from babelclip.languages import get_language
    from babelclip.train.leakage import normalise

    out = {}
    print("\n1. Babel-ImageNet label -> own class (top-1 of 1000), before -> after; unseen = not a training target")
    print(f"  {'lang':5s} {'n':>5s}  {'before':>18s}  {'after':>18s}  {'change':>19s}  | unseen n  {'before':>6s} {'after':>6s}"
          f"  {'unseen change':>19s}")
    for code in ["EN", *langs]:
        idx, labels = babel[code]
        language = get_language(code)
        b, a = hits_labels(m1, labels, idx, language), hits_labels(m2, labels, idx, language)
        seen = training_targets(language.tag) if code != "EN" else set()
        unseen = np.array([normalise(t) not in seen for t in labels])
        r = before_after({"top1": b}, {"top1": a}, n_boot=N_BOOT)
        ru = before_after({"top1": b[unseen]}, {"top1": a[unseen]}, n_boot=N_BOOT) if unseen.any() else None
        worse = " worse" if r["change"]["top1_ci_high"] < 0 else ""
        worse += " unseen-worse" if ru is not None and ru["change"]["top1_ci_high"] < 0 else ""
        uchange = fmt(ru["change"], "top1", True) if ru is not None else "-"
        print(f"  {code:5s} {len(labels):5d}  {fmt(r['before'], 'top1'):>18s}  {fmt(r['after'], 'top1'):>18s}  "
              f"{fmt(r['change'], 'top1', True):>19s}  | {unseen.sum():8d}  {100 * b[unseen].mean():6.1f} {100 * a[unseen].mean():6.1f}"
              f"  {uchange:>19s}{worse}")
        out[code] = {"before": b, "after": a, "unseen": unseen, "stats": r, "unseen_stats": ru}
    return out


def run_tux(m1, m2, langs: list[str]) -> dict:
    from PIL import Image

    from babelclip.languages import get_language

    paths, texts, svg_only = read_stamps()
    with torch.inference_mode():
        pix = torch.stack([m1.preprocess(Image.open(p)) for p in paths])
        p = torch.cat([m1.image_distribution(pix[i : i + 64]) for i in range(0, len(pix), 64)])
    print(f"\n2. Tux Paint text -> image over {len(paths)} PNG stamps ({svg_only} SVG-only skipped), R@1 and R@5")
    out = {}
    for lang in ["en", *langs]:
        qs, rel = queries(texts[lang])
        language = get_language(lang)
        b, a = hits_retrieval(m1, qs, rel, p, language), hits_retrieval(m2, qs, rel, p, language)
        r = before_after(b, a, n_boot=N_BOOT)
        worse = " worse" if r["change"]["r@1_ci_high"] < 0 else ""
        print(f"  {lang:6s} {len(qs):4d}  R@1 {fmt(r['before'], 'r@1'):>18s} -> {fmt(r['after'], 'r@1'):>18s} "
              f"({fmt(r['change'], 'r@1', True)})  R@5 {100 * r['before']['r@5']:.1f} -> {100 * r['after']['r@5']:.1f}{worse}")
        out[lang] = {"before": b, "after": a, "stats": r}
    return out


def summary(labels: dict, tux: dict) -> dict:
    def line(name: str, per: dict, key, sel=None) -> dict:
        res = {}
        for side in ("before", "after"):
            arrs = [(v[side][key] if key else v[side]) for k, v in per.items() if k not in ("EN", "en")]
            if sel is not None:
                arrs = [x[m] for x, m in zip(arrs, [v["unseen"] for k, v in per.items() if k != "EN"]) if m.any()]
            res[side] = mean_ci(arrs)
        print(f"  {name:44s} {100 * res['before'][0]:5.1f} [{100 * res['before'][1]:.1f}, {100 * res['before'][2]:.1f}]"
              f" -> {100 * res['after'][0]:5.1f} [{100 * res['after'][1]:.1f}, {100 * res['after'][2]:.1f}]")
        return res

    print("\n3. Means over the non-English languages (95 % CI, items resampled within languages)")
    return {
        "labels_top1": line(f"label alignment, {len(labels) - 1} languages", labels, None),
        "labels_top1_unseen": line("label alignment, unseen labels only", labels, None, sel=True),
        "tux_r1": line(f"Tux Paint R@1, {len(tux) - 1} languages", tux, "r@1"),
        "tux_r5": line("Tux Paint R@5", tux, "r@5"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default="babel-lite@v1")
    ap.add_argument("--after", default="babel-lite")
    ap.add_argument("--babel-langs", default=DEFAULT_BABEL_LANGS)
    ap.add_argument("--tux-langs", default=DEFAULT_TUX_LANGS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="write the summary and per-language figures here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import babelclip

    t0 = time.perf_counter()
    print(f"load average {os.getloadavg()}; before {args.before}, after {args.after}")
    m1, m2 = babelclip.create_model(args.before), babelclip.create_model(args.after)
    babel = json.loads((BABEL_IMAGENET / "babel_imagenet.json").read_text(encoding="utf-8"))
    labels = run_labels(m1, m2, args.babel_langs.split(","), babel)
    tux = run_tux(m1, m2, args.tux_langs.split(","))
    summ = summary(labels, tux)
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")
    if args.json:
        per = {k: {**v["stats"], **({"unseen": v["unseen_stats"]} if v.get("unseen_stats") else {})}
               for k, v in {**labels, **tux}.items()}
        Path(args.json).write_text(json.dumps({"summary": summ, "per_language": per}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
