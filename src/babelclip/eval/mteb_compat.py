"""Results as MTEB-style JSON: one file per task, per-language scores under ``scores.test``.

MTEB (``mteb.TaskResult``, as in the embeddings-benchmark/results repository) stores one JSON
per model and task at ``{model}/{revision}/{task_name}.json``::

    {"task_name": ..., "dataset_revision": ..., "mteb_version": ..., "evaluation_time": ...,
     "kg_co2_emissions": null,
     "scores": {"test": [{"hf_subset": "de", "languages": ["deu-Latn"], "main_score": 0.41,
                          <metric>: <value>, ...}, ...]}}

Here a task is one (dataset, task, protocol, prompt set, label set) of a run, named
``{dataset}.{task}[.{protocol}][.{prompts}]``; ``hf_subset`` is the BCP-47 tag, ``languages``
its ISO 639-3 code and script as MTEB writes them (``deu-Latn``), the metrics keep babelclip's
names (``top1``, ``t2i_r@1``..., with their bootstrap intervals), and ``main_score`` is
:data:`MAIN_SCORE` of the task: ``top1`` for classification, ``t2i_r@1`` (text→image R@1) for
retrieval, MAP@R for image→image retrieval, ``top1`` for k-NN (their language: ``zxx-Zxxx``). ``mteb_version`` says which writer made the file (``babelclip <version>``);
``dataset_revision`` is the label set (classification) or the protocol; the model folder is
the model name with ``/`` as ``__`` and its revision the model fingerprint.
"""
from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..languages import get_language
from .results import Result

MAIN_SCORE = {"zeroshot_classification": "top1", "retrieval": "t2i_r@1", "image_retrieval": "i2i_map@r",
              "knn_classification": "top1"}
NO_LANGUAGE = "zxx"  # the image-only tasks: ISO 639 "no linguistic content", ISO 15924 Zxxx "unwritten"


def task_name(r: Result) -> str:
    return ".".join(x for x in (r.dataset, r.task, r.protocol, r.prompts) if x)


def _languages(tag: str) -> list[str]:
    if tag == NO_LANGUAGE:
        return ["zxx-Zxxx"]
    lang = get_language(tag)
    return [f"{lang.iso639_3}-{lang.script}"] if lang.iso639_3 and lang.script else [lang.tag]


def _safe(name: str) -> str:
    return re.sub(r"[^\w.@+=-]", "_", name.replace("/", "__"))


def to_mteb(results: Iterable[Result], evaluation_time: float | None = None) -> dict[str, dict[str, Any]]:
    """``{task_name: document}`` for results of one model (see the module docstring)."""
    from .._version import __version__

    groups: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        groups[task_name(r)].append(r)
    docs = {}
    for name, rs in groups.items():
        main = MAIN_SCORE[rs[0].task]
        rows = [{"hf_subset": r.language, "languages": _languages(r.language),
                 "main_score": float(r.metrics.get(main, float("nan"))), **{k: float(v) for k, v in r.metrics.items()}}
                for r in rs]
        docs[name] = {
            "task_name": name,
            "dataset_revision": rs[0].labels or rs[0].protocol,
            "mteb_version": f"babelclip {__version__}",
            "evaluation_time": evaluation_time,
            "kg_co2_emissions": None,
            "scores": {"test": rows},
        }
    return docs


def write_mteb(results: Iterable[Result], out_dir: str | os.PathLike, evaluation_time: float | None = None) -> list[Path]:
    """Write :func:`to_mteb` documents to ``out_dir/{model}/{fingerprint}/{task_name}.json``."""
    by_model: dict[tuple[str, str], list[Result]] = defaultdict(list)
    for r in results:
        by_model[(r.model, r.fingerprint)].append(r)
    paths = []
    for (model, fingerprint), rs in by_model.items():
        folder = Path(out_dir) / _safe(model) / _safe(fingerprint or "unknown")
        folder.mkdir(parents=True, exist_ok=True)
        for name, doc in to_mteb(rs, evaluation_time).items():
            path = folder / f"{_safe(name)}.json"
            path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
            paths.append(path)
    return paths
