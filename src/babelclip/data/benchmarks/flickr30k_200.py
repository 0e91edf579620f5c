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

from .xtd200 import nllb_clip_benchmark

BENCHMARK = nllb_clip_benchmark(
    "flickr30k-200", "filenames.txt", "https://nllb-data.com/test/flickr30k/images.tar.gz",
    title="Flickr30k-200 (Flickr30k test captions machine-translated into FLORES-200 languages)",
    images="1,000 Flickr30k test photos", images_licence="Flickr30k (non-commercial research use, Flickr terms)",
    aliases=("flickr30k200",),
)
