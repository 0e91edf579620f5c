"""Finding a Babel-ImageNet release file: a local path, the copy inside an installed
``clip-benchmark``, the download cache, or a download from the pinned release commit. The files
are under the BabelNet Non-Commercial License, so babelclip never ships them."""
from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path

from ..cache_dir import downloads_dir

log = logging.getLogger(__name__)

# The release these loaders know (the files of ../shared/reference are from this commit).
RELEASE_REPO = "gregor-ge/Babel-ImageNet"
RELEASE_COMMIT = "317c49896f04bc61d0c7a5dfc6fd4e3b0d8a9430"
RELEASE_URL = "https://raw.githubusercontent.com/{repo}/{commit}/data/{filename}"
RELEASE_FILES = {"92": "babel_imagenet.json", "298": "babel_imagenet-298.json"}

def _clip_benchmark_copy(filename: str) -> Path | None:
    # find_spec locates the package without importing it (its __init__ may import torch).
    spec = importlib.util.find_spec("clip_benchmark")
    for root in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(root) / "datasets" / filename
        if candidate.is_file():
            return candidate
    return None


def _json_body(body: bytes) -> None:
    try:
        json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"not a JSON file: {e}") from None


def download(url: str, dest: Path) -> Path:
    """Download ``url`` to ``dest`` atomically (:func:`babelclip.fetch.download`); the body must parse as JSON."""
    from ..fetch import download as fetch

    return fetch(url, dest, what=f"a JSON file ({dest.name})", validate=_json_body,
                 instead=f"pass a local path to the file (from https://github.com/{RELEASE_REPO})")


def release_file(
    filename: str,
    path: str | os.PathLike | None = None,
    *,
    allow_download: bool = True,
    url: str | None = None,
) -> Path:
    """Locate a Babel-ImageNet release file.

    Order: ``path`` if given (must exist); the copy inside an installed ``clip-benchmark``
    package; the download cache; a download from the pinned commit of the Babel-ImageNet
    repository (``url`` overrides the address, e.g. a mirror or ``file://`` path).
    """
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(
                f"{p}: no such file (expected the Babel-ImageNet file {filename})"
            )
        return p
    found = _clip_benchmark_copy(filename)
    if found:
        log.debug("using clip-benchmark's copy %s", found)
        return found
    cached = downloads_dir() / RELEASE_COMMIT[:12] / filename
    if cached.is_file():
        return cached
    if not allow_download:
        raise FileNotFoundError(
            f"{filename} not found: pass a path, install clip-benchmark, or allow the download "
            f"from https://github.com/{RELEASE_REPO}"
        )
    return download(
        url or RELEASE_URL.format(repo=RELEASE_REPO, commit=RELEASE_COMMIT, filename=filename),
        cached,
    )
