"""One call from a model name and a language to a trained adapter: what ``babelclip train`` runs.

:func:`load_training_pairs` reads the parallel sources named on the command line (files,
``cldr``, ``bible``); :func:`evaluation_sets` collects the evaluation data present on this
machine; :func:`train_language` guards the pairs against those sets
(:mod:`~babelclip.train.leakage`), distils (:mod:`~babelclip.train.distill`) and evaluates.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..languages import Language, get_language
from .distill import DistillConfig, DistillResult, distill
from .leakage import EvalSet, LeakageReport, filter_leakage
from .parallel import ParallelCorpus, ParallelDataError, read_parallel

log = logging.getLogger(__name__)

NAMED_SOURCES = ("cldr", "cldr-names", "bible")


def load_training_pairs(specs: Sequence[str], lang: str | Language) -> ParallelCorpus:
    """Pairs from each spec, merged and de-duplicated.

    A spec is ``cldr`` (emoji names and keyword lists), ``cldr-names`` (names only), ``bible``, a file (TSV, JSONL, Tatoeba pair TSV), a Tatoeba directory, or
    two Moses-style files joined by a comma (``en.txt,sw.txt``).
    """
    from .sources import bible_pairs, cldr_pairs

    language = get_language(lang)
    if not specs:
        raise ParallelDataError(f"no parallel data given; use a path, or one of {', '.join(NAMED_SOURCES)}")
    corpus: ParallelCorpus | None = None
    for spec in specs:
        if spec in ("cldr", "cldr-names"):
            part = cldr_pairs(language, keywords=spec == "cldr")
        elif spec == "bible":
            part = bible_pairs(language)
        elif "," in spec:
            part = read_parallel(spec.split(","), language)
        elif os.path.exists(spec):
            part = read_parallel(spec, language)
        else:
            raise ParallelDataError(f"parallel source {spec!r} is neither {', '.join(NAMED_SOURCES)} nor an existing path")
        corpus = part if corpus is None else corpus.merged(part)
    assert corpus is not None
    return corpus.deduplicated()


def evaluation_sets(labels_path: str | None = None) -> tuple[list[EvalSet], Any]:
    """Evaluation data present here (Tux Paint stamps, Babel-ImageNet labels) and the label set."""
    from .leakage import labelset_eval_set, tuxpaint_eval_set

    sets: list[EvalSet] = []
    try:
        sets.append(tuxpaint_eval_set())
    except FileNotFoundError as e:
        log.info("no Tux Paint evaluation set to guard against: %s", e)
    labelset = None
    try:
        from ..data.labels import load_babel_imagenet

        labelset = load_babel_imagenet(labels_path, unknown="skip", allow_download=False)
        sets.append(labelset_eval_set(labelset))
    except FileNotFoundError as e:
        log.info("no Babel-ImageNet labels to guard against: %s", e)
    return sets, labelset


@dataclass
class TrainReport:
    result: DistillResult
    leakage: LeakageReport
    n_pairs_read: int


def train_language(
    model: str,
    lang: str,
    parallel: Sequence[str],
    out_dir: str | os.PathLike,
    config: DistillConfig,
    *,
    resume: bool = False,
    labels_path: str | None = None,
    level: str = "output",
    encoder=None,
) -> TrainReport:
    """Train ``model``'s text side for ``lang`` on ``parallel`` sources; evaluate at the end."""
    from ..data.labels import imagenet_clip_labelset
    from ..models.registry import create_model
    from .evaluate import label_alignment
    from .text_side import trainable_text

    language = get_language(lang)
    corpus = load_training_pairs(parallel, language)
    n_read = len(corpus)
    sets, labelset = evaluation_sets(labels_path)
    corpus, report = filter_leakage(corpus, sets)
    if not len(corpus):
        raise ParallelDataError(f"every {language.tag} pair was a copy of evaluation data; nothing left to train on")
    encoder = encoder if encoder is not None else create_model(model)
    text = trainable_text(encoder, level=level)  # type: ignore[arg-type]

    def evaluate(_text) -> dict[str, Any]:
        if labelset is None or language.tag not in labelset.labels:
            return {}
        ref = imagenet_clip_labelset()
        return {"babel_label_alignment": label_alignment(encoder, labelset, language.tag, reference=ref, n_boot=200)}

    result = distill(
        text, corpus, config, Path(out_dir), resume=resume, eval_fn=evaluate,
        extra_meta={"model": model, "leakage": report.as_dict(), "level": level},
    )
    return TrainReport(result, report, n_read)
