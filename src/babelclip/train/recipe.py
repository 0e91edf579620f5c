"""One call from a model name and a language to a trained adapter: what ``babelclip train`` runs.

:func:`load_training_pairs` reads the parallel sources named on the command line (files,
``cldr``, ``bible``), :func:`load_synonym_sets` the synonym sets of the lexical objective
(``cldr``, ``cldr-names``, ``babelnet:FILE``, JSONL files); :func:`evaluation_sets` collects the evaluation data present on this
machine; :func:`train_language` guards the pairs against those sets
(:mod:`~babelclip.train.leakage`), evaluates the untouched model, distils
(:mod:`~babelclip.train.distill`) or specializes (:mod:`~babelclip.train.lexical`) and evaluates again: every figure before and after training,
with 95% CIs and the change (:func:`~babelclip.train.evaluate.before_after`), so a run shows
the gain where the language was weak.
"""
from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..languages import Language, get_language
from .distill import DistillConfig, DistillResult, distill
from .leakage import EvalSet, LeakageReport, filter_leakage, filter_synonym_leakage
from .lexical import specialize
from .parallel import ParallelCorpus, ParallelDataError, read_parallel
from .synonyms import SynonymSets

log = logging.getLogger(__name__)

NAMED_SOURCES = ("cldr", "cldr-names", "bible")
SYNONYM_SOURCES = ("cldr", "cldr-names", "babelnet:FILE")


def load_training_pairs(specs: Sequence[str], lang: str | Language) -> ParallelCorpus:
    """Pairs from each spec, merged and de-duplicated.

    A spec is ``cldr`` (emoji names and keyword lists), ``cldr-names`` (names only), both of the
    emoji in Babel-Emoji's training half unless a half is named (``cldr-names:all``), ``bible``, a file (TSV, JSONL, Tatoeba pair TSV), a Tatoeba directory, or
    two Moses-style files joined by a comma (``en.txt,sw.txt``).
    """
    from .sources import bible_pairs, cldr_pairs

    language = get_language(lang)
    if not specs:
        raise ParallelDataError(f"no parallel data given; use a path, or one of {', '.join(NAMED_SOURCES)}")
    corpus: ParallelCorpus | None = None
    for spec in specs:
        if spec.split(":")[0] in ("cldr", "cldr-names"):  # cldr[:HALF]: Babel-Emoji's train half unless named
            name, _, half = spec.partition(":")
            part = cldr_pairs(language, keywords=name == "cldr", emoji=half or "train")
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


def load_synonym_sets(specs: Sequence[str], lang: str | Language, anchor_langs: Sequence[str] | None = None,
                      lexicon=None) -> SynonymSets:
    """Synonym sets from each spec, merged: ``cldr`` (every locale's emoji names and distinctive
    keywords) or ``cldr-names`` (names only), both of Babel-Emoji's training half and nothing
    else; ``babelnet:FILE`` (the synsets listed in FILE, asked of ``lexicon``, the builder's
    BabelNet client, in ``lang`` and ``anchor_langs``, default English); a JSONL file."""
    from .sources import cldr_synonym_sets
    from .synonyms import SynonymDataError, lexicon_sets, read_synonyms, read_synset_ids

    if not specs:
        raise SynonymDataError(f"no synonym sets given; use a JSONL path or one of {', '.join(SYNONYM_SOURCES)}")
    out: SynonymSets | None = None
    for spec in specs:
        if spec in ("cldr", "cldr-names"):
            part = cldr_synonym_sets(keywords="distinctive" if spec == "cldr" else "none")
        elif spec.startswith("babelnet:"):
            if lexicon is None:
                raise SynonymDataError("babelnet: synsets need the BabelNet client (babelclip.build.babelnet.BabelNetSource)")
            langs = [lang, *(anchor_langs or ["en"])]
            part = lexicon_sets(lexicon, read_synset_ids(spec.partition(":")[2]), langs)
        elif spec.split(":")[0] in ("cldr", "cldr-names"):
            raise SynonymDataError(f"{spec!r}: synonym sets take Babel-Emoji's training half only; use cldr or cldr-names")
        elif os.path.exists(spec):
            part = read_synonyms(spec)
        else:
            raise SynonymDataError(f"synonym source {spec!r} is neither {', '.join(SYNONYM_SOURCES)} nor an existing path")
        out = part if out is None else out.merged(part)
    assert out is not None
    return out


