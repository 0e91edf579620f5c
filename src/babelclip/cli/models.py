"""``babelclip models``: list what ``create_model`` accepts."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the models that can be created")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'openclip:*nllb*'")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models.registry import FAMILIES, list_models, model_info

    for name in list_models(args.pattern):
        info = model_info(name)
        print(f"{name}\t{info.get('description', '')}")
    print("\nfamilies (also accept local directories and any ID of the family); options: `babelclip eval "
          "--model-option KEY=VALUE`:")
    for f in FAMILIES.values():
        print(f"  {f.prefix}:\t{f.description}  [pip install 'babelclip[{f.extra}]']")
        try:
            print(f"    options: {f.load().OPTIONS.allowed()}")
        except ImportError as e:  # the family's extra is not installed
            print(f"    options: listed once its extra is installed ({e})")
    return 0
