"""``babelclip languages``: show the language table, or look codes up."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("languages", help="show the language table or look up codes")
    p.add_argument("codes", nargs="*", help="codes of any system (BCP-47, NLLB, Babel-ImageNet, CLDR, ...)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import astuple, fields

    from ..languages import Language, all_languages, resolve_languages

    records = resolve_languages(args.codes) if args.codes else all_languages()
    print("\t".join(f.name for f in fields(Language)))
    for rec in records:
        print("\t".join(str(v) for v in astuple(rec)))
    return 0
