"""The one ``--cache-dir DIR|none`` flag of every command that encodes (the rule:
:mod:`babelclip.cache_dir`)."""
from __future__ import annotations

import argparse
import sys

from ..cache_dir import NO_CACHE


class _DeprecatedAlias(argparse.Action):
    """Stores like the flag it stands for, and says so once."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"{parser.prog}: {option_string} is deprecated, use --cache-dir", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_cache_dir_flag(p: argparse.ArgumentParser, *, dest: str = "cache_dir", what: str = "images and texts",
                       deprecated_alias: str | None = None) -> None:
    """Add ``--cache-dir DIR|none`` (the embedding cache folder; resolve the value with
    :func:`babelclip.cache_dir.embeddings_dir`) and, hidden, an old spelling of it."""
    p.add_argument("--cache-dir", dest=dest, default=None, metavar="DIR|none",
                   help=f"embedding cache folder for {what} ('{NO_CACHE}': no cache); "
                        "default: embeddings/ under $BABELCLIP_CACHE (~/.cache/babelclip)")
    if deprecated_alias:
        p.add_argument(deprecated_alias, dest=dest, action=_DeprecatedAlias, help=argparse.SUPPRESS)
