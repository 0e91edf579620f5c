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
SUBCOMMAND_MODULES = ("models", "languages", "labels", "benchmarks", "eval", "report", "train", "index", "search", "serve")


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
    except USER_ERRORS as e:
        # Clear one-line errors for bad input; -vv shows the traceback.
        if args.verbose >= 2:
            raise
        print(f"babelclip {args.command}: error: {user_message(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.verbose >= 2:
            raise
        print(f"babelclip {args.command}: interrupted (what was cached is kept; run again to resume)", file=sys.stderr)
        return 130


#: Errors a user can cause and fix, printed as one line (``-vv``: with the traceback).
#: :class:`~babelclip.errors.BabelclipError` (a ValueError) is babelclip's own; the other
#: ValueErrors, KeyError (unknown language codes), OSError (a missing, unreadable or unwritable
#: file, not a directory, a full disk), ImportError (a missing extra) and RuntimeError (a
#: missing download) come from the libraries and from input as given.
USER_ERRORS = (ValueError, KeyError, OSError, ImportError, RuntimeError)


def user_message(e: BaseException) -> str:
    """One line for the user: an OSError names its file(s) and the system's reason."""
    if isinstance(e, OSError) and e.filename is not None and str(e.filename) not in str(e.strerror or ""):
        files = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
        return f"{files}: {e.strerror or e}"
    if isinstance(e, KeyError) and type(e) is KeyError:  # a bare KeyError quotes its key
        return f"missing key {e}"
    return str(e)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
