"""Multi30k task 1 test 2016 (Elliott et al., 2016; French 2017, Czech 2018): 1,000 Flickr30k
images, each with one English description and its human translations into German, French and
Czech.

Release layout (github.com/multi30k/dataset), kept as released (a clone of the repository
works as the benchmark folder)::

    data/task1/image_splits/test_2016_flickr.txt   one Flickr30k file name per line (the index)
    data/task1/raw/test_2016_flickr.{en,de,fr,cs}.gz
                                                    gzipped text, line i describing index line i
                                                    (uncompressed copies without .gz also work)
    flickr30k-images/                               the Flickr30k images, which the release does
                                                    not include (request them from the Flickr30k
                                                    authors), or --images DIR

Only the listed images are read, so ``--images`` may be the whole Flickr30k folder.
One caption per image and language: results are labelled ``first-caption``.
"""
from __future__ import annotations

from ...languages import get_language
from .registry import RETRIEVAL, Benchmark, Inputs, Prepared, Source
from .release import LineRelease, ReleaseFile, benchmark_root

REPO = "https://raw.githubusercontent.com/multi30k/dataset/master"
SPLIT = "test_2016_flickr"
CODES = ("en", "de", "fr", "cs")
INDEX = f"data/task1/image_splits/{SPLIT}.txt"
LAYOUT = f"{INDEX}, data/task1/raw/{SPLIT}.CODE.gz (one caption per line, aligned), flickr30k-images/"
FLICKR30K = "https://shannon.cs.illinois.edu/DenotationGraph/"


def _file(code: str) -> ReleaseFile:
    path = f"data/task1/raw/{SPLIT}.{code}.gz"
    return ReleaseFile(path, f"{REPO}/{path}")


def _code_of(tag: str) -> str:
    code = get_language(tag).tag
    return code if code in CODES else ""


RELEASE = LineRelease(
    name="multi30k", layout=LAYOUT, index=ReleaseFile(INDEX, f"{REPO}/{INDEX}"), caption_file=_file, codes=CODES,
    code_of=_code_of, images=ReleaseFile("flickr30k-images"),
    images_how=f"place the Flickr30k images (request them at {FLICKR30K}) in flickr30k-images/ there, or pass --images",
)


def _prepare(inputs: Inputs) -> Prepared:
    return RELEASE.prepare(inputs)


def _present() -> str:
    root = benchmark_root("multi30k", None)
    return str(root) if (root / INDEX).is_file() and (root / "flickr30k-images").is_dir() else ""


BENCHMARK = Benchmark(
    name="multi30k",
    title="Multi30k task 1, test 2016 (en, de, fr, cs)",
    tasks=(RETRIEVAL,),
    languages=CODES,
    images="1,000 Flickr30k test photos (not fetched: Flickr30k terms)",
    licence="captions: as released at github.com/multi30k/dataset for research; images: Flickr30k "
            "(non-commercial research use)",
    citation="Elliott, Frank, Sima'an, Specia (2016). Multi30K: Multilingual English-German Image Descriptions. "
             "VL@ACL; Elliott et al. (2017) and Barrault et al. (2018), WMT shared tasks (French, Czech)",
    sources=(Source("url", f"{REPO}/data/task1/ (captions and index, on first use)"),
             Source("manual", f"Flickr30k images from {FLICKR30K}", "into flickr30k-images/ or --images"),
             Source("local", "$BABELCLIP_DATA/multi30k or --root DIR (a clone of multi30k/dataset)", LAYOUT)),
    prepare=_prepare,
    present=_present,
    protocols=("first-caption",),
)
