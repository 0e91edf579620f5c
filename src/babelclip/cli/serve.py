"""``babelclip serve``: a web page and JSON API for searching indexed folders (thin wrapper over
:func:`babelclip.search.server.serve`)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="search indexed folders from a web page (localhost by default)",
                       description="Example: babelclip serve --index ~/Pictures --lang de ; then open http://127.0.0.1:8000")
    p.add_argument("--index", action="append", metavar="DIR",
                   help="indexed folder to serve (repeatable; default: every indexed folder)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--lang", default="en", help="language selected when the page opens")
    p.add_argument("--model", default=None, help="model (default: the one the folders were indexed with), or 'auto'")
    p.add_argument("--results", action="append", default=[], metavar="PATH", help="with --model auto: results files")
    p.add_argument("--cache-dir", help="embedding cache folder (default: eval's)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..search import open_index
    from ..search.server import serve

    searcher = open_index(args.index, args.model, lang=args.lang, results=args.results, cache_dir=args.cache_dir,
                          quiet=args.quiet)
    print(f"serving {len(searcher)} images of {', '.join(searcher.folders)} with {searcher.model_name} "
          f"on http://{args.host}:{args.port}")
    if searcher.index.recall is not None:
        print(f"approximate search (usearch HNSW): recall@10 against exact {searcher.index.recall:.3f}")
    with searcher:
        serve(searcher, args.host, args.port, args.lang)
    return 0
