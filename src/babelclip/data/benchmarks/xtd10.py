"""XTD10 (Aggarwal & Kale, 2020): 1,000 MS-COCO 2014 images with one human caption each in 11
languages (7 translated by professionals, German and French from Multi-lingual Image Captions,
Japanese from STAIR Captions).

Release layout (github.com/adobe-research/Cross-lingual-Test-Dataset-XTD10), kept under the
benchmark folder as released::

    XTD10/test_image_names.txt        one COCO image file name per line (the index)
    XTD10/test_1kcaptions_{code}.txt  es it ko pl ru tr zh en: line i describes index line i
    MIC/test_1kcaptions_{de,fr}.txt
    STAIR/test_1kcaptions_jp.txt      Japanese under XTD's own code "jp"
    images/                           the 1,000 images (CLIP_benchmark's images.tar.gz)

Each image has one caption per language, so the two retrieval protocols coincide: results are
labelled ``first-caption`` as CLIP_benchmark reports them.
"""
from __future__ import annotations

from ...languages import get_language
from .registry import RETRIEVAL, Benchmark, Inputs, Prepared, Source
from .release import LineRelease, ReleaseFile, benchmark_root

REPO = "https://raw.githubusercontent.com/adobe-research/Cross-lingual-Test-Dataset-XTD10/main"
IMAGES_URL = "https://nllb-data.com/test/xtd10/images.tar.gz"
CODES = ("de", "en", "es", "fr", "it", "jp", "ko", "pl", "ru", "tr", "zh")
_FOLDER = {"de": "MIC", "fr": "MIC", "jp": "STAIR"}
LAYOUT = ("XTD10/test_image_names.txt, {XTD10,MIC,STAIR}/test_1kcaptions_CODE.txt (one caption per line, "
          "aligned with the index), images/")
LICENCE = ("captions: Adobe Research License (non-commercial research only); images: MS-COCO 2014 "
           "(Flickr terms of use)")
CITATION = ("Aggarwal, Kale (2020). Towards Zero-shot Cross-lingual Image Retrieval. arXiv:2012.05107; "
            "CLIP_benchmark (LAION-AI) for the image archive")


def caption_file(code: str) -> ReleaseFile:
    path = f"{_FOLDER.get(code, 'XTD10')}/test_1kcaptions_{code}.txt"
    return ReleaseFile(path, f"{REPO}/{path}")


def code_of(tag: str) -> str:
    code = "jp" if tag == "ja" else get_language(tag).tag
    return code if code in CODES else ""


def release(name: str) -> LineRelease:
    """The XTD10 files as benchmark ``name`` (CLIP_benchmark ships them twice: xtd10 and
    multilingual_mscoco)."""
    return LineRelease(
        name=name, layout=LAYOUT, index=ReleaseFile("XTD10/test_image_names.txt", f"{REPO}/XTD10/test_image_names.txt"),
        caption_file=caption_file, codes=CODES, code_of=code_of,
        images=ReleaseFile("images", IMAGES_URL, archive=True),
        images_how=f"unpack {IMAGES_URL} there (it holds images/), or pass --images with the COCO images",
    )


def present_at(name: str) -> str:
    root = benchmark_root(name, None)
    return str(root) if (root / "XTD10" / "test_image_names.txt").is_file() and (root / "images").is_dir() else ""


def _prepare(inputs: Inputs) -> Prepared:
    return release("xtd10").prepare(inputs)


BENCHMARK = Benchmark(
    name="xtd10",
    title="XTD10 (Cross-lingual Test Dataset)",
    tasks=(RETRIEVAL,),
    languages=tuple(get_language(c).tag for c in CODES),
    images="1,000 MS-COCO 2014 photos",
    licence=LICENCE,
    citation=CITATION,
    sources=(Source("url", f"{REPO}/ (captions, on first use)"), Source("url", f"{IMAGES_URL} (images)"),
             Source("local", "$BABELCLIP_DATA/xtd10 or --root DIR", LAYOUT)),
    prepare=_prepare,
    present=lambda: present_at("xtd10"),
    aliases=("xtd",),
    clip_benchmark="xtd10",
    clip_benchmark_codes="xtd",
    protocols=("first-caption",),
)
