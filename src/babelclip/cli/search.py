"""``babelclip search "text" --lang xx`` or ``--image PATH``: ranked paths with scores (thin wrapper
over :class:`babelclip.search.Searcher`)."""
from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search indexed folders by text in any language, or by an image",
                       description='Examples: babelclip search "ein roter Apfel" --lang de ; '
                                   "babelclip search --image cat.jpg --index ~/Pictures --json")
    p.add_argument("query", nargs="?", help="what the image shows, in the language given by --lang")
    p.add_argument("--lang", help="language of the query: any code (de, deu_Latn, zh-Hant); required with text")
    p.add_argument("--image", metavar="PATH", help="search for images like this one instead of by text")
    p.add_argument("--k", type=int, default=20, help="results to show (default 20)")
    p.add_argument("--index", action="append", metavar="DIR",
                   help="indexed folder to search (repeatable; default: every indexed folder)")
    p.add_argument("--model", default=None,
                   help="model name (default: the one the folder was indexed with), or 'auto': the best measured for --lang")
    p.add_argument("--results", action="append", default=[], metavar="PATH",
                   help="with --model auto: results.json / eval output folder / published results (repeatable)")
    p.add_argument("--exact", action="store_true", help="exact search even above the approximate-index size")
    p.add_argument("--cache-dir", help="embedding cache folder (default: eval's)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def resolve_model_arg(model: str | None, lang: str | None, results: list[str], candidates=None) -> str | None:
    """``--model auto`` → a model name (printing which and why); anything else unchanged."""
    if model != "auto":
        return model
    from ..search import choose_model

    if not lang:
        raise ValueError("--model auto needs --lang: the best model depends on the language")
    choice = choose_model(lang, results, candidates=candidates)
    print(choice.reason, file=sys.stderr)
    return choice.model


def run(args: argparse.Namespace) -> int:
    from ..search import open_index
    from ..search.store import FileTable
    from ..search.vectors import EXACT_LIMIT

    if (args.query is None) == (args.image is None):
        raise ValueError('give either a text query (babelclip search "a red apple" --lang en) or --image PATH')
    if args.query is not None and not args.lang:
        raise ValueError("a text query needs --lang: the language it is written in (e.g. --lang de)")
    if args.k < 1:
        raise ValueError(f"--k must be at least 1, got {args.k}")
    model = args.model
    if model == "auto":
        with FileTable() as t:
            indexed = [n for _, n, _ in t.models_of(args.index or t.roots())]
        model = resolve_model_arg(model, args.lang, args.results, candidates=indexed or None)
    limit = sys.maxsize if args.exact else EXACT_LIMIT
    with open_index(args.index, model, cache_dir=args.cache_dir, exact_limit=limit, quiet=args.quiet) as s:
        hits = s.text(args.query, args.lang, args.k) if args.query is not None else s.image(args.image, args.k)
        if s.index.recall is not None:
            print(f"approximate search (usearch HNSW) over {len(s)} images: recall@10 against exact "
                  f"{s.index.recall:.3f}", file=sys.stderr)
        if args.json:
            print(json.dumps({"model": s.model_name, "query": args.query or args.image, "lang": args.lang,
                              "hits": [h.as_dict() for h in hits]}, ensure_ascii=False, indent=1))
        else:
            for h in hits:
                print(f"{h.score:.4f}  {h.path}")
    return 0
