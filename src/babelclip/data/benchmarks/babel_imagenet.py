"""Babel-ImageNet (Geigle et al., 2024): ImageNet-1k validation images, class labels in 92 (or
298) languages from BabelNet; zero-shot classification per language.

Images: the ImageNet-1k validation set, which babelclip cannot fetch (its licence requires a
sign-up at image-net.org): ``--images`` is a folder of wnid sub-folders, or the flat files with
``LOC_val_solution.csv`` or ``FILE WNID`` lines (:func:`babelclip.data.images.imagenet_val`).
Labels: ``--labels`` (a release file, or any file in the release format: then results carry that
file's own name), else the release found locally or downloaded (:mod:`babelclip.data.labels`).
"""
from __future__ import annotations

from pathlib import Path

from .registry import (
    CLASSIFICATION,
    IMAGE_RESULT_TASKS,
    Benchmark,
    ClassificationTask,
    Inputs,
    Prepared,
    Source,
    image_tasks_if_classes,
)

_RELEASE = "https://github.com/gregor-ge/Babel-ImageNet"


def _prepare(inputs: Inputs) -> Prepared:
    from ..images import imagenet_val
    from ..labels import RELEASE_FILES, load_babel_imagenet, load_labels

    if inputs.images is None:
        raise ValueError("babel-imagenet needs --images: the ImageNet-1k validation folder (wnid sub-folders "
                         "n01440764/..., or the flat images with LOC_val_solution.csv)")
    source = imagenet_val(inputs.images)
    release = inputs.labels is None or (isinstance(inputs.labels, (str, Path))
                                        and Path(inputs.labels).name in RELEASE_FILES.values())
    if inputs.protocol == "paper" and release:  # the reference scores English with OpenAI CLIP's class names
        label_set = load_babel_imagenet(inputs.labels, english="clip", allow_download=inputs.download)
    else:
        label_set = load_labels(inputs.labels)
    tasks = [ClassificationTask(label_set, protocol="babel-imagenet"), *image_tasks_if_classes(source)]
    return Prepared(label_set.name, source, tasks,
                    {"labels_licence": label_set.licence} if label_set.licence else {})


def _present() -> str:
    from ..labels import RELEASE_FILES, release_file

    try:
        labels = release_file(RELEASE_FILES["92"], allow_download=False)
    except FileNotFoundError:
        return ""
    return f"labels: {labels}; images: pass --images"


BENCHMARK = Benchmark(
    name="babel-imagenet",
    title="Babel-ImageNet",
    tasks=(CLASSIFICATION, *IMAGE_RESULT_TASKS),
    languages="92 (298 with babel_imagenet-298.json)",
    images="ImageNet-1k validation, 50,000 photos (not fetched: image-net.org)",
    licence="labels: BabelNet Non-Commercial License; images: ImageNet terms of access",
    citation="Geigle, Timofte, Glavaš (2024). Babel-ImageNet: Massively Multilingual Evaluation of "
             "Vision-and-Language Representations. ACL 2024.",
    sources=(Source("manual", "ImageNet-1k validation images from image-net.org", "pass --images"),
             Source("clip-benchmark", "its copy of babel_imagenet.json"),
             Source("url", f"{_RELEASE} (labels, downloaded on first use)")),
    prepare=_prepare,
    present=_present,
    clip_benchmark="babel_imagenet",
    clip_benchmark_codes="babel",
)
