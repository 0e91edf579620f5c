"""Where babelclip caches: one root, one named sub-folder per kind, one function per kind.

The rule (docs/architecture.md, "Caches"):

- **One root**: ``$BABELCLIP_CACHE``, else ``$XDG_CACHE_HOME/babelclip``, else
  ``~/.cache/babelclip`` (:func:`cache_root`). Moving the root moves every kind below.
- **One sub-folder per kind**, each named by one function here and used everywhere:

  ``embeddings/`` (:func:`embeddings_dir`): image and text embeddings, one SQLite file per
  model fingerprint (eval, train's stamp images); ``babel-lite/`` (:func:`babel_lite_dir`): the
  dequantised mE5 tower and head-training corpus embeddings; ``babel-imagenet/``
  (:func:`downloads_dir`): downloaded Babel-ImageNet release files; ``babelnet/``
  (:func:`babelnet_dir`): BabelNet API responses; ``benchmarks/`` (:func:`benchmarks_dir`,
  or ``$BABELCLIP_DATA``): benchmark files fetched in their release layouts; ``emoji/``
  (:func:`emoji_dir`): the rendered Babel-Emoji pictures; ``search/`` (:func:`search_dir`):
  the image-search file table and approximate indexes; ``tokenizers/`` (:func:`tokenizers_dir`):
  built tokenizers of local model folders; ``verified-weights.json``
  (:func:`verified_weights_file`): digests of checked weight files.
- **One flag**: every command that encodes takes ``--cache-dir DIR|none``, the *embedding*
  cache folder (default :func:`embeddings_dir`; ``none``: no cache, embeddings kept in memory
  for the run); :func:`embeddings_dir` resolves that choice, so a library function accepts the
  same three values (None, a path, ``"none"``).
- **Not babelclip's cache**: the Hugging Face hub cache (``HF_HOME``; a family option naming
  another hub cache passes it to the hub as is), and a training run's teacher embeddings
  (:func:`teacher_cache_dir`, inside the run's output folder: they are part of the run, and
  ``--resume`` finds them there).

Names of existing folders are kept, so caches written before this rule stay valid.
"""
from __future__ import annotations

import os
from pathlib import Path

NO_CACHE = "none"  # the --cache-dir value that turns the embedding cache off


def cache_root() -> Path:
    """``$BABELCLIP_CACHE``, else ``$XDG_CACHE_HOME/babelclip``, else ``~/.cache/babelclip``."""
    if env := os.environ.get("BABELCLIP_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "babelclip"


def embeddings_dir(choice: str | os.PathLike | None = None) -> Path | None:
    """The embedding cache folder for a ``--cache-dir`` choice: ``None`` → ``embeddings/``
    under :func:`cache_root`; ``"none"`` → ``None`` (no cache); anything else → that folder."""
    if choice is None or str(choice) == "":
        return cache_root() / "embeddings"
    if str(choice) == NO_CACHE:
        return None
    return Path(choice)


def babel_lite_dir() -> Path:
    """babel-lite's derived files: the dequantised text tower, head-training corpus embeddings."""
    return cache_root() / "babel-lite"


def benchmarks_dir() -> Path:
    """Benchmark files in their release layouts, one folder per benchmark: ``$BABELCLIP_DATA``
    (data kept apart from caches, e.g. on a shared disk), else ``benchmarks/`` under the root."""
    env = os.environ.get("BABELCLIP_DATA")
    return Path(env).expanduser() if env else cache_root() / "benchmarks"


def emoji_dir() -> Path:
    """Babel-Emoji's rendered pictures (one sub-folder per font digest and renderer version)."""
    return cache_root() / "emoji"


def search_dir() -> Path:
    """Image search: the file table of indexed folders and the approximate indexes."""
    return cache_root() / "search"


def tokenizers_dir() -> Path:
    """Built tokenizers, pickled once per set of tokenizer files (:mod:`babelclip.models.tokenizer_cache`)."""
    return cache_root() / "tokenizers"


def downloads_dir() -> Path:
    """Downloaded Babel-ImageNet release files (one sub-folder per pinned release commit)."""
    return cache_root() / "babel-imagenet"


def babelnet_dir() -> Path:
    """BabelNet API responses, one JSON file per request (label building)."""
    return cache_root() / "babelnet"


def verified_weights_file() -> Path:
    """SHA-256 digests of pinned weight files, remembered by (path, size, mtime)."""
    return cache_root() / "verified-weights.json"


def teacher_cache_dir(out_dir: str | os.PathLike) -> Path:
    """A training run's teacher embeddings: inside the run's output folder, not under the root."""
    return Path(out_dir) / "teacher_cache"
