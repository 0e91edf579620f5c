"""Crossmodal-3600 (Thapliyal et al., 2022): 3,600 Open Images photos chosen for geographic
diversity, with captions written by native speakers in 36 languages (about two per image and
language; Bengali one, Maori ~1.3).

Release layout (google.github.io/crossmodal-3600), kept under the benchmark folder::

    captions.jsonl      one JSON object per line, one line per image:
                        {"image/key": "000411001ff7dd4f", "image/locale": "...",
                         "en": {"caption": ["...", "..."], "caption/tokenized": [...], ...},
                         "de": {...}, ... one entry per XM3600 language code}
                        (captions.zip of the release holds this file)
    images/{key}.jpg    the images (images.tgz of the release unpacked into images/)

Language codes are XM3600's (``fil``, ``quz``, ``no``, ``zh``...), converted through the
language table's XM3600 column. Several captions per image: both retrieval protocols,
``all-captions`` (every caption a query; Babel-ImageNet's evaluation) and ``first-caption``
(CLIP_benchmark's ``crossmodal3600``).
"""
from __future__ import annotations

import json
from pathlib import Path

from ...languages import all_languages, get_language
from .registry import (
    RETRIEVAL,
    RETRIEVAL_PROTOCOLS,
    Benchmark,
    Inputs,
    Prepared,
    RetrievalTask,
    Source,
)
from .release import ReleaseFile, benchmark_root, ensure, listed_images, read_lines

CAPTIONS_URL = "https://google.github.io/crossmodal-3600/web-data/captions.zip"
IMAGES_URL = "https://open-images-dataset.s3.amazonaws.com/crossmodal-3600/images.tgz"
LAYOUT = 'captions.jsonl (one {"image/key": KEY, CODE: {"caption": [...]}, ...} object per line), images/KEY.jpg'


def xm3600_codes() -> tuple[str, ...]:
    return tuple(sorted(lang.xm3600 for lang in all_languages() if lang.xm3600))


def read_captions(path: Path, codes: set[str] | None = None):
    """A :class:`~babelclip.data.captions.CaptionSet` from ``captions.jsonl`` (``codes``: only
    these XM3600 codes); every malformed line raises naming the file, line and layout."""
    from ..captions import CaptionSet, check_unique_images

    images: list[str] = []
    captions: dict[str, list[list[str]]] = {}
    known = set(xm3600_codes())
    for n, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not a JSON object ({e.msg}); expected the layout {LAYOUT}") from None
        key = doc.get("image/key") if isinstance(doc, dict) else None
        if not isinstance(key, str) or not key:
            raise ValueError(f"{path}:{n}: no 'image/key'; expected the layout {LAYOUT}")
        for code, entry in doc.items():
            if code not in known or (codes is not None and code not in codes):
                continue
            caps = entry.get("caption") if isinstance(entry, dict) else None
            if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
                raise ValueError(f"{path}:{n}: {code!r} has no list of strings under 'caption'; expected {LAYOUT}")
            per_image = captions.setdefault(get_language(code).tag, [[] for _ in images])
            per_image.append([c for c in caps if c.strip()])
        images.append(f"{key}.jpg")
        for per_image in captions.values():  # a language this image lacks: no captions here
            if len(per_image) < len(images):
                per_image.append([])
    if not images:
        raise ValueError(f"{path}: no images; expected the layout {LAYOUT}")
    check_unique_images(images, path)
    return CaptionSet("xm3600", images, captions)


def _prepare(inputs: Inputs) -> Prepared:
    root = benchmark_root("xm3600", inputs.root)
    kw = {"benchmark": "xm3600", "layout": LAYOUT, "allow_download": inputs.download}
    path = ensure(root, ReleaseFile("captions.jsonl", CAPTIONS_URL, archive=True), **kw)
    codes = None if inputs.languages is None else {get_language(t).xm3600 for t in inputs.languages} - {""}
    cap = read_captions(path, codes)
    folder = inputs.images or ensure(root, ReleaseFile("images", IMAGES_URL, archive=True, unpack_to="images"), **kw)
    source = listed_images(Path(folder), cap.images, "xm3600", f"unpack {IMAGES_URL} into {root / 'images'}")
    return Prepared("xm3600", source, [RetrievalTask(cap, RETRIEVAL_PROTOCOLS)])


def _present() -> str:
    root = benchmark_root("xm3600", None)
    return str(root) if (root / "captions.jsonl").is_file() and (root / "images").is_dir() else ""


BENCHMARK = Benchmark(
    name="xm3600",
    title="Crossmodal-3600",
    tasks=(RETRIEVAL,),
    languages=tuple(get_language(c).tag for c in xm3600_codes()),
    images="3,600 Open Images photos",
    licence="captions: CC BY 4.0 (Google); images: Open Images, each under its own licence (mostly CC BY 2.0)",
    citation="Thapliyal, Pont-Tuset, Chen, Soricut (2022). Crossmodal-3600: A Massively Multilingual Multimodal "
             "Evaluation Dataset. EMNLP 2022",
    sources=(Source("url", f"{CAPTIONS_URL} (captions)"), Source("url", f"{IMAGES_URL} (images)"),
             Source("local", "$BABELCLIP_DATA/xm3600 or --root DIR", LAYOUT)),
    prepare=_prepare,
    present=_present,
    aliases=("crossmodal3600", "crossmodal-3600"),
    clip_benchmark="crossmodal3600",
    clip_benchmark_codes="xm3600",
    protocols=RETRIEVAL_PROTOCOLS,
)
