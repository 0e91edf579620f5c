"""``babelclip languages``: show the language table, or look codes up."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("languages", help="show the language table or look up codes")
    p.add_argument("codes", nargs="*", help="codes of any system (BCP-47, NLLB, Babel-ImageNet, CLDR, ...)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from ..languages import Language, all_languages, resolve_languages

    records = resolve_languages(args.codes) if args.codes else all_languages()
    names = [f.name for f in fields(Language)]
    print("\t".join(names))
    for rec in records:
        print("\t".join(_cell(getattr(rec, n)) for n in names))
    return 0


def _cell(value: object) -> str:
    """One TSV cell: tuples space-separated, None and False-like empties kept readable."""
    if isinstance(value, tuple):
        return " ".join(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
