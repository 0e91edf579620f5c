"""Babel-Emoji: colour emoji named by native speakers in 100+ languages, offline.

Names: CLDR's emoji annotations (Debian ``unicode-cldr-core``); pictures: Noto Color Emoji
(Debian ``fonts-noto-color-emoji``), rendered once into the cache. The emoji set, the locale
inheritance and the fixed train/eval split are :mod:`babelclip.data.emoji`'s.

Tasks, each in every language naming at least :data:`MIN_EMOJI` emoji, each twice:

* zero-shot classification of every emoji picture among the emoji named in the language
  (dataset ``babel-emoji``, labels ``babel-emoji-all/raw``), and the same on the evaluation half
  only (dataset ``babel-emoji-eval``, labels ``babel-emoji-eval/raw``: the score of a model
  trained on CLDR's training half);
* keyword → emoji retrieval (:mod:`babelclip.eval.keyword_retrieval`: a query is a CLDR keyword,
  its relevant pictures every emoji carrying it; labels ``babel-emoji-keywords-all`` and
  ``babel-emoji-keywords-eval``).

``--root`` is a CLDR ``common/`` folder replacing Debian's (``common/annotations/LOCALE.xml`` and
``common/supplemental/supplementalData.xml``); ``--images`` is not used (the pictures are
rendered from the font; ``$BABELCLIP_EMOJI_FONT`` names another NotoColorEmoji.ttf).
Results of a model trained on CLDR text are marked where its training emoji are scored:
:func:`babelclip.train.leakage.mark_emoji_results`.
"""
from __future__ import annotations

from pathlib import Path

from .registry import (
    CLASSIFICATION,
    RETRIEVAL,
    Benchmark,
    ClassificationTask,
    Inputs,
    KeywordRetrievalTask,
    Prepared,
    Source,
)

MIN_EMOJI = 100  # a language naming fewer emoji is left out (CLDR 41: ast, rm, ku, ia and 6 with none or one)
HALVES = ("all", "eval")  # the halves every model is scored on


def _dataset(half: str) -> str:
    """Results of all emoji carry ``babel-emoji``; of the evaluation half, ``babel-emoji-eval``."""
    return "" if half == "all" else f"babel-emoji-{half}"


def _prepare(inputs: Inputs) -> Prepared:
    from .. import emoji

    if inputs.images is not None:
        raise ValueError("babel-emoji renders its pictures from the emoji font: --images is not used "
                         "(set BABELCLIP_EMOJI_FONT for another NotoColorEmoji.ttf)")
    data = emoji.load_emoji(cldr=inputs.root)
    named = {t: len(emoji.emoji_names(data, t)) for t in data.languages()}
    keep = [t for t, n in named.items() if n >= MIN_EMOJI]
    tasks: list = []
    for half in HALVES:
        labels = emoji.emoji_labelset(data, half)
        labels.labels = {t: labels.labels[t] for t in keep if t in labels.labels}
        tasks.append(ClassificationTask(labels, dataset=_dataset(half)))
    for half in HALVES:
        queries = emoji.emoji_keyword_queries(data, half)
        queries.queries = {t: queries.queries[t] for t in keep if t in queries.queries}
        tasks.append(KeywordRetrievalTask(queries, dataset=_dataset(half)))
    meta = {
        "emoji": len(data.ids), "emoji_eval_half": len(emoji.in_half(data.ids, "eval")),
        "emoji_left_out": len(data.excluded), "languages_left_out": {t: n for t, n in named.items() if n < MIN_EMOJI},
        "duplicate_names_dropped": {t: n for t, n in data.duplicate_names.items() if n},
        "split": f"train if SHA-256('{emoji.SPLIT_SALT}' + emoji id)[0] is even, else eval",
        "pictures": str(data.folder),
    }
    return Prepared(emoji.NAME, emoji.emoji_images(data), tasks, meta)


def _present() -> str:
    from ..emoji.cldr import cldr_root
    from ..emoji.render import font_path

    try:
        return f"names: {cldr_root() / 'annotations'}; pictures: {font_path()}"
    except FileNotFoundError:
        return ""


BENCHMARK = Benchmark(
    name="babel-emoji",
    title="Babel-Emoji (CLDR emoji names, Noto Color Emoji pictures)",
    tasks=(CLASSIFICATION, RETRIEVAL),
    languages=f"~113 (CLDR locales naming >= {MIN_EMOJI} emoji)",
    images="~1,530 colour emoji rendered from Noto Color Emoji (136x136, RGB on white)",
    licence="names: Unicode-DFS-2016 (CLDR); pictures: Apache-2.0 (Noto Color Emoji)",
    citation="Unicode CLDR emoji annotations, https://cldr.unicode.org/; Noto Color Emoji, "
             "https://github.com/googlefonts/noto-emoji",
    sources=(Source("debian", "unicode-cldr-core fonts-noto-color-emoji", "scripts/setup.sh installs both"),
             Source("local", str(Path("/usr/share/unicode/cldr/common")), "or --root: a CLDR common/ folder")),
    prepare=_prepare,
    present=_present,
    aliases=("emoji",),
    protocols=("keywords",),
)
