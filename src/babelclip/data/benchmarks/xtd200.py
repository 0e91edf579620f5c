"""XTD200 (Visheratin, 2023, NLLB-CLIP): XTD10's 1,000 MS-COCO images with their English captions
machine-translated by NLLB into the ~200 FLORES-200 languages.

Release layout (github.com/visheratin/nllb-clip, ``data/xtd200/``), kept under the benchmark
folder as released::

    test_image_names.txt    one image file name per line (the index)
    {flores}.txt            one caption per line, aligned with the index; named by FLORES-200
                            code (deu_Latn.txt, zho_Hant.txt, ...)
    images/                 the images (CLIP_benchmark's XTD10 images.tar.gz)

One caption per image and language: results are labelled ``first-caption``.
"""
from __future__ import annotations

from ...languages import all_languages, get_language
from .registry import RETRIEVAL, Benchmark, Source
from .release import LineRelease, ReleaseFile, benchmark_root

NLLB_CLIP = "https://raw.githubusercontent.com/visheratin/nllb-clip/main/data"
CITATION = ("Visheratin (2023). NLLB-CLIP - train performant multilingual image retrieval model on a budget. "
            "arXiv:2309.01859")
NLLB_LICENCE = "captions: NLLB machine translations released with NLLB-CLIP (the repository states no licence)"


def flores_codes() -> tuple[str, ...]:
    """FLORES-200 codes the language table knows (the releases name their files by them)."""
    return tuple(sorted(lang.nllb for lang in all_languages() if lang.nllb))


def nllb_code(tag: str) -> str:
    return get_language(tag).nllb


def nllb_clip_release(name: str, folder: str, index: str, images_url: str) -> LineRelease:
    """An NLLB-CLIP caption release (``data/<folder>/``: ``<index>`` plus ``{flores}.txt``)."""
    layout = f"{index} (one image file name per line), FLORES_CODE.txt (one caption per line, aligned), images/"
    return LineRelease(
        name=name, layout=layout, index=ReleaseFile(index, f"{NLLB_CLIP}/{folder}/{index}"),
        caption_file=lambda code: ReleaseFile(f"{code}.txt", f"{NLLB_CLIP}/{folder}/{code}.txt"),
        codes=flores_codes(), code_of=nllb_code,
        images=ReleaseFile("images", images_url, archive=True),
        images_how=f"unpack {images_url} there (it holds images/), or pass --images",
    )


def present_at(name: str, index: str) -> str:
    root = benchmark_root(name, None)
    return str(root) if (root / index).is_file() and (root / "images").is_dir() else ""


def nllb_clip_benchmark(name: str, index: str, images_url: str, *, title: str, images: str, images_licence: str,
                        aliases: tuple[str, ...] = ()) -> Benchmark:
    """The registry entry of an NLLB-CLIP caption set (``data/<name>/`` of the release)."""
    release = nllb_clip_release(name, name, index, images_url)
    return Benchmark(
        name=name, title=title, tasks=(RETRIEVAL,), languages="~200 (FLORES-200 codes)", images=images,
        licence=f"{NLLB_LICENCE}; images: {images_licence}", citation=CITATION,
        sources=(Source("url", f"{NLLB_CLIP}/{name}/ (captions, per language on first use)"),
                 Source("url", f"{images_url} (images)"),
                 Source("local", f"$BABELCLIP_DATA/{name} or --root DIR", release.layout)),
        prepare=release.prepare, present=lambda: present_at(name, index), aliases=aliases,
        clip_benchmark=name.replace("-", "_"), clip_benchmark_codes="nllb", protocols=("first-caption",),
    )


BENCHMARK = nllb_clip_benchmark(
    "xtd200", "test_image_names.txt", "https://nllb-data.com/test/xtd10/images.tar.gz",
    title="XTD200 (XTD10 captions machine-translated into FLORES-200 languages)",
    images="1,000 MS-COCO 2014 photos (XTD10's)", images_licence="MS-COCO 2014 (Flickr terms of use)",
)
