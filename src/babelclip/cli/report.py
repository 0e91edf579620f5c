"""``babelclip report``: charts, tables and one self-contained HTML page from result files."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="plots, CSV tables and a self-contained HTML page from results",
        description="Reads babelclip results files or CLIP_benchmark result JSON (or folders of them) "
        "and writes index.html, plots/*.png, results.csv, groups.csv and correlations.csv into --out.",
    )
    p.add_argument(
        "results", nargs="+", help="results files or folders (babelclip or CLIP_benchmark JSON)"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--published",
        help="the Babel-ImageNet release's results/ folder: published numbers of the same protocol are shown beside yours",
    )
    p.add_argument("--title", default="babelclip report", help="page title")
    p.add_argument(
        "--clip-benchmark-out",
        metavar="DIR",
        help="also write every result as CLIP_benchmark-style JSON into DIR",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..eval.clip_benchmark_compat import write_clip_benchmark
    from ..eval.report import load_any, make_report

    results = load_any(args.results)
    index = make_report(results, args.out, published=args.published, title=args.title)
    print(index)
    if args.clip_benchmark_out:
        paths = write_clip_benchmark(results, args.clip_benchmark_out)
        print(f"{len(paths)} CLIP_benchmark result files in {args.clip_benchmark_out}")
    return 0
