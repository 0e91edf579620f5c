"""Image sources behind one small interface: a list of :class:`ImageItem` with stable ids.

Sources: any image folder (recursive), the ImageNet validation set (class subfolders named by
wnid, or flat files plus ``LOC_val_solution.csv`` / a ``file wnid`` list), webdataset tar
shards, and Tux Paint stamps (:mod:`babelclip.data.tuxpaint`). Items only *point* at images;
decoding happens in :func:`load_image`, inside data-loader workers, and a file that does not
decode is skipped and counted by the encoder (:mod:`babelclip.eval.encode`), never fatal.

Tar shards are read with the standard ``tarfile`` module rather than the ``webdataset``
package: listing a shard once gives each member's byte offset, so any item can be read by a
seek — which the cache needs (only items not yet cached are decoded) and so does sharding
across ranks — whereas webdataset is a sequential stream. Its naming convention is kept:
files sharing a key (``0001.jpg``, ``0001.cls``) form one sample, ``.cls`` holds the label.
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm")


@dataclass(frozen=True)
class ImageItem:
    """One image: where its bytes are and which class (position in ``ImageSource.classes``) it has.

    ``offset``/``size`` locate a member inside the tar file ``path``; both are -1 for a plain
    file. ``label`` is -1 when the source has no classes.
    """

    id: str
    path: str
    label: int = -1
    offset: int = -1
    size: int = -1

    def identity(self, content_hash: bool = False) -> str:
        """The cache key: path + size + mtime (+ tar offset), or a SHA-256 of the bytes.

        A path that is not valid UTF-8 (its str holds surrogate escapes) is keyed by the hex of
        its bytes, so the key is always storable text and distinct from every UTF-8 path.
        """
        if content_hash:
            return "sha256:" + hashlib.sha256(read_bytes(self)).hexdigest()
        st = os.stat(self.path)
        path = _key_text(os.path.abspath(self.path))
        where = f"{path}@{self.offset}" if self.offset >= 0 else path
        return f"{where}|{st.st_size}|{st.st_mtime_ns}"


def _key_text(path: str) -> str:
    """``path`` itself when it is valid Unicode, else ``fsbytes:`` + the hex of its bytes."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return "fsbytes:" + os.fsencode(path).hex()


def printable_path(path: str) -> str:
    """``path`` as text that can be written anywhere (JSON, logs, SQLite): unchanged when it is
    valid Unicode; bytes of a name that is not UTF-8 become ``\\xNN`` escapes (``café`` in
    Latin-1 -> ``caf\\xe9``)."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        try:
            return os.fsencode(path).decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a lone surrogate no file system produced
            return path.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass
class ImageSource:
    """A named list of images; ``classes`` names the labels (wnids for ImageNet) when any."""

    name: str
    items: list[ImageItem]
    classes: tuple[str, ...] = ()
    skipped: dict[str, str] = field(default_factory=dict)  # id -> why it was left out at listing
    # A module-level ``(path, bytes) -> PIL image`` replacing :func:`decode` (it must pickle to
    # data-loader workers); its name becomes part of every cache key, since it changes pixels.
    loader: Callable[[str, bytes], Image.Image] | None = None

    @property
    def loader_name(self) -> str:
        return "" if self.loader is None else f"{self.loader.__module__}.{self.loader.__qualname__}"

    def __len__(self) -> int:
        return len(self.items)

    def labels(self) -> list[int]:
        return [it.label for it in self.items]


def read_bytes(item: ImageItem) -> bytes:
    if item.offset >= 0:
        with open(item.path, "rb") as f:
            f.seek(item.offset)
            return f.read(item.size)
    with open(item.path, "rb") as f:
        return f.read()


def load_image(item: ImageItem, loader: Callable[[str, bytes], Image.Image] | None = None) -> Image.Image:
    """Read and decode an item fully, so truncated files fail here and not later."""
    data = read_bytes(item)
    return (loader or decode)(item.path, data)


def decode(path: str, data: bytes) -> Image.Image:
    """Bytes → PIL image. RGBA stays RGBA so a model whose preprocessing composites transparency
    (babel-lite) can do so; palette and grey images become RGB(A)."""
    from PIL import Image

    im = Image.open(io.BytesIO(data))
    im.load()
    if im.mode not in ("RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in im.getbands() or "transparency" in im.info else "RGB")
    return im


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS


def image_folder(root: str | os.PathLike, name: str | None = None) -> ImageSource:
    """Every image file under ``root`` (recursive, sorted); ids are paths relative to ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {str(root)!r} does not exist or is not a directory")
    files = sorted(p for p in root.rglob("*") if p.is_file() and _is_image(p))
    if not files:
        raise ValueError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) under {str(root)!r}")
    items = [ImageItem(printable_path(p.relative_to(root).as_posix()), str(p)) for p in files]
    return ImageSource(name or root.name, items)


def _wnid_index() -> dict[str, int]:
    from .imagenet import imagenet_wnids

    return {w: i for i, w in enumerate(imagenet_wnids())}


