"""The one folder babelclip caches into: downloads, verified weight hashes, the dequantised
babel-lite tower, BabelNet responses and (under ``embeddings/``) the evaluation cache."""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$BABELCLIP_CACHE``, else ``$XDG_CACHE_HOME/babelclip``, else ``~/.cache/babelclip``."""
    if env := os.environ.get("BABELCLIP_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "babelclip"
