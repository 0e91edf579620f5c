"""``evaluate``: one image pass, then every language, prompt set and task; results to JSON + CSV.

Generic over the benchmark registry (:mod:`babelclip.data.benchmarks`): the benchmark named by
``dataset`` reads its files into an image source and tasks (classification with a label set,
retrieval with a caption set and its protocols, keyword retrieval, image→image retrieval and
k-NN); :func:`plan_run` checks ``out``, the task kinds and the languages before the model is
loaded; ``evaluate`` encodes the images once and :func:`run_tasks` runs each task in each
language it has, by the runner of its kind (:data:`_RUNNERS`). A language the model cannot handle
is skipped and recorded (:func:`~babelclip.eval.workers.record_skips`). With ``captions``, the
caption file is an anonymous retrieval set named ``dataset``. ``protocol="paper"``: the
Babel-ImageNet reference code's choices (docs/results.md).

Languages: ``"all"``, a list or comma-separated codes, or ``NAME:ARG`` for a selector registered
in :data:`LANGUAGE_SELECTORS` (e.g. ``subset:K``); :func:`requested_languages` is the one place
they are resolved. A run whose languages the benchmark does not have, or that produces no
result, raises naming the languages the benchmark has.

Under ``torchrun`` every rank encodes its shard of the images; rank 0 runs the tasks, writes
the files and returns the results (other ranks return ``[]``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cache_dir import embeddings_dir
from ..data.benchmarks import (
    CLASSIFICATION,
    IMAGE_TASKS,
    KEYWORD_RETRIEVAL,
    PROTOCOLS,
    RETRIEVAL,
    TASK_KINDS,
    Benchmark,
    Inputs,
    Prepared,
    find_benchmark,
    get_benchmark,
)
from ..languages import resolve_languages
from ..models.amp import with_autocast
from ..models.lazy import load_seconds
from .cache import EmbeddingCache
from .classification import FixedK, ensemble, zero_shot_classification
from .encode import ImageEmbeddings, _dist, encode_images
from .language_subsets import subset_selector
from .model_source import BuildLater, encoder_for
from .outdir import check_out
from .outputs import FORMATS, check_formats, write_csv, write_formats, write_outputs  # noqa: F401 (API)
from .results import Result
from .workers import record_skips

if TYPE_CHECKING:  # pragma: no cover
    from ..models.base import Encoder

log = logging.getLogger(__name__)

PROMPT_SETS = ("label", "openai-en", "nllb", "nllb-raw", "ensemble")
def prompt_sets(names: Sequence[str] | str, nllb_path: str | os.PathLike | None = None,
                protocol: str = "default") -> list[Any]:
    """Prompt sets by name: ``label``, ``openai-en``, ``nllb``, ``nllb-raw`` (the NLLB templates
    exactly as released, as CLIP_benchmark uses them), ``ensemble`` (the union of label, openai-en
    and nllb). Under ``protocol="paper"`` both NLLB names mean
    :func:`~babelclip.data.prompts.reference_nllb_prompts` (the Babel-ImageNet reference code's)."""
    from ..data.prompts import label_only, load_nllb_prompts, openai_english, reference_nllb_prompts

    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    bad = [n for n in names if n not in PROMPT_SETS]
    if bad or not names:
        raise ValueError(f"unknown prompt set(s) {bad or names}; allowed: {', '.join(PROMPT_SETS)}")
    built: dict[str, Any] = {}

    def get(n: str) -> Any:
        if protocol == "paper" and n in ("nllb", "nllb-raw"):
            n = "nllb-paper"
        if n not in built:
            built[n] = {"label": label_only, "openai-en": openai_english,
                        "nllb": lambda: load_nllb_prompts(nllb_path),
                        "nllb-raw": lambda: load_nllb_prompts(nllb_path, raw=True),
                        "nllb-paper": lambda: reference_nllb_prompts(nllb_path)}[n]()
        return built[n]

    out = []
    for n in names:
        out.append(ensemble([get("label"), get("openai-en"), get("nllb")]) if n == "ensemble" else get(n))
    return out


# Language selectors for ``--languages NAME:ARG``: ``fn(ARG, the benchmark's tags) -> tags``.
# Other modules register theirs here (e.g. ``LANGUAGE_SELECTORS["subset"]``).
LANGUAGE_SELECTORS: dict[str, Callable[[str, list[str]], list[str]]] = {"subset": subset_selector}


def requested_languages(languages: str | Sequence[str], available: Sequence[str]) -> list[str] | None:
    """The one place ``--languages`` is resolved: ``None`` for all, else BCP-47 tags in order.

    ``available``: the benchmark's languages, handed to a selector (``NAME:ARG``)."""
    if isinstance(languages, str):
        spec = languages.strip()
        if spec == "all":
            return None
        name, sep, arg = spec.partition(":")
        if sep:
            if name not in LANGUAGE_SELECTORS:
                kinds = ", ".join(f"{k}:..." for k in LANGUAGE_SELECTORS) or "none installed"
                raise ValueError(f"--languages {spec!r}: unknown selector {name!r}; allowed: all, codes (de,ja), "
                                 f"selectors ({kinds})")
            codes: str | list[str] = LANGUAGE_SELECTORS[name](arg, list(available))
        else:
            codes = spec
    else:
        codes = list(languages)
        if codes == ["all"]:
            return None
    return [lang.tag for lang in resolve_languages(codes)]


def _is_selector(languages: str | Sequence[str]) -> bool:
    return isinstance(languages, str) and ":" in languages


def _benchmark(dataset: str | None, captions: Any) -> tuple[Benchmark, str]:
    """The registry entry and the name asked for (``captions``: the anonymous caption set)."""
    if captions is not None:
        anonymous = find_benchmark("captions")
        assert anonymous is not None
        return anonymous, dataset or Path(captions).stem
    name = dataset or "babel-imagenet"
    return get_benchmark(name), name


def _no_results(prepared: Prepared, requested: list[str] | None) -> ValueError:
    have = prepared.languages()
    asked = "every language" if requested is None else f"languages {', '.join(requested)}"
    if not have:
        return ValueError(f"{prepared.dataset}: no results: the benchmark has no language with labels or captions")
    return ValueError(f"{prepared.dataset}: no results for {asked}; it has {len(have)} languages: {', '.join(have)}")


def evaluate(
    model: str | Encoder | BuildLater = "babel-lite",
    *,
    dataset: str | None = None,
    images: str | os.PathLike | None = None,
    labels: Any = None,
    captions: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    languages: str | Sequence[str] = "all",
    prompts: Sequence[str] | str = ("label",),
    nllb_prompts: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    download: bool = True,
    formats: Sequence[str] | str = (),
    tasks: Sequence[str] | str | None = None,
    protocol: str = "default",
    batch_size: int = 64,
    device: str = "cpu",
    cache_dir: str | os.PathLike | None = None,
    num_workers: int = 0,
    language_workers: int | str = "auto",
    verify_images: bool = False, fixed_k: FixedK | None = None,
    n_boot: int = 1000, quiet: bool = False,
    annotate: Callable[[list[Result]], Any] | None = None, amp: bool = False,
    model_options: Mapping[str, Any] | None = None,
) -> list[Result]:
    """Evaluate ``model`` on the benchmark ``dataset`` in ``languages``; write ``out/results.json`` and ``.csv``.

    ``model``, ``model_options``: see :func:`~babelclip.eval.model_source.encoder_for` (a
    :class:`BuildLater` is built after the checks below).
    ``dataset``: a name of :func:`babelclip.data.benchmarks.all_benchmarks` (default
    ``babel-imagenet``), or with ``captions`` the name of that caption set. ``root``: the
    benchmark's folder in its release layout; ``download=False`` never fetches a missing file.
    ``out`` is checked before anything is computed (see :mod:`babelclip.eval.outdir`;
    ``overwrite`` replaces another run's results). ``formats``: also write ``clip-benchmark``
    and/or ``mteb`` JSON there (:func:`write_formats`). ``tasks``: the task kinds to run
    (:func:`select_tasks`; default every task the benchmark has). ``protocol``: ``default`` or
    ``paper`` (the Babel-ImageNet reference code's choices, docs/results.md; recorded in every
    result's ``protocol`` as ``.../paper``). ``cache_dir`` defaults to
    :func:`~babelclip.cache_dir.embeddings_dir`; ``"none"`` keeps embeddings in memory only.
    ``verify_images``: key cached image embeddings by a SHA-256 of each file's bytes (an image
    rewritten with the same size and mtime is encoded again). ``num_workers``: data-loader
    processes decoding images; ``language_workers``: processes evaluating languages in parallel
    on the CPU (see :mod:`babelclip.eval.workers`). A language the model cannot handle is
    skipped with a warning and listed in the meta's ``languages_skipped``. ``annotate(results)``
    is called before the results are written (e.g. the leakage guard's marks). ``amp``: float16 autocast on CUDA (models/amp.py).
    """
    t0, startup = time.perf_counter(), _process_age()
    run = plan_run(model, dataset=dataset, images=images, labels=labels, captions=captions, root=root,
                   languages=languages, prompts=prompts, nllb_prompts=nllb_prompts, out=out, overwrite=overwrite,
                   download=download, formats=formats, tasks=tasks, protocol=protocol)
    cache_folder = embeddings_dir(cache_dir)
    encoder, built_now = encoder_for(model, cache_folder, device, protocol, model_options or {})
    encoder = with_autocast(encoder) if amp else encoder
    rank, _ = _dist()
    source = run.prepared.images
    with EmbeddingCache(cache_folder, encoder.fingerprint.key, encoder.dim) as cache:
        t_img = time.perf_counter()
        emb = encode_images(encoder, source, cache, batch_size=batch_size, num_workers=num_workers,
                            content_hash=verify_images, quiet=quiet)
        t_img = time.perf_counter() - t_img
        if rank != 0:
            return []
        ctx = _Context(encoder, emb, cache, source.classes, run.psets, fixed_k, protocol,
                       {"model_name": run.model_name, "quiet": quiet, "workers": language_workers, "n_boot": n_boot})
        with record_skips() as skipped:
            results = run_tasks(ctx, run)
    if not results:
        raise _no_results(run.prepared, run.langs)
    if annotate is not None:
        annotate(results)
    meta = run_meta(run, encoder, emb, skipped, seconds=_times(t0, startup, encoder, built_now, t_img))
    if emb.failed or source.skipped:
        log.warning("%d images skipped (undecodable or unsupported); listed in the results' meta",
                    len(emb.failed) + len(source.skipped))
    if run.out is not None:
        write_outputs(results, run.out, meta, run.formats)
    return results


@dataclass
class RunPlan:
    """What a run will do, decided (and checked) before the model is loaded."""

    benchmark: Benchmark
    name: str  # the benchmark, as results record it
    model_name: str
    prepared: Prepared
    langs: list[str] | None  # the requested languages (None: all)
    plan: list[tuple[Any, list[str]]]  # (task, its languages to run)
    psets: list[Any]
    formats: list[str]
    out: Path | None
    protocol: str


def plan_run(model: str | Encoder | BuildLater, *, dataset: str | None, images: Any, labels: Any, captions: Any, root: Any,
             languages: str | Sequence[str], prompts: Sequence[str] | str, nllb_prompts: Any, out: Any,
             overwrite: bool, download: bool, formats: Sequence[str] | str, tasks: Sequence[str] | str | None,
             protocol: str) -> RunPlan:
    """Check the outputs, protocol, formats and task kinds; read the benchmark; choose each
    task's languages. Raises before anything is computed when the run would produce nothing."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; allowed: {', '.join(PROTOCOLS)}")
    bench, name = _benchmark(dataset, captions)
    run_name = name if bench.name == "captions" else bench.name
    formats = check_formats(formats)
    kinds = select_tasks(tasks)
    model_name = model if isinstance(model, str) else model.name if isinstance(model, BuildLater) \
        else model.fingerprint.name
    if out is not None:
        out = check_out(out, model=model_name, benchmark=run_name, overwrite=overwrite)
    pre = None if _is_selector(languages) else requested_languages(languages, [])
    prepared = bench.prepare(Inputs(
        root=Path(root) if root is not None else None, images=Path(images) if images is not None else None,
        labels=labels, captions=Path(captions) if captions is not None else None, languages=pre,
        download=download, name=name, protocol=protocol))
    langs = requested_languages(languages, prepared.languages())
    offered = [t.kind for t in prepared.tasks]
    plan = [(task, task.select(langs)) for task in prepared.tasks if task.kind in kinds]
    if not plan:
        raise ValueError(f"{prepared.dataset}: none of the task kinds {', '.join(kinds)} is offered; "
                         f"it has {', '.join(dict.fromkeys(offered))}")
    text = [task_langs for task, task_langs in plan if task.kind != IMAGE_TASKS]
    if text and not any(text):
        raise _no_results(prepared, langs)
    psets = prompt_sets(prompts, nllb_prompts, protocol) if any(t.kind == CLASSIFICATION for t, _ in plan) else []
    return RunPlan(bench, run_name, model_name, prepared, langs, plan, psets, formats,
                   Path(out) if out is not None else None, protocol)


def select_tasks(tasks: Sequence[str] | str | None) -> list[str]:
    """The task kinds to run: ``None``/``"all"`` every kind; else names of :data:`TASK_KINDS`
    (comma-separated in a string), or only ``-NAME`` entries: every kind but those."""
    if tasks is None:
        return list(TASK_KINDS)
    names = [t.strip() for t in tasks.split(",") if t.strip()] if isinstance(tasks, str) else list(tasks)
    if names == ["all"]:
        return list(TASK_KINDS)
    bad = [n for n in names if n.lstrip("-") not in TASK_KINDS]
    if bad or not names:
        raise ValueError(f"unknown task kind(s) {bad or names}; allowed: all, {', '.join(TASK_KINDS)} "
                         "(or -KIND to leave one out)")
    if all(n.startswith("-") for n in names):
        return [k for k in TASK_KINDS if f"-{k}" not in names]
    if any(n.startswith("-") for n in names):
        raise ValueError(f"--tasks {','.join(names)}: either name the kinds to run or the -kinds to leave out, not both")
    return [k for k in TASK_KINDS if k in names]


def _process_age() -> float | None:
    """Seconds since this process started (Linux: ``/proc/self/stat``), else ``None``."""
    try:
        started = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        return round(max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started), 3)
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _times(t0: float, startup: float | None, encoder: Encoder, built_now: float, t_img: float) -> dict[str, Any]:
    """The meta's ``seconds``, logged: start-up (process start to ``evaluate``; None off Linux),
    model load (0: never loaded), images, lookup (the tasks: cache reads and any encoding), total."""
    total, load = time.perf_counter() - t0, load_seconds(encoder, built_now)
    out = {"startup": startup, "model_load": round(load, 3), "images": round(t_img, 3),
           "lookup": round(max(0.0, total - load - t_img), 3), "total": round(total, 3)}
    log.info("seconds: %s%s", out, " (model not loaded in this process)" if load == 0 else "")
    return out


def run_meta(run: RunPlan, encoder: Encoder, emb: ImageEmbeddings, skipped: dict[str, str],
             seconds: dict[str, float]) -> dict[str, Any]:
    """The results file's meta: model, benchmark (licence, citation), protocol, images, skips, times."""
    prepared = run.prepared
    return {"model": run.model_name, "fingerprint": encoder.fingerprint.as_dict(), "dataset": prepared.dataset,
            **run.benchmark.meta(), "benchmark": run.name, "protocol": run.protocol,
            "tasks": list(dict.fromkeys(t.kind for t, task_langs in run.plan if task_langs)),
            **_image_meta(prepared.images, emb), "languages_skipped": dict(skipped), "seconds": seconds,
            **prepared.meta}


def _image_meta(source: Any, emb: ImageEmbeddings) -> dict[str, Any]:
    return {"images": len(source.items) + len(source.skipped), "images_encoded_now": emb.n_encoded,
            "images_cached": emb.n_cached, "images_skipped": {**source.skipped, **emb.failed}}


@dataclass
class _Context:
    """What every task runner needs: the model, the encoded images, the cache, the options."""

    encoder: Encoder
    emb: ImageEmbeddings
    cache: EmbeddingCache
    classes: Sequence[str]
    psets: list[Any]
    fixed_k: FixedK | None
    protocol: str
    common: dict[str, Any]  # model_name, quiet, workers, n_boot

    @property
    def scoring(self) -> str:
        """How text rows are scored: ``paper`` (as the model returns them) under that protocol."""
        return "paper" if self.protocol == "paper" else "default"


def run_tasks(ctx: _Context, run: RunPlan) -> list[Result]:
    """Every planned task in its languages, by the runner of its kind; under a protocol other than
    ``default`` each result's ``protocol`` ends in ``/PROTOCOL``."""
    results: list[Result] = []
    for task, task_langs in run.plan:
        if task_langs:
            results += _RUNNERS[task.kind](ctx, task, task_langs, task.dataset or run.prepared.dataset)
    if ctx.protocol != "default":
        for r in results:
            r.protocol = f"{r.protocol}/{ctx.protocol}" if r.protocol else ctx.protocol
    return results


def _classify(ctx: _Context, task: Any, langs: list[str], dataset: str) -> list[Result]:
    return zero_shot_classification(ctx.encoder, ctx.emb, ctx.classes, task.labels, ctx.psets, ctx.cache,
                                    languages=langs, fixed_k=ctx.fixed_k, dataset=dataset, protocol=task.protocol,
                                    scoring=ctx.scoring, **ctx.common)


def _retrieve(ctx: _Context, task: Any, langs: list[str], dataset: str) -> list[Result]:
    from .retrieval import retrieval

    return retrieval(ctx.encoder, ctx.emb, task.captions, ctx.cache, languages=langs, protocols=task.protocols,
                     dataset=dataset, scoring=ctx.scoring, **ctx.common)


def _keywords(ctx: _Context, task: Any, langs: list[str], dataset: str) -> list[Result]:
    from .keyword_retrieval import keyword_retrieval

    return keyword_retrieval(ctx.encoder, ctx.emb, task.queries, ctx.cache, languages=langs, dataset=dataset,
                             scoring=ctx.scoring, **ctx.common)


def _image_tasks(ctx: _Context, task: Any, langs: list[str], dataset: str) -> list[Result]:
    """Image→image retrieval and k-NN by class (no text: language ``zxx``); none, with a warning,
    when no class has two encoded images (e.g. the others failed to decode)."""
    from .image_tasks import image_task_results

    try:
        return image_task_results(ctx.emb.vectors, ctx.emb.labels, model=ctx.common["model_name"],
                                  fingerprint=ctx.encoder.fingerprint.key, dataset=dataset, knn_k=task.knn_k,
                                  n_boot=ctx.common["n_boot"])
    except ValueError as e:
        log.warning("%s: image→image retrieval and k-NN skipped: %s", dataset, e)
        return []


# One runner per task kind (never per benchmark).
_RUNNERS = {CLASSIFICATION: _classify, RETRIEVAL: _retrieve, KEYWORD_RETRIEVAL: _keywords, IMAGE_TASKS: _image_tasks}
