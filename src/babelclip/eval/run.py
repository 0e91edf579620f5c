"""``evaluate``: one image pass, then every language, prompt set and task; results to JSON + CSV.

Datasets:

* ``"babel-imagenet"`` — ImageNet validation images (``images``: class sub-folders or flat files
  with a ground-truth file) and Babel-ImageNet labels (``labels``: a release file, or any
  :class:`~babelclip.data.labels.LabelSet`); zero-shot classification per language.
* ``"tuxpaint"`` — Tux Paint stamps (``images``: the stamps folder, default the Debian path):
  retrieval in every language with translations, and classification on the stamps with an
  honest ImageNet class (:mod:`babelclip.data.tuxpaint`), with ``labels`` if given, else
  OpenAI CLIP's English class names.
* ``"xtd"`` (or any name) with ``captions`` — a caption JSON (XTD, xFlickrCO, XM3600 format)
  and an image folder: retrieval per language under both protocols.

Under ``torchrun`` every rank encodes its shard of the images; rank 0 runs the tasks, writes
the files and returns the results (other ranks return ``[]``).
"""
from __future__ import annotations

import csv
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..languages import resolve_languages
from .cache import EmbeddingCache, default_cache_dir
from .classification import FixedK, ensemble, zero_shot_classification
from .encode import _dist, encode_images
from .results import Result, save_results

if TYPE_CHECKING:  # pragma: no cover
    from ..models.base import Encoder

log = logging.getLogger(__name__)

PROMPT_SETS = ("label", "openai-en", "nllb", "ensemble")
NO_CACHE = "none"


def prompt_sets(names: Sequence[str] | str, nllb_path: str | os.PathLike | None = None) -> list[Any]:
    """Prompt sets by name: ``label``, ``openai-en``, ``nllb``, ``ensemble`` (the union of the other three)."""
    from ..data.prompts import label_only, load_nllb_prompts, openai_english

    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    bad = [n for n in names if n not in PROMPT_SETS]
    if bad or not names:
        raise ValueError(f"unknown prompt set(s) {bad or names}; allowed: {', '.join(PROMPT_SETS)}")
    built: dict[str, Any] = {}

    def get(n: str) -> Any:
        if n not in built:
            built[n] = {"label": label_only, "openai-en": openai_english,
                        "nllb": lambda: load_nllb_prompts(nllb_path)}[n]()
        return built[n]

    out = []
    for n in names:
        out.append(ensemble([get("label"), get("openai-en"), get("nllb")]) if n == "ensemble" else get(n))
    return out


def _languages(languages: str | Sequence[str]) -> list[str] | None:
    if languages == "all" or languages == ["all"]:
        return None
    return [lang.tag for lang in resolve_languages(languages)]


def write_csv(results: Sequence[Result], path: Path) -> Path:
    rows = [r.as_row() for r in results]
    cols = list(dict.fromkeys(k for row in rows for k in row))
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)
    return path


