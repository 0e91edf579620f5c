"""Flickr30k-200 (Visheratin, 2023, NLLB-CLIP): 1,000 Flickr30k test images with one English
caption each machine-translated by NLLB into the ~200 FLORES-200 languages.

Release layout (github.com/visheratin/nllb-clip, ``data/flickr30k-200/``), kept as released::

    filenames.txt           one image file name per line (the index)
    {flores}.txt            one caption per line, aligned with the index (deu_Latn.txt, ...)
    images/                 the images (CLIP_benchmark's flickr30k images.tar.gz)

The release's English file is ``eng_captions.txt``, not a FLORES-named file; like
CLIP_benchmark, babelclip reads only ``{flores}.txt`` files, so English is absent unless an
``eng_Latn.txt`` is placed there. One caption per image and language: ``first-caption``.
"""
from __future__ import annotations

from .registry import RETRIEVAL, Benchmark, Inputs, Prepared, Source
from .xtd200 import CITATION, NLLB_CLIP, NLLB_LICENCE, nllb_clip_release, present_at

IMAGES_URL = "https://nllb-data.com/test/flickr30k/images.tar.gz"


def _prepare(inputs: Inputs) -> Prepared:
    return nllb_clip_release("flickr30k-200", "flickr30k-200", "filenames.txt", IMAGES_URL).prepare(inputs)


BENCHMARK = Benchmark(
    name="flickr30k-200",
    title="Flickr30k-200 (Flickr30k test captions machine-translated into FLORES-200 languages)",
    tasks=(RETRIEVAL,),
    languages="~200 (FLORES-200 codes)",
    images="1,000 Flickr30k test photos",
    licence=f"{NLLB_LICENCE}; images: Flickr30k (non-commercial research use, Flickr terms)",
    citation=CITATION,
    sources=(Source("url", f"{NLLB_CLIP}/flickr30k-200/ (captions, per language on first use)"),
             Source("url", f"{IMAGES_URL} (images)"),
             Source("local", "$BABELCLIP_DATA/flickr30k-200 or --root DIR", "filenames.txt, FLORES_CODE.txt, images/")),
    prepare=_prepare,
    present=lambda: present_at("flickr30k-200", "filenames.txt"),
    aliases=("flickr30k200",),
    clip_benchmark="flickr30k_200",
    clip_benchmark_codes="nllb",
    protocols=("first-caption",),
)
