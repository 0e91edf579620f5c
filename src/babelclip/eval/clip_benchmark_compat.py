"""CLIP_benchmark's result JSON, written from and read into our :class:`Result`.

CLIP_benchmark (LAION-AI/CLIP_benchmark, ``clip_benchmark/cli.py``) writes one JSON per run::

    {"dataset": "babel_imagenet", "model": "xlm-roberta-base-ViT-B-32",
     "pretrained": "laion5b_s13b_b90k", "task": "zeroshot_classification",
     "metrics": {"acc1": ..., "acc5": ..., "mean_per_class_recall": ...}, "language": "de"}

to ``{dataset}_{pretrained}_{model}_{language}_{task}.json`` by default, and its ``build``
command turns a folder of them into one CSV. The metric names differ from ours:

=========================  ===========================================
ours                       CLIP_benchmark
=========================  ===========================================
``top1`` / ``top5``        ``acc1`` / ``acc5``
``mean_per_class_recall``  ``mean_per_class_recall``
``t2i_r@k``                ``image_retrieval_recall@k`` (text → image)
``i2t_r@k``                ``text_retrieval_recall@k`` (image → text)
=========================  ===========================================

Task ``retrieval`` is its ``zeroshot_retrieval``. Datasets leave under the name the benchmark
registry gives for CLIP_benchmark (:attr:`Benchmark.clip_benchmark
<babelclip.data.benchmarks.Benchmark>`: ``babel-imagenet*`` → ``babel_imagenet``, ``xm3600`` →
``crossmodal3600``, ``xtd``/``xtd10`` → ``xtd10``, ``multilingual-mscoco`` →
``multilingual_mscoco``, ``flickr30k-200`` → ``flickr30k_200``, ``xtd200``); other names pass
through. Languages leave in the code system CLIP_benchmark uses for that dataset
(:attr:`Benchmark.clip_benchmark_codes`: Babel-ImageNet's codes lowercased, XM3600's, FLORES-200
for xtd200 / flickr30k_200, XTD's ``jp`` for Japanese, else the BCP-47 tag) and come back
through :func:`babelclip.languages.get_language`. Models named ``openclip:ARCH@TAG`` are split into its
``model`` = ARCH and ``pretrained`` = TAG; anything else goes whole into ``model``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..languages import get_language
from ..models.registry import reference_name
from .analysis import dataset_family
from .results import Result

__all__ = [
    "from_clip_benchmark",
    "read_clip_benchmark",
    "to_clip_benchmark",
    "write_clip_benchmark",
]

#: Our tasks with a CLIP_benchmark equivalent (the image-only ones have none).
_TASK_OUT = {
    "zeroshot_classification": "zeroshot_classification",
    "retrieval": "zeroshot_retrieval",
}
CLIP_BENCHMARK_TASKS = tuple(_TASK_OUT)
_TASK_IN = {v: k for k, v in _TASK_OUT.items()}
_METRIC_OUT = {"top1": "acc1", "top5": "acc5", "mean_per_class_recall": "mean_per_class_recall"}
_METRIC_IN = {v: k for k, v in _METRIC_OUT.items()}
_RECALL = re.compile(r"(t2i|i2t)_r@(\d+)")
_CB_RECALL = re.compile(r"(image|text)_retrieval_recall@(\d+)")
DEFAULT_OUTPUT = (
    "{dataset}_{pretrained}_{model}_{language}_{task}.json"  # CLIP_benchmark's --output
)


def _metric_out(key: str) -> str | None:
    if key in _METRIC_OUT:
        return _METRIC_OUT[key]
    m = _RECALL.fullmatch(key)
    if m:
        return f"{'image' if m[1] == 't2i' else 'text'}_retrieval_recall@{m[2]}"
    return None


def _metric_in(key: str) -> str:
    if key in _METRIC_IN:
        return _METRIC_IN[key]
    m = _CB_RECALL.fullmatch(key)
    if m:
        return f"{'t2i' if m[1] == 'image' else 'i2t'}_r@{m[2]}"
    return key


def _language_out(tag: str, codes: str) -> str:
    """``tag`` in the code system ``codes`` (see the module docstring); the tag where it has none."""
    lang = get_language(tag)
    code = {"babel": lang.babel.lower(), "xm3600": lang.xm3600, "nllb": lang.nllb,
            "xtd": "jp" if lang.tag == "ja" else lang.tag}.get(codes, "")
    return code or lang.tag


def _dataset_out(dataset: str) -> tuple[str, str]:
    """CLIP_benchmark's name for a result's dataset and the language codes it uses there."""
    from ..data.benchmarks import find_benchmark

    bench = find_benchmark(dataset) or find_benchmark(dataset_family(dataset))
    if bench is None or not bench.clip_benchmark:
        return dataset, "tag"
    return bench.clip_benchmark, bench.clip_benchmark_codes


def to_clip_benchmark(result: Result) -> dict[str, Any]:
    """One result as CLIP_benchmark's JSON document. Metrics it has no name for are kept under
    their own names (its ``build`` CSV takes any key); ours that are not floats are skipped."""
    if result.task not in _TASK_OUT:
        raise ValueError(
            f"task {result.task!r} has no CLIP_benchmark equivalent; allowed: {', '.join(_TASK_OUT)}"
        )
    dataset, codes = _dataset_out(result.dataset)
    model, pretrained = reference_name(result.model)
    metrics = {(_metric_out(k) or k): float(v) for k, v in result.metrics.items()}
    return {
        "dataset": dataset,
        "model": model,
        "pretrained": pretrained,
        "task": _TASK_OUT[result.task],
        "metrics": metrics,
        "language": _language_out(result.language, codes),
    }


def write_clip_benchmark(
    results: Iterable[Result], out_dir: str | os.PathLike, *, template: str = DEFAULT_OUTPUT
) -> list[Path]:
    """One CLIP_benchmark JSON per result in ``out_dir``, named by its ``--output`` template
    (``/`` in a field becomes ``_`` so every file stays in ``out_dir``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for r in results:
        doc = to_clip_benchmark(r)
        fields = {
            k: str(doc[k]).replace("/", "_").replace(os.sep, "_")
            for k in ("dataset", "model", "pretrained", "language", "task")
        }
        name = template.format(**fields)
        if r.prompts or r.protocol:  # two prompt sets or protocols of one cell would collide
            suffix = "_".join(p for p in (r.prompts, r.protocol) if p).replace("/", "_")
            name = f"{Path(name).stem}_{suffix}.json"
        path = out_dir / name
        path.write_text(json.dumps(doc), encoding="utf-8")
        paths.append(path)
    return paths


def from_clip_benchmark(doc: dict[str, Any], *, source: str = "") -> Result:
    """A CLIP_benchmark JSON document as a :class:`Result` (model ``openclip:MODEL@PRETRAINED``
    when ``pretrained`` is set; fingerprint ``clip_benchmark:`` + the same)."""
    where = f"{source}: " if source else ""
    missing = [k for k in ("dataset", "model", "task", "metrics", "language") if k not in doc]
    if missing:
        raise ValueError(f"{where}not a CLIP_benchmark result: missing {', '.join(missing)}")
    if doc["task"] not in _TASK_IN:
        raise ValueError(
            f"{where}task {doc['task']!r} is not supported; allowed: {', '.join(_TASK_IN)}"
        )
    language = doc["language"]
    if isinstance(language, list):  # its --language takes several values; one run holds one
        language = language[0]
    pretrained = doc.get("pretrained") or ""
    model = f"openclip:{doc['model']}@{pretrained}" if pretrained else str(doc["model"])
    metrics = {
        _metric_in(k): float(v)
        for k, v in doc["metrics"].items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    return Result(
        model=model,
        fingerprint=f"clip_benchmark:{doc['model']}@{pretrained}",
        dataset=dataset_family(str(doc["dataset"])),
        task=_TASK_IN[doc["task"]],
        language=get_language(str(language)).tag,
        metrics=metrics,
        extra={"source": "clip_benchmark"},
    )


def read_clip_benchmark(paths: Iterable[str | os.PathLike] | str | os.PathLike) -> list[Result]:
    """Results from CLIP_benchmark JSON files, or folders of them (as its ``build`` reads)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(p.glob("*.json"))
        elif p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(f"CLIP_benchmark result {p} does not exist")
    out = []
    for f in files:
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{f}: not valid JSON ({e})") from None
        if not isinstance(doc, dict):
            raise ValueError(f"{f}: not a CLIP_benchmark result (expected a JSON object)")  # noqa: TRY004 (bad file)
        out.append(from_clip_benchmark(doc, source=str(f)))
    return out