def find_tuxpaint(root: str | None = None) -> tuple[list, dict[str, str]] | None:
    """The Tux Paint stamps (``find_stamps``'s result) if present, read once per training run for
    both the leakage guard and the end-of-run retrieval figures; None (logged) if not."""
    from ..data.tuxpaint import DEFAULT_ROOT, find_stamps

    try:
        return find_stamps(root or DEFAULT_ROOT)
    except FileNotFoundError as e:
        log.info("no Tux Paint stamps (no evaluation set to guard against, no retrieval figures): %s", e)
        return None


def evaluation_sets(labels_path: str | None = None, tuxpaint=None) -> tuple[list[EvalSet], Any]:
    """Evaluation data present here (Tux Paint stamps from :func:`find_tuxpaint`, Babel-Emoji's
    evaluation half, Babel-ImageNet labels) and the label set."""
    from .leakage import emoji_eval_set, labelset_eval_set, stamps_eval_set

    sets: list[EvalSet] = []
    if tuxpaint is not None:
        sets.append(stamps_eval_set(tuxpaint[0]))
    try:
        sets.append(emoji_eval_set("eval"))
    except FileNotFoundError as e:
        log.info("no CLDR annotations, so no Babel-Emoji texts to guard against: %s", e)
    labelset = None
    try:
        from ..data.labels import load_babel_imagenet

        labelset = load_babel_imagenet(labels_path, unknown="skip", allow_download=False)
        sets.append(labelset_eval_set(labelset))
    except FileNotFoundError as e:
        log.info("no Babel-ImageNet labels to guard against: %s", e)
    return sets, labelset


#: What each end-of-run evaluation measures (the run's JSON carries it beside the figures).
EVALUATIONS = {
    "babel_label_alignment": "Babel-ImageNet labels -> English CLIP class names, text only",
    "babel_label_alignment_prototypes": "Babel-ImageNet labels -> the model's own class prototypes (its head's argmax: "
                                        "what decides its zero-shot)",
    "tuxpaint_text_to_image": "Tux Paint descriptions -> stamp images, among all stamps",
}
Measure = Callable[[], dict[str, Any]]  # per metric, one hit (0/1) per query, on the encoder as it is now


def _tuxpaint_measure(encoder, language: Language, tuxpaint, cache_dir: str | None) -> Measure | None:
    """Text→image hits on the Tux Paint stamps in ``language``, or None where there are none.

    The images are encoded once (through the embedding cache, so a second run reads them back)
    and shared by the before and after figures: training changes the text side only.
    """
    from ..cache_dir import embeddings_dir
    from ..data.tuxpaint import tuxpaint_images
    from ..eval.cache import EmbeddingCache
    from ..eval.encode import encode_images
    from .evaluate import text_to_image_hits

    if tuxpaint is None:
        return None
    try:  # one blank image first: a text-only encoder must not mark every stamp as failed in the cache
        from PIL import Image

        encoder.encode_images([Image.new("RGB", (32, 32))])
    except NotImplementedError:
        log.info("no Tux Paint retrieval figures: %s has no image side", encoder.fingerprint.name)
        return None
    stamps, skipped = tuxpaint
    if not any(language.tag in s.texts for s in stamps):
        log.info("no Tux Paint retrieval figures: no stamp has a %s description", language.tag)
        return None
    with EmbeddingCache(embeddings_dir(cache_dir), encoder.fingerprint.key, encoder.dim) as cache:
        images = encode_images(encoder, tuxpaint_images(stamps, skipped), cache)
    rows = images.row_of()
    queries = [(s.texts[language.tag], rows[s.id]) for s in stamps if language.tag in s.texts and s.id in rows]
    if not queries:
        return None
    texts, owners = [t for t, _ in queries], [o for _, o in queries]
    return lambda: text_to_image_hits(encoder, images.vectors, texts, owners, language.tag)


