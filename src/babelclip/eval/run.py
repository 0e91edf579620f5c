"""``evaluate``: one image pass, then every language, prompt set and task; results to JSON + CSV.

Generic over the benchmark registry (:mod:`babelclip.data.benchmarks`): the benchmark named by
``dataset`` reads its files into an image source and tasks (classification with a label set,
retrieval with a caption set and its protocols); ``evaluate`` checks ``out`` and the languages,
loads the model, encodes the images once and runs each task in each language it has. With
``captions``, the caption file is an anonymous retrieval set named ``dataset``.

Languages: ``"all"``, a list or comma-separated codes, or ``NAME:ARG`` for a selector registered
in :data:`LANGUAGE_SELECTORS` (e.g. ``subset:K``); :func:`requested_languages` is the one place
they are resolved. A run whose languages the benchmark does not have, or that produces no
result, raises naming the languages the benchmark has.

Under ``torchrun`` every rank encodes its shard of the images; rank 0 runs the tasks, writes
the files and returns the results (other ranks return ``[]``).
"""

from __future__ import annotations

import csv
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cache_dir import embeddings_dir
from ..data.benchmarks import Benchmark, Inputs, Prepared, find_benchmark, get_benchmark
from .language_subsets import subset_selector
from ..languages import resolve_languages
from .cache import EmbeddingCache
from .classification import FixedK, ensemble, zero_shot_classification
from .encode import ImageEmbeddings, _dist, encode_images
from .outdir import check_out
from .results import Result, save_results

if TYPE_CHECKING:  # pragma: no cover
    from ..models.base import Encoder

log = logging.getLogger(__name__)

PROMPT_SETS = ("label", "openai-en", "nllb", "ensemble")
# Extra outputs beside results.json/.csv, each in a folder of ``out`` named like the format.
FORMATS = ("clip-benchmark", "mteb")


