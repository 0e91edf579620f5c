"""Tux Paint stamps (Debian ``tuxpaint-stamps-default``): retrieval of stamps by their
human-translated descriptions in ~75 languages, and classification on the stamps that map to an
ImageNet class (:mod:`babelclip.data.tuxpaint`). Offline; the default benchmark of the README."""
from __future__ import annotations

from pathlib import Path

from .registry import (
    CLASSIFICATION,
    IMAGE_RESULT_TASKS,
    RETRIEVAL,
    Benchmark,
    ClassificationTask,
    Inputs,
    Prepared,
    RetrievalTask,
    Source,
    image_tasks_if_classes,
)

LAYOUT = "NAME.txt (English line, then LOCALE.utf8=translation lines) beside NAME.png or NAME.svg, in any sub-folders"


def _prepare(inputs: Inputs) -> Prepared:
    from dataclasses import replace

    from .. import tuxpaint
    from ..imagenet import imagenet_wnids
    from ..labels import imagenet_clip_labelset, load_labels

    root = Path(inputs.images or inputs.root or tuxpaint.DEFAULT_ROOT)
    stamps, skipped = tuxpaint.find_stamps(root)
    if not stamps:
        why = f"; {len(skipped)} left out: " + "; ".join(sorted(set(skipped.values()))) if skipped else ""
        raise ValueError(f"no Tux Paint stamps under {root}{why}. Expected the layout of Debian's "
                         f"tuxpaint-stamps-default ({tuxpaint.DEFAULT_ROOT}): {LAYOUT}")
    source = tuxpaint.tuxpaint_images(stamps, skipped)
    tasks: list = [RetrievalTask(tuxpaint.tuxpaint_captions(stamps), ("all-captions",))]
    mapping = tuxpaint.imagenet_classes_of(stamps)
    if mapping:
        index = {w: i for i, w in enumerate(imagenet_wnids())}
        source.items = [replace(it, label=index[mapping[it.id]]) if it.id in mapping else it for it in source.items]
        source.classes = imagenet_wnids()
        tasks += image_tasks_if_classes(source)
        if inputs.labels is None:  # OpenAI CLIP's English class names: English only
            tasks.append(ClassificationTask(imagenet_clip_labelset(), default_languages=("en",)))
        else:
            tasks.append(ClassificationTask(load_labels(inputs.labels)))
    return Prepared("tuxpaint", source, tasks, {"texts_dropped_or_repaired": tuxpaint.text_problems(stamps)})


def _present() -> str:
    from ..tuxpaint import DEFAULT_ROOT

    return DEFAULT_ROOT if Path(DEFAULT_ROOT).is_dir() else ""


BENCHMARK = Benchmark(
    name="tuxpaint",
    title="Tux Paint stamps",
    tasks=(RETRIEVAL, CLASSIFICATION, *IMAGE_RESULT_TASKS),
    languages="~75 (human-translated stamp descriptions)",
    images="~950 drawn stamps (PNG, SVG with cairosvg)",
    licence="GPL-2 (per the Debian copyright file of tuxpaint-stamps-default)",
    citation="Tux Paint stamps, New Breed Software, https://tuxpaint.org/",
    sources=(Source("debian", "tuxpaint-stamps-default", "scripts/setup.sh installs it"),
             Source("local", "/usr/share/tuxpaint/stamps", "or --images FOLDER")),
    prepare=_prepare,
    present=_present,
    protocols=("all-captions",),
)
