"""Helpers for benchmarks kept in their release layout: where their folder is, files fetched on
demand (or a message saying what to place where), and text files read as released.

A benchmark's folder is ``--root`` when given, else ``$BABELCLIP_DATA/<name>``, else
``<babelclip cache>/benchmarks/<name>`` (:func:`babelclip.cache_dir.benchmarks_dir`). Inside it, every file keeps the
relative path of its release, so a copy of the release placed there by hand is used as is.
"""
from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ...cache_dir import benchmarks_dir
from ...fetch import DownloadError, download, extract
from ...languages import UnknownLanguageError, get_language

if TYPE_CHECKING:  # pragma: no cover
    from ..captions import CaptionSet
    from ..images import ImageSource
    from .registry import Inputs, Prepared

log = logging.getLogger(__name__)


def benchmark_root(name: str, root: str | os.PathLike | None) -> Path:
    return Path(root).expanduser() if root is not None else benchmarks_dir() / name


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


def _tags(codes: Sequence[str]) -> list[str]:
    out = []
    for c in codes:
        try:
            out.append(get_language(c).tag)
        except UnknownLanguageError:
            continue
    return out


def listed_images(folder: Path, names: Sequence[str], dataset: str, how: str) -> ImageSource:
    """The images a release lists, from ``folder`` (ids: the listed names); a listed file that is
    missing is skipped and counted, a folder holding none of them is an error saying ``how`` to
    provide them. Other files in the folder (e.g. all of Flickr30k) are not read."""
    from ..images import ImageItem, ImageSource

    if not folder.is_dir():
        raise FileNotFoundError(f"{dataset}: image folder {folder} does not exist; {how}")
    items, skipped = [], {}
    for n in names:
        p = folder / n
        if p.is_file():
            items.append(ImageItem(n, str(p)))
        else:
            skipped[n] = "listed by the release but not in the image folder"
    if not items:
        raise FileNotFoundError(f"{dataset}: none of the {len(names)} images the release lists (e.g. {names[0]!r}) "
                                f"is in {folder}; {how}")
    if skipped:
        log.warning("%s: %d of %d listed images are missing from %s; left out", dataset, len(skipped), len(names), folder)
    return ImageSource(dataset, items, (), skipped)


def aligned_captions(name: str, images: list[str], files: dict[str, Path], index: Path) -> CaptionSet:
    """A caption set from one text file per language, line ``i`` describing image ``i`` of the
    index file (the XTD / NLLB-CLIP / Multi30k layout). ``files``: the file's language code
    (any code system of the table) -> path; unknown codes are skipped with a warning."""
    from ..captions import CaptionSet, check_unique_images

    check_unique_images(images, index)
    captions: dict[str, list[list[str]]] = {}
    unknown = []
    for code, path in files.items():
        try:
            tag = get_language(code).tag
        except UnknownLanguageError:
            unknown.append(code)
            continue
        lines = read_lines(path)
        if len(lines) != len(images):
            raise ValueError(f"{path}: {len(lines)} lines for the {len(images)} images of {index}; the release has "
                             "one caption per line, line i describing the image on line i of the index")
        captions[tag] = [[line] if line.strip() else [] for line in lines]
    if unknown:
        log.warning("%s: language codes not in the table, skipped: %s", name, ", ".join(unknown))
    return CaptionSet(name, list(images), captions)


@dataclass(frozen=True)
class LineRelease:
    """A release of an image index file plus one caption file per language, line-aligned, and an
    image archive: XTD10, multilingual MS-COCO, XTD200, Flickr30k-200, Multi30k.

    ``caption_file(code)`` is the release file of a language code, ``codes`` every code the
    release has, ``code_of(tag)`` a BCP-47 tag's code there (``""``: none)."""

    name: str
    layout: str
    index: ReleaseFile
    caption_file: Callable[[str], ReleaseFile]
    codes: tuple[str, ...]
    code_of: Callable[[str], str]
    images: ReleaseFile  # the image folder (path) and its archive, if downloadable
    images_how: str  # how to provide the images when they cannot be downloaded
    protocols: tuple[str, ...] = ("first-caption",)

    def prepare(self, inputs: Inputs) -> Prepared:
        from .registry import Prepared, RetrievalTask

        root = benchmark_root(self.name, inputs.root)
        kw = {"benchmark": self.name, "layout": self.layout, "allow_download": inputs.download}
        index = ensure(root, self.index, **kw)
        names = [n.strip() for n in read_lines(index) if n.strip()]
        if not names:
            raise ValueError(f"{index}: no image names; the release lists one image file name per line")
        wanted = self.codes if inputs.languages is None else [c for c in map(self.code_of, inputs.languages) if c]
        if not wanted:
            raise ValueError(f"{self.name} has none of the languages {', '.join(inputs.languages or [])}; it has "
                             f"{len(self.codes)}: {', '.join(_tags(self.codes))}")
        files = self._caption_files(root, wanted, inputs.download, all_codes=inputs.languages is None)
        captions = aligned_captions(self.name, names, files, index)
        folder = Path(inputs.images) if inputs.images is not None else root / self.images.path
        if inputs.images is None and not folder.exists():
            if not self.images.url:
                raise FileNotFoundError(f"{self.name}: no images at {folder}; {self.images_how}")
            folder = ensure(root, self.images, **kw)
        source = listed_images(Path(folder), names, self.name, self.images_how)
        return Prepared(self.name, source, [RetrievalTask(captions, self.protocols)])

    def _caption_files(self, root: Path, codes: Sequence[str], allow: bool, all_codes: bool) -> dict[str, Path]:
        """Each code's caption file, fetched when missing and allowed. For every code of the
        release ("all"), codes whose file is missing and cannot be fetched are left out (with a
        warning) as long as one is there; a requested code that cannot be had is an error."""
        files: dict[str, Path] = {}
        missing: list[str] = []
        kw = {"benchmark": self.name, "layout": self.layout}
        for code in codes:
            rf = self.caption_file(code)
            present = first_existing(root, (rf.path, rf.path.removesuffix(".gz")))
            if present is None and not all_codes:  # a language asked for by name: have it or say why not
                present = ensure(root, rf, allow_download=allow, **kw)
            elif present is None and allow:
                try:
                    present = ensure(root, rf, allow_download=True, **kw)
                except DownloadError:
                    allow = False  # offline or unreachable: no further tries
            if present is None:
                missing.append(code)
            else:
                files[code] = present
        if not files:
            raise FileNotFoundError(f"{self.name}: no caption file under {root}; expected the layout {self.layout}"
                                    + (f" (e.g. {self.caption_file(codes[0]).path})" if codes else ""))
        if missing:
            log.warning("%s: no caption file for %d languages (%s): left out", self.name, len(missing),
                        ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""))
        return files


__all__ = ["DownloadError", "LineRelease", "ReleaseFile", "aligned_captions", "benchmark_root", "ensure",
           "first_existing", "listed_images", "read_lines"]