def read_ground_truth(path: str | os.PathLike) -> dict[str, str]:
    """Image file stem → wnid from ``LOC_val_solution.csv`` (Kaggle) or lines ``FILE WNID``."""
    path = Path(path)
    out: dict[str, str] = {}
    text = path.read_text(encoding="utf-8")
    if text.startswith("ImageId,"):
        for row in csv.DictReader(io.StringIO(text)):
            out[row["ImageId"]] = row["PredictionString"].split()[0]
    else:
        for n, line in enumerate(text.splitlines(), 1):
            parts = line.replace(",", " ").split()
            if not parts:
                continue
            if len(parts) < 2:
                raise ValueError(f"{path}:{n}: expected 'FILE WNID', got {line!r}")
            out[Path(parts[0]).stem] = parts[1]
    return out


def imagenet_val(root: str | os.PathLike, ground_truth: str | os.PathLike | None = None) -> ImageSource:
    """The ImageNet-1k validation images, labelled by class index in the standard wnid order.

    Either ``root`` (or ``root/val``) holds one sub-folder per wnid, or it holds the images
    flat and ``ground_truth`` maps each file to its wnid (``LOC_val_solution.csv`` or a
    ``FILE WNID`` list; looked up next to the images when not given).
    """
    root = Path(root)
    if (root / "val").is_dir() and not any(p.is_dir() and p.name.startswith("n") for p in root.iterdir()):
        root = root / "val"
    if not root.is_dir():
        raise FileNotFoundError(f"ImageNet folder {str(root)!r} does not exist")
    index = _wnid_index()
    classes = tuple(index)
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and p.name in index)
    items: list[ImageItem] = []
    skipped: dict[str, str] = {}
    if subdirs:
        for d in subdirs:
            for p in sorted(d.rglob("*")):
                if p.is_file() and _is_image(p):
                    items.append(ImageItem(printable_path(p.relative_to(root).as_posix()), str(p), index[d.name]))
    else:
        if ground_truth is None:
            for cand in ("LOC_val_solution.csv", "val_labels.txt", "ground_truth.txt"):
                for base in (root, root.parent):
                    if (base / cand).exists():
                        ground_truth = base / cand
                        break
                if ground_truth is not None:
                    break
        if ground_truth is None:
            raise ValueError(
                f"{str(root)!r} has no wnid sub-folders (n01440764/, ...) and no ground-truth file; "
                "pass one: LOC_val_solution.csv or a text file of 'FILE WNID' lines"
            )
        truth = read_ground_truth(ground_truth)
        for p in sorted(root.rglob("*")):
            if not (p.is_file() and _is_image(p)):
                continue
            wnid = truth.get(p.stem)
            rel = printable_path(p.relative_to(root).as_posix())
            if wnid is None or wnid not in index:
                skipped[rel] = "no ground-truth label" if wnid is None else f"unknown wnid {wnid}"
                continue
            items.append(ImageItem(rel, str(p), index[wnid]))
    if not items:
        raise ValueError(f"no labelled ImageNet images found under {str(root)!r}")
    if skipped:
        log.warning("%d images under %s have no usable label and are left out", len(skipped), root)
    return ImageSource("imagenet-val", items, classes, skipped)


def webdataset_shards(paths: Sequence[str | os.PathLike], name: str = "webdataset") -> ImageSource:
    """Samples of webdataset tar shards (``{brace}`` patterns are not expanded: pass the files).

    A sample is the members sharing a key (path without extension); its first image member is
    the image and a ``.cls`` member, when present, its integer class.
    """
    items: list[ImageItem] = []
    skipped: dict[str, str] = {}
    labelled = False
    for shard in paths:
        shard = str(shard)
        if not os.path.isfile(shard):
            raise FileNotFoundError(f"webdataset shard {shard!r} does not exist")
        samples: dict[str, dict[str, tarfile.TarInfo]] = {}
        try:
            with tarfile.open(shard, "r:") as tf:  # uncompressed: members must be seekable
                for m in tf:
                    if not m.isfile():
                        continue
                    key, _, ext = m.name.partition(".")
                    samples.setdefault(key, {})[ext.lower()] = m
                labels: dict[str, int] = {}
                for key, members in samples.items():
                    if "cls" in members:
                        raw = tf.extractfile(members["cls"]).read().decode().strip()
                        labels[key] = int(raw)
        except tarfile.ReadError as e:
            raise ValueError(f"{shard!r} is not an uncompressed tar shard ({e})") from None
        base = printable_path(Path(shard).name)
        for key, members in samples.items():
            key = printable_path(key)
            img = next((m for ext, m in members.items() if "." + ext.rsplit(".", 1)[-1] in IMAGE_EXTENSIONS), None)
            if img is None:
                skipped[f"{base}/{key}"] = "no image member"
                continue
            label = labels.get(key, -1)
            labelled |= label >= 0
            items.append(ImageItem(f"{base}/{key}", shard, label, img.offset_data, img.size))
    if not items:
        raise ValueError(f"no image samples in {len(paths)} shard(s)")
    n_classes = max((it.label for it in items), default=-1) + 1
    classes = tuple(str(i) for i in range(n_classes)) if labelled else ()
    return ImageSource(name, items, classes, skipped)
