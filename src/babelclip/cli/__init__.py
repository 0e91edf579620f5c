"""The ``babelclip`` command: a thin dispatcher over library functions.

Each subcommand lives in its own module exposing ``register(subparsers)``; it parses arguments
and calls one library function. No logic of its own lives here.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Modules under babelclip.cli that contribute subcommands, in help order.
SUBCOMMAND_MODULES = ("models", "languages", "labels", "eval", "report", "train", "lite", "index", "search", "serve")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="babelclip", description="Multilingual vision-language evaluation and training")
    parser.add_argument("--version", action="version", version=f"babelclip {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{name}":
                continue  # subcommand not built yet
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.quiet else (logging.INFO if args.verbose <= 1 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, KeyError, FileNotFoundError, ImportError, RuntimeError) as e:
        # Clear one-line errors for bad input; -vv shows the traceback.
        if args.verbose >= 2:
            raise
        print(f"babelclip {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
