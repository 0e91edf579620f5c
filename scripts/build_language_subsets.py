"""Write src/babelclip/_data/language_subsets.json: K languages that rank models as all do.

Reads the published Babel-ImageNet results (12 models; ../shared/reference/babel-imagenet/ beside
the repository, or $BABELCLIP_REFERENCE) where they lie, never copying them: the shipped file
holds language codes, model names and correlations only. For each release (the 92 languages
of babel_imagenet.json, and all 298) and each K, the subset of
:func:`babelclip.eval.language_subsets.choose_language_subset` on zero-shot top-1 with label-only
prompts, its Spearman/Kendall/Pearson against the full mean, and leave-one-model-out ranks.
Prints the table that docs/languages.md quotes.

    python scripts/build_language_subsets.py [--ks 5,10,15,20] [--check]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "babelclip" / "_data" / "language_subsets.json"
ORDER_LENGTH = 40  # greedy order kept for benchmarks lacking a chosen language


def reference_dir() -> Path:
    """$BABELCLIP_REFERENCE, else ``shared/reference`` beside the clone (or beside its parent, for a
    worktree one level down)."""
    if os.environ.get("BABELCLIP_REFERENCE"):
        return Path(os.environ["BABELCLIP_REFERENCE"]) / "babel-imagenet"
    for up in (REPO.parent, REPO.parent.parent):
        if (up / "shared" / "reference" / "babel-imagenet").is_dir():
            return up / "shared" / "reference" / "babel-imagenet"
    raise FileNotFoundError("the Babel-ImageNet reference files are not beside the repository; set BABELCLIP_REFERENCE")


def published_scores(ref: Path) -> dict[str, dict[str, float]]:
    """``{model: {tag: top-1}}`` of the label-only prompts in the published classification results."""
    from babelclip.eval.analysis import load_published

    scores: dict[str, dict[str, float]] = {}
    for r in load_published(ref / "results"):
        if r.task == "zeroshot_classification" and r.prompts == "label":
            scores.setdefault(r.fingerprint.removeprefix("published:"), {})[r.language] = r.metrics["top1"]
    return scores


def release_languages(ref: Path) -> list[str]:
    from babelclip.languages import UnknownLanguageError, get_language

    tags = []
    for code in json.loads((ref / "babel_imagenet.json").read_text(encoding="utf-8")):
        try:
            tags.append(get_language(code).tag)
        except UnknownLanguageError:
            pass
    return tags


def build(ks: list[int]) -> dict:
    from babelclip.eval.language_subsets import choose_language_subset, greedy_order, leave_one_model_out, random_baseline

    ref = reference_dir()
    scores = published_scores(ref)
    in92 = set(release_languages(ref))
    universes = {"babel-imagenet-298": None, "babel-imagenet-92": in92}
    doc = {
        "about": "K languages whose mean top-1 ranks models as the mean over all languages does; chosen on the "
                 "published Babel-ImageNet results (label-only prompts) by scripts/build_language_subsets.py",
        "models": sorted(scores),
        "sets": {},
    }
    for name, keep in universes.items():
        sub = {m: {t: v for t, v in s.items() if keep is None or t in keep} for m, s in scores.items()}
        universe = sorted(set.intersection(*(set(s) for s in sub.values())))
        entry = {"universe": universe, "order": greedy_order(sub, ORDER_LENGTH), "subsets": {}}
        for k in ks:
            s = choose_language_subset(sub, k)
            loo = leave_one_model_out(sub, k)
            entry["subsets"][str(k)] = {
                "languages": s.languages, "spearman": round(s.spearman, 4), "kendall": round(s.kendall, 4),
                "pearson": round(s.pearson, 4),
                "leave_one_model_out": {
                    "exact_rank": sum(v["full"] == v["subset"] for v in loo.values()),
                    "mean_abs_rank_error": round(sum(abs(v["full"] - v["subset"]) for v in loo.values()) / len(loo), 3),
                    "max_abs_rank_error": max(abs(v["full"] - v["subset"]) for v in loo.values()),
                    "models": len(loo),
                },
                "random_subsets": {k2: round(v, 4) for k2, v in random_baseline(sub, k).items()},
            }
        doc["sets"][name] = entry
    return doc


def table(doc: dict) -> str:
    lines = ["| release | K | Spearman ρ | Kendall τ | leave-one-model-out: exact rank / mean abs Δrank / max | "
             "random K: τ / exact rank | languages |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, e in doc["sets"].items():
        for k, s in e["subsets"].items():
            lo = s["leave_one_model_out"]
            lines.append(f"| {name} ({len(e['universe'])}) | {k} | {s['spearman']:.3f} | {s['kendall']:.3f} | "
                         f"{lo['exact_rank']}/{lo['models']} / {lo['mean_abs_rank_error']:.2f} / {lo['max_abs_rank_error']} | "
                         f"{s['random_subsets']['kendall']:.3f} / {12 * s['random_subsets']['exact_rank_fraction']:.1f}/12 | "
                         f"{' '.join(s['languages'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", default="5,10,15,20")
    ap.add_argument("--check", action="store_true", help="compare with the shipped file instead of writing it")
    args = ap.parse_args(argv)
    doc = build([int(k) for k in args.ks.split(",")])
    print(table(doc))
    text = json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
    if args.check:
        same = OUT.read_text(encoding="utf-8") == text
        print("shipped file is up to date" if same else f"{OUT} differs from a rebuild")
        return 0 if same else 1
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