def _formats(formats: Sequence[str] | str) -> list[str]:
    names = [f.strip() for f in formats.split(",") if f.strip()] if isinstance(formats, str) else list(formats)
    bad = [f for f in names if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown output format(s) {bad}; allowed: {', '.join(FORMATS)}")
    return names


def write_formats(results: Sequence[Result], out: Path, formats: Sequence[str], seconds: float) -> list[Path]:
    """CLIP_benchmark JSON in ``out/clip_benchmark/``, MTEB-style JSON in ``out/mteb/``."""
    paths: list[Path] = []
    if "clip-benchmark" in formats:
        from .clip_benchmark_compat import write_clip_benchmark

        paths += write_clip_benchmark(results, out / "clip_benchmark")
    if "mteb" in formats:
        from .mteb_compat import write_mteb

        paths += write_mteb(results, out / "mteb", evaluation_time=seconds)
    return paths


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
    model: str | Encoder = "babel-lite",
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
    batch_size: int = 64,
    device: str = "cpu",
    cache_dir: str | os.PathLike | None = None,
    num_workers: int = 0,
    language_workers: int | str = "auto",
    fixed_k: FixedK | None = None,
    n_boot: int = 1000,
    quiet: bool = False,
) -> list[Result]:
    """Evaluate ``model`` on the benchmark ``dataset`` in ``languages``; write ``out/results.json`` and ``.csv``.

    ``dataset``: a name of :func:`babelclip.data.benchmarks.all_benchmarks` (default
    ``babel-imagenet``), or with ``captions`` the name of that caption set. ``root``: the
    benchmark's folder in its release layout; ``download=False`` never fetches a missing file.
    ``out`` is checked before anything is computed (see :mod:`babelclip.eval.outdir`;
    ``overwrite`` replaces another run's results). ``formats``: also write ``clip-benchmark``
    and/or ``mteb`` JSON there (:func:`write_formats`). ``cache_dir`` defaults to
    :func:`~babelclip.cache_dir.embeddings_dir`; ``"none"`` keeps embeddings in memory only.
    ``num_workers``: data-loader processes decoding images; ``language_workers``: processes
    evaluating languages in parallel on the CPU (see :mod:`babelclip.eval.workers`).
    """
    from ..models.registry import create_model

    t0 = time.perf_counter()
    bench, name = _benchmark(dataset, captions)
    run_name = name if bench.name == "captions" else bench.name  # the benchmark, as results record it
    formats = _formats(formats)
    model_name = model if isinstance(model, str) else model.fingerprint.name
    if out is not None:
        out = check_out(out, model=model_name, benchmark=run_name, overwrite=overwrite)
    pre = None if _is_selector(languages) else requested_languages(languages, [])
    prepared = bench.prepare(Inputs(
        root=Path(root) if root is not None else None, images=Path(images) if images is not None else None,
        labels=labels, captions=Path(captions) if captions is not None else None, languages=pre,
        download=download, name=name))
    langs = requested_languages(languages, prepared.languages())
    plan = [(task, task.select(langs)) for task in prepared.tasks]
    if not any(task_langs for _, task_langs in plan):
        raise _no_results(prepared, langs)
    psets = prompt_sets(prompts, nllb_prompts) if any(t.kind == "zeroshot_classification" for t, _ in plan) else []
    encoder = create_model(model, device=device) if isinstance(model, str) else model
    cdir = embeddings_dir(cache_dir)
    rank, _ = _dist()
    source = prepared.images
    results: list[Result] = []
    with EmbeddingCache(cdir, encoder.fingerprint.key, encoder.dim) as cache:
        t_img = time.perf_counter()
        emb = encode_images(encoder, source, cache, batch_size=batch_size, num_workers=num_workers, quiet=quiet)
        t_img = time.perf_counter() - t_img
        if rank != 0:
            return []
        common = {"model_name": model_name, "dataset": prepared.dataset, "quiet": quiet, "workers": language_workers,
                  "n_boot": n_boot}
        for task, task_langs in plan:
            if task_langs:
                results += _RUNNERS[task.kind](encoder, emb, task, task_langs, cache, source.classes, psets, fixed_k,
                                               {**common, "dataset": task.dataset or prepared.dataset})
    if not results:
        raise _no_results(prepared, langs)
    meta = {"model": model_name, "fingerprint": encoder.fingerprint.as_dict(), "dataset": prepared.dataset,
            **bench.meta(), "benchmark": run_name, **_image_meta(source, emb),
            "seconds": {"images": round(t_img, 3), "total": round(time.perf_counter() - t0, 3)}, **prepared.meta}
    if emb.failed or source.skipped:
        log.warning("%d images skipped (undecodable or unsupported); listed in the results' meta",
                    len(emb.failed) + len(source.skipped))
    if out is not None:
        path = save_results(results, Path(out) / "results.json", meta)
        write_csv(results, Path(out) / "results.csv")
        write_formats(results, Path(out), formats, meta["seconds"]["total"])
        log.info("wrote %d results to %s", len(results), path)
    return results


def _image_meta(source: Any, emb: ImageEmbeddings) -> dict[str, Any]:
    return {"images": len(source.items) + len(source.skipped), "images_encoded_now": emb.n_encoded,
            "images_cached": emb.n_cached, "images_skipped": {**source.skipped, **emb.failed}}


def _classify(encoder: Encoder, emb: ImageEmbeddings, task: Any, langs: list[str], cache: EmbeddingCache,
              classes: Sequence[str], psets: list[Any], fixed_k: FixedK | None, common: dict[str, Any]) -> list[Result]:
    return zero_shot_classification(encoder, emb, classes, task.labels, psets, cache, languages=langs,
                                    fixed_k=fixed_k, **common)


def _retrieve(encoder: Encoder, emb: ImageEmbeddings, task: Any, langs: list[str], cache: EmbeddingCache,
              classes: Sequence[str], psets: list[Any], fixed_k: FixedK | None, common: dict[str, Any]) -> list[Result]:
    from .retrieval import retrieval

    return retrieval(encoder, emb, task.captions, cache, languages=langs, protocols=task.protocols, **common)


def _keywords(encoder: Encoder, emb: ImageEmbeddings, task: Any, langs: list[str], cache: EmbeddingCache,
              classes: Sequence[str], psets: list[Any], fixed_k: FixedK | None, common: dict[str, Any]) -> list[Result]:
    from .keyword_retrieval import keyword_retrieval

    return keyword_retrieval(encoder, emb, task.queries, cache, languages=langs, **common)


# One runner per task kind (never per benchmark).
_RUNNERS = {"zeroshot_classification": _classify, "retrieval": _retrieve, "keyword_retrieval": _keywords}
