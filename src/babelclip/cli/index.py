"""``babelclip index DIR``: encode every image under DIR into the embedding cache, incrementally
(thin wrapper over :func:`babelclip.search.build_index`)."""
from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="index a folder of images for search (incremental)",
                       description="Example: babelclip index ~/Pictures ; babelclip index photos/ --model auto --lang de "
                                   "--results results/")
    p.add_argument("folders", nargs="+", metavar="DIR", help="folder(s) of images, searched recursively")
    p.add_argument("--model", default=None,
                   help="model name (default: the embedded babel-lite), or 'auto' with --lang: the best measured one")
    p.add_argument("--lang", help="with --model auto: the language the folder will be searched in")
    p.add_argument("--results", action="append", default=[], metavar="PATH",
                   help="with --model auto: results.json / eval output folder / published results (repeatable)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=0, help="data-loader processes decoding images")
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    p.add_argument("--cache-dir", help="embedding cache folder (default: eval's, ~/.cache/babelclip/embeddings)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models.registry import DEFAULT_MODEL
    from ..search import build_index
    from .search import resolve_model_arg

    model = resolve_model_arg(args.model, args.lang, args.results) or DEFAULT_MODEL
    reports = [build_index(d, model, cache_dir=args.cache_dir, batch_size=args.batch_size, num_workers=args.workers,
                           device=args.device, quiet=args.quiet) for d in args.folders]
    for r in reports:
        print(json.dumps(r.as_dict(), ensure_ascii=False) if args.json else r.summary())
    return 0
