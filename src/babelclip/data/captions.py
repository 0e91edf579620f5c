"""Caption sets for multilingual image-text retrieval (XTD, xFlickr&CO, XM3600 as released).

The Babel-ImageNet repository ships the retrieval captions as
``{"images": [file, ...], "captions": {lang: [[caption, ...] per image]}}``: for every language
one list per image, aligned with ``images``. Language codes are converted to BCP-47 tags at load
time (XTD's ``jp`` becomes ``ja``); the image files themselves (COCO, Flickr30k) are not included. Empty caption strings (one in
xFlickr&CO's German) are dropped with a warning; an image may then have no caption in a language.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..languages import UnknownLanguageError
from .labels import read_json, resolve_code

log = logging.getLogger(__name__)

FORMAT_HINT = '{"images": [file, ...], "captions": {"lang": [[caption, ...] per image]}}'


@dataclass
class CaptionSet:
    name: str
    images: list[str]
    captions: dict[str, list[list[str]]]  # tag -> per image, its captions

    def languages(self) -> list[str]:
        return list(self.captions)

    def pairs(self, lang: str) -> tuple[list[str], list[int]]:
        """Flat captions of ``lang`` and, for each, the index of its image."""
        tag = resolve_code(lang, self.name)
        if tag not in self.captions:
            raise KeyError(
                f"caption set {self.name!r} has no {tag} captions; it has {', '.join(self.captions)}"
            )
        texts, owner = [], []
        for i, caps in enumerate(self.captions[tag]):
            texts += caps
            owner += [i] * len(caps)
        return texts, owner


def check_unique_images(images: list[str], source: str | os.PathLike) -> None:
    """A caption set names each image once (a second entry would be a second, identical
    retrieval target); raises naming the first repeated image and both positions."""
    seen: dict[str, int] = {}
    for i, name in enumerate(images):
        if name in seen:
            raise ValueError(f"{source}: image {name!r} is listed twice (positions {seen[name]} and {i}); "
                             "a caption set lists each image once, with all its captions in one list")
        seen[name] = i


def load_captions(
    path: str | os.PathLike,
    name: str | None = None,
    *,
    unknown: Literal["error", "skip"] = "error",
) -> CaptionSet:
    """Load and validate a caption file; every error names the file, the entry and the format."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; --captions takes a caption file: {FORMAT_HINT}")
    if not path.is_file():
        raise FileNotFoundError(f"caption file {path} does not exist; expected a file {FORMAT_HINT}")
    doc = read_json(path, FORMAT_HINT)
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("images"), list)
        or not isinstance(doc.get("captions"), dict)
    ):
        raise ValueError(f"{path}: expected {FORMAT_HINT}")
    images = doc["images"]
    if not all(isinstance(x, str) and x for x in images):
        raise ValueError(f"{path}: 'images' must be a list of non-empty file names")
    check_unique_images(images, path)
    captions: dict[str, list[list[str]]] = {}
    empty: dict[str, int] = {}
    for code, per_image in doc["captions"].items():
        where = f"{path}: captions {code!r}"
        try:
            tag = resolve_code(code, path)
        except UnknownLanguageError:
            if unknown == "skip":
                continue
            raise
        if tag in captions:
            raise ValueError(f"{where}: language {tag} given twice")
        if not isinstance(per_image, list) or len(per_image) != len(images):
            n = len(per_image) if isinstance(per_image, list) else type(per_image).__name__
            raise ValueError(
                f"{where}: {n} caption lists for {len(images)} images; one list per image, in 'images' order"
            )
        rows: list[list[str]] = []
        for i, caps in enumerate(per_image):
            if isinstance(caps, str):  # one caption per image given without a list
                caps = [caps]
            if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
                raise ValueError(
                    f"{where}: image {i} ({images[i]}): expected a list of caption strings, got {caps!r}"
                )
            kept = [c for c in caps if c.strip()]
            empty[tag] = empty.get(tag, 0) + len(caps) - len(kept)
            rows.append(kept)
        captions[tag] = rows
    for tag, n in empty.items():
        if n:
            log.warning("%s: %s: dropped %d empty captions", path, tag, n)
    return CaptionSet(name=name or path.stem, images=list(images), captions=captions)