def end_of_run_measures(encoder, language: Language, labelset, *, tuxpaint=None,
                        cache_dir: str | None = None) -> dict[str, Measure]:
    """The evaluations a training run reports for ``language`` (those whose data is here):
    label alignment against the English CLIP names, against the model's own class prototypes
    where it has them (babel-lite), and Tux Paint text→image retrieval."""
    from ..data.labels import imagenet_clip_labelset
    from .evaluate import head_prototypes, label_alignment_hits

    measures: dict[str, Measure] = {}
    ref = imagenet_clip_labelset()
    needed = set(labelset.classes(language.tag)[0]) if labelset is not None and language.tag in labelset.labels else set()
    en_idx = [i for i in ref.classes("en")[0] if i in needed]
    if len(en_idx) >= 2:  # alignment ranks a label among the language's classes that have an English name
        # the English names of those classes encoded once, now, by the untouched model: training runs
        # in place, but a trained adapter never changes English (train/adapters.py)
        english = np.zeros((max(en_idx) + 1, encoder.dim), np.float32)
        english[en_idx] = encoder.encode_texts([ref.labels["en"][i] for i in en_idx], "en")
        protos = head_prototypes(encoder)  # the image side: training does not move it either
        for name, vectors in (("babel_label_alignment", english), ("babel_label_alignment_prototypes", protos)):
            if vectors is not None:
                measures[name] = functools.partial(label_alignment_hits, encoder, labelset, language.tag,
                                                   reference=ref, class_vectors=vectors)
    tux = _tuxpaint_measure(encoder, language, tuxpaint, cache_dir)
    if tux is not None:
        measures["tuxpaint_text_to_image"] = tux
    return measures


@dataclass
class TrainReport:
    result: DistillResult  # result.evaluation: per evaluation, before/after/change (see train_language)
    leakage: LeakageReport
    n_pairs_read: int  # pairs read (distill), or synonym-set members in every language (lexical)


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
    tuxpaint_root: str | None = None,
    cache_dir: str | None = None,
    synonyms: Sequence[str] = (),
    anchor_langs: Sequence[str] | None = None,
    lexicon=None,
) -> TrainReport:
    """Train ``model``'s text side for ``lang`` on ``parallel`` sources (``config.objective``
    "distill") or on ``synonyms`` (:func:`load_synonym_sets`; "lexical", with ``anchor_langs``
    and the BabelNet client ``lexicon``), evaluating before and after.

    The evaluations of :func:`end_of_run_measures` run on the untouched model first, then on the
    trained one; ``result.evaluation`` (also in the run's JSON) holds, per evaluation, ``what``
    it measures and ``before``/``after``/``change`` figures with 95% CIs
    (:func:`~babelclip.train.evaluate.before_after`). ``tuxpaint_root``: the stamps folder
    (default: Debian's); ``cache_dir``: the embedding cache for the stamp images.
    """
    from ..models.registry import create_model
    from .evaluate import before_after
    from .text_side import trainable_text

    language = get_language(lang)
    lexical = config.objective == "lexical"
    data = load_synonym_sets(synonyms, language, anchor_langs, lexicon) if lexical else load_training_pairs(parallel, language)
    n_read = data.n_members() if isinstance(data, SynonymSets) else len(data)
    tuxpaint = find_tuxpaint(tuxpaint_root)
    sets, labelset = evaluation_sets(labels_path, tuxpaint)
    data, report = filter_synonym_leakage(data, sets, language) if lexical else filter_leakage(data, sets)
    if not len(data):
        raise ParallelDataError(f"all {language.tag} training data was a copy of evaluation data; nothing left to train on")
    encoder = encoder if encoder is not None else create_model(model)
    measures = end_of_run_measures(encoder, language, labelset, tuxpaint=tuxpaint, cache_dir=cache_dir)
    before = {name: measure() for name, measure in measures.items()}  # the untouched model
    text = trainable_text(encoder, level=level)  # type: ignore[arg-type]

    def evaluate(_text) -> dict[str, Any]:
        return {name: {"what": EVALUATIONS[name], **before_after(before[name], measure())}
                for name, measure in measures.items()}

    common = {"resume": resume, "eval_fn": evaluate, "extra_meta": {"model": model, "leakage": report.as_dict(), "level": level}}
    if lexical:
        result = specialize(text, data, language, config, Path(out_dir), anchor_langs=anchor_langs, **common)
    else:
        result = distill(text, data, config, Path(out_dir), **common)
    return TrainReport(result, report, n_read)