def evaluate(
    model: str | Encoder = "babel-lite",
    *,
    dataset: str = "babel-imagenet",
    images: str | os.PathLike | None = None,
    labels: Any = None,
    captions: str | os.PathLike | None = None,
    languages: str | Sequence[str] = "all",
    prompts: Sequence[str] | str = ("label",),
    nllb_prompts: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    cache_dir: str | os.PathLike | None = None,
    num_workers: int = 0,
    language_workers: int | str = "auto",
    fixed_k: FixedK | None = None,
    n_boot: int = 1000,
    quiet: bool = False,
) -> list[Result]:
    """Evaluate ``model`` on ``dataset`` in ``languages``; write ``out/results.json`` and ``.csv``.

    ``cache_dir`` defaults to :func:`~babelclip.eval.cache.default_cache_dir`; ``"none"`` keeps
    embeddings in memory only. ``num_workers``: data-loader processes decoding images;
    ``language_workers``: processes evaluating languages in parallel on the CPU (see
    :mod:`babelclip.eval.workers`; ``"auto"``: one per available core).
    """
    from ..models.registry import create_model

    t0 = time.perf_counter()
    encoder = create_model(model, device=device) if isinstance(model, str) else model
    model_name = model if isinstance(model, str) else encoder.fingerprint.name
    langs = _languages(languages)
    cdir = None if str(cache_dir) == NO_CACHE else (cache_dir or default_cache_dir())
    rank, _ = _dist()
    tasks: list[tuple[str, Any]] = []  # (kind, payload) run after the image pass
    extra_meta: dict[str, Any] = {}  # dataset-specific facts for the results meta

    if dataset == "babel-imagenet":
        from ..data.labels import LabelSet, load_babel_imagenet
        from ..data.images import imagenet_val

        if images is None:
            raise ValueError("--benchmark babel-imagenet needs --images: an ImageNet validation folder")
        source = imagenet_val(images)
        label_set = labels if isinstance(labels, LabelSet) else load_babel_imagenet(labels)
        ds_name = label_set.name
        tasks.append(("cls", (source.classes, label_set)))
    elif dataset == "tuxpaint":
        from ..data import tuxpaint
        from ..data.imagenet import imagenet_wnids
        from ..data.labels import LabelSet, imagenet_clip_labelset, load_babel_imagenet

        stamps, skipped = tuxpaint.find_stamps(images or tuxpaint.DEFAULT_ROOT)
        extra_meta["texts_dropped_or_repaired"] = tuxpaint.text_problems(stamps)
        source = tuxpaint.tuxpaint_images(stamps, skipped)
        ds_name = "tuxpaint"
        tasks.append(("ret", (tuxpaint.tuxpaint_captions(stamps), ("all-captions",))))
        mapping = tuxpaint.imagenet_classes_of(stamps)
        if mapping:
            index = {w: i for i, w in enumerate(imagenet_wnids())}
            from dataclasses import replace

            source.items = [replace(it, label=index[mapping[it.id]]) if it.id in mapping else it for it in source.items]
            source.classes = imagenet_wnids()
            if labels is None:
                label_set = imagenet_clip_labelset()
            else:
                label_set = labels if isinstance(labels, LabelSet) else load_babel_imagenet(labels)
            tasks.append(("cls", (source.classes, label_set)))
    else:
        from ..data.captions import load_captions
        from ..data.images import image_folder

        if captions is None or images is None:
            raise ValueError(f"dataset {dataset!r} needs --captions (a caption JSON) and --images (its image folder); "
                             "built-in datasets: babel-imagenet, tuxpaint")
        cap = load_captions(captions, name=dataset)
        source = image_folder(images, name=dataset)
        ds_name = dataset
        tasks.append(("ret", (cap, ("all-captions", "first-caption"))))

    results: list[Result] = []
    with EmbeddingCache(cdir, encoder.fingerprint.key, encoder.dim) as cache:
        t_img = time.perf_counter()
        emb = encode_images(encoder, source, cache, batch_size=batch_size, num_workers=num_workers, quiet=quiet)
        t_img = time.perf_counter() - t_img
        if rank != 0:
            return []
        common = {"model_name": model_name, "dataset": ds_name, "quiet": quiet, "workers": language_workers}
        for kind, payload in tasks:
            if kind == "cls":
                classes, label_set = payload
                cls_langs = langs
                if cls_langs is None and dataset == "tuxpaint" and labels is None:
                    cls_langs = ["en"]
                elif cls_langs is not None:
                    cls_langs = [t for t in cls_langs if t in label_set.labels]
                results += zero_shot_classification(
                    encoder, emb, classes, label_set, prompt_sets(prompts, nllb_prompts), cache,
                    languages=cls_langs, fixed_k=fixed_k, n_boot=n_boot, **common)
            else:
                from .retrieval import retrieval

                cap, protocols = payload
                ret_langs = None if langs is None else [t for t in langs if t in cap.captions]
                results += retrieval(encoder, emb, cap, cache, languages=ret_langs, protocols=protocols, n_boot=n_boot,
                                     **common)
    meta = {
        "model": model_name, "fingerprint": encoder.fingerprint.as_dict(), "dataset": ds_name,
        "images": len(source.items) + len(source.skipped), "images_encoded_now": emb.n_encoded,
        "images_cached": emb.n_cached, "images_skipped": {**source.skipped, **emb.failed},
        "seconds": {"images": round(t_img, 3), "total": round(time.perf_counter() - t0, 3)},
        **extra_meta,
    }
    if emb.failed or source.skipped:
        log.warning("%d images skipped (undecodable or unsupported); listed in the results' meta",
                    len(emb.failed) + len(source.skipped))
    if out is not None:
        out = Path(out)
        path = save_results(results, out / "results.json", meta)
        write_csv(results, out / "results.csv")
        log.info("wrote %d results to %s", len(results), path)
    return results
