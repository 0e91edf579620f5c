"""Helpers for benchmarks kept in their release layout: where their folder is, files fetched on
demand (or a message saying what to place where), and text files read as released.

A benchmark's folder is ``--root`` when given, else ``$BABELCLIP_DATA/<name>``, else
``<babelclip cache>/benchmarks/<name>`` (:func:`data_root`). Inside it, every file keeps the
relative path of its release, so a copy of the release placed there by hand is used as is.
"""
from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...cache_dir import cache_root
from ...fetch import DownloadError, download, extract

log = logging.getLogger(__name__)


def data_root() -> Path:
    """Where benchmark folders live: ``$BABELCLIP_DATA``, else ``<cache>/benchmarks``."""
    env = os.environ.get("BABELCLIP_DATA")
    return Path(env).expanduser() if env else cache_root() / "benchmarks"


def benchmark_root(name: str, root: str | os.PathLike | None) -> Path:
    return Path(root).expanduser() if root is not None else data_root() / name


@dataclass(frozen=True)
class ReleaseFile:
    """A file (or, for an archive, a folder) of a release: its path inside the benchmark folder
    and where it is downloaded from. ``archive``: the URL is an archive unpacked into
    ``unpack_to`` (relative to the folder) that yields ``path``."""

    path: str
    url: str = ""
    archive: bool = False
    unpack_to: str = "."


def ensure(root: Path, wanted: ReleaseFile, *, benchmark: str, layout: str, allow_download: bool) -> Path:
    """``root / wanted.path``, downloaded first when missing and allowed; else an error naming
    the path expected, the release layout and where the file comes from."""
    target = root / wanted.path
    if target.exists():
        return target
    instead = (f"place the release at {root} in its layout ({layout})"
               + (f"; {wanted.path} comes from {wanted.url}" if wanted.url else ""))
    if not wanted.url:
        raise FileNotFoundError(f"{benchmark}: {target} does not exist; {instead}")
    if not allow_download:
        raise FileNotFoundError(f"{benchmark}: {target} does not exist and downloads are off; {instead}")
    if wanted.archive:
        name = wanted.url.rstrip("/").rsplit("/", 1)[-1]
        tmp = download(wanted.url, root / f".{name}.part", what=f"the {benchmark} archive {name}", instead=instead)
        try:
            extract(tmp, root / wanted.unpack_to)
        finally:
            tmp.unlink(missing_ok=True)
        if not target.exists():
            raise ValueError(f"{benchmark}: {wanted.url} unpacked into {root / wanted.unpack_to} holds no "
                             f"{wanted.path}; expected the layout {layout}")
        return target
    return download(wanted.url, target, what=f"the {benchmark} file {wanted.path}", instead=instead)


def read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 text file (``.gz`` read through gzip), without their line ends; an
    undecodable file raises naming it."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e})") from None
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: cannot be read ({e})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def first_existing(root: Path, names: Sequence[str]) -> Path | None:
    return next((root / n for n in names if (root / n).exists()), None)


__all__ = ["DownloadError", "ReleaseFile", "benchmark_root", "data_root", "ensure", "first_existing", "read_lines"]
