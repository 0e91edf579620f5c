"""``babelclip benchmarks``: the benchmarks babelclip knows, whether each is on this machine and
how to get it (thin wrapper over :func:`babelclip.data.benchmarks.all_benchmarks`)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmarks", help="list the benchmarks: tasks, languages, images, present here, how to get",
                       description="Every benchmark `babelclip eval --dataset NAME` runs. Formats and sources: "
                                   "docs/benchmarks.md")
    p.add_argument("names", nargs="*", help="only these benchmarks (full details)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.benchmarks import all_benchmarks, get_benchmark

    benches = [get_benchmark(n) for n in args.names] if args.names else all_benchmarks()
    for b in benches:
        where = b.present()
        print(f"{b.name}  ({b.title})")
        print(f"  tasks:     {', '.join(b.tasks)}" + (f" [{', '.join(b.protocols)}]" if b.protocols else ""))
        print(f"  languages: {b.n_languages()}")
        print(f"  images:    {b.images}")
        print(f"  present:   {'yes, ' + where if where else 'no'}")
        print(f"  get it:    {b.how_to_get()}")
        if args.names:
            print(f"  licence:   {b.licence}\n  citation:  {b.citation}")
            if isinstance(b.languages, tuple):
                print(f"  codes:     {' '.join(b.languages)}")
    return 0
