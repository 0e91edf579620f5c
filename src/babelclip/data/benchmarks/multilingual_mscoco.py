"""Multilingual MS-COCO as CLIP_benchmark names it (``multilingual_mscoco``): the XTD10 files
(same index, caption files and image archive; see :mod:`.xtd10`) under their own name, so its
results line up with CLIP_benchmark's."""
from __future__ import annotations

from . import xtd10
from .registry import RETRIEVAL, Benchmark, Inputs, Prepared, Source


def _prepare(inputs: Inputs) -> Prepared:
    return xtd10.release("multilingual-mscoco").prepare(inputs)


BENCHMARK = Benchmark(
    name="multilingual-mscoco",
    title="Multilingual MS-COCO (CLIP_benchmark's copy of XTD10)",
    tasks=(RETRIEVAL,),
    languages=xtd10.BENCHMARK.languages,
    images=xtd10.BENCHMARK.images,
    licence=xtd10.LICENCE,
    citation=xtd10.CITATION,
    sources=(Source("url", f"{xtd10.REPO}/ (captions, on first use)"), Source("url", f"{xtd10.IMAGES_URL} (images)"),
             Source("local", "$BABELCLIP_DATA/multilingual-mscoco or --root DIR", xtd10.LAYOUT)),
    prepare=_prepare,
    present=lambda: xtd10.present_at("multilingual-mscoco"),
    clip_benchmark="multilingual_mscoco",
    clip_benchmark_codes="xtd",
    protocols=("first-caption",),
)
