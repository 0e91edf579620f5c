"""Tokenizers loaded once per set of files: a pickled copy under the cache root.

transformers 5 builds a fast tokenizer from its ``tokenizer.json`` partly in Python: the 250k
pieces of XLM-R's or NLLB's vocabulary pass through Python objects on every load (~3 s of a
cold ``babelclip eval`` on one core, more than the rest of the model load). Unpickling the built
object restores the Rust tokenizer from its own serialisation and the Python attributes as they
were, without running the constructor again (~0.8 s).

:func:`cached_tokenizer` keys the copy by the content of every tokenizer file in the directory
and the versions of the libraries that built it, so an edited file or an upgraded library
builds afresh; only local directories are cached (a hub name can resolve to other files later).
A copy that cannot be read is rebuilt and replaced. ``BABELCLIP_TOKENIZER_CACHE=0`` turns the
copy off. The files are pickles: like every file under the cache root, they are trusted as the
user's own (whoever can write there can already change the cached weights).
"""
from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from ..cache_dir import tokenizers_dir

log = logging.getLogger(__name__)

T = TypeVar("T")

#: file name prefixes a tokenizer reads from its directory (transformers' and sentencepiece's)
TOKENIZER_FILES = ("tokenizer", "special_tokens_map", "added_tokens", "sentencepiece", "spiece", "vocab", "merges",
                   "config.json", "preprocessor_config", "chat_template")
LIBRARIES = ("transformers", "tokenizers", "sentencepiece", "open_clip_torch")
FORMAT = "babelclip-tokenizer/1"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def tokenizer_key(directory: Path, what: str) -> str | None:
    """Digest of the tokenizer files in ``directory``, the libraries' versions and ``what`` (the
    constructor and its arguments); None when ``directory`` holds no tokenizer file."""
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.name.startswith(TOKENIZER_FILES))
    if not files:
        return None
    h = hashlib.sha256(f"{FORMAT}|{what}|{sys.version_info[:2]}".encode())
    for lib in LIBRARIES:
        h.update(f"|{lib}={_version(lib)}".encode())
    for p in files:
        h.update(f"|{p.name}|".encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def cached_tokenizer(build: Callable[[], T], source: str | os.PathLike, what: str) -> T:
    """``build()``, or its pickled copy when one was made from the same files of ``source``.

    ``source``: the tokenizer's name or directory (a name that is no local directory is built
    every time); ``what``: a string naming the constructor and its arguments, part of the key.
    """
    directory = Path(source)
    if os.environ.get("BABELCLIP_TOKENIZER_CACHE", "1") == "0" or not directory.is_dir():
        return build()
    key = tokenizer_key(directory, what)
    if key is None:
        return build()
    path = tokenizers_dir() / f"{key[:32]}.pkl"
    if path.is_file():
        try:
            with path.open("rb") as f:
                return pickle.load(f)
        except Exception as e:  # noqa: BLE001 - any unreadable copy is rebuilt
            log.warning("tokenizer cache %s unreadable (%s); rebuilding it", path, e)
    tok = build()
    _store(tok, path)
    return tok


def _store(tok: Any, path: Path) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as f:
            pickle.dump(tok, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
    except (OSError, pickle.PicklingError, TypeError, AttributeError) as e:
        log.debug("tokenizer not cached at %s: %s", path, e)
        tmp.unlink(missing_ok=True)
