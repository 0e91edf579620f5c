"""The training data of babel-lite 2's text side: CLDR names per language, guarded, balanced.

- CLDR emoji names (``tts``) of every locale with annotations (Debian ``unicode-cldr-core``,
  Unicode licence), each paired with the English name of the same emoji; only the emoji of
  Babel-Emoji's **training half** (the other half is that benchmark's evaluation data);
- the English names themselves, as their own targets (``en_share`` of every batch), so English
  keeps its outputs.

The leakage guard (:func:`babelclip.train.leakage.filter_leakage`) runs per locale against the
Babel-ImageNet labels, every Tux Paint text and Babel-Emoji's evaluation half; the build refuses
to run without them (an unguarded build could not say it never saw evaluation data). A CLDR
name that equals a label is kept and counted as overlap (the leakage policy for independent
sources); ``bench/babel_lite_versions.py`` scores the "unseen" labels, which are no training target.

Languages are sampled ∝ ``pairs ** balance`` (Conneau & Lample 2019 sample languages ∝ size^α,
α < 1, so small languages are seen more often than their share): 0 samples every language
equally, 1 every pair equally.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from babelclip.languages import Language, get_language

log = logging.getLogger(__name__)


@dataclass
class LanguagePairs:
    """``(english, other)`` name pairs per language tag, with the leakage report of each."""

    pairs: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    reports: dict[str, dict] = field(default_factory=dict)

    @property
    def english(self) -> list[str]:
        return sorted({e for p in self.pairs.values() for e, _ in p})

    def counts(self) -> dict[str, int]:
        return {tag: len(p) for tag, p in self.pairs.items()}


def cldr_locales(annotations_dir: str | Path | None = None) -> list[Language]:
    """Every language with its own CLDR annotations file (English excluded), in tag order: the
    language table's locales (:func:`babelclip.data.emoji.cldr.annotation_locales`)."""
    from babelclip.data.emoji.cldr import annotation_locales
    from babelclip.train.sources import _cldr_dir

    tags = annotation_locales(_cldr_dir(annotations_dir))[0]
    return [get_language(t) for t in sorted(tags) if t != "en" and not t.startswith("en-")]


def language_pairs(eval_sets, *, min_pairs: int = 50, keywords: bool = False,
                   annotations_dir: str | Path | None = None) -> LanguagePairs:
    """Training-half CLDR name pairs of every locale, through the leakage guard; locales left with
    fewer than ``min_pairs`` pairs are dropped."""
    from babelclip.train.leakage import filter_leakage
    from babelclip.train.parallel import ParallelDataError
    from babelclip.train.sources import cldr_pairs

    out = LanguagePairs()
    for lang in cldr_locales(annotations_dir):
        try:
            corpus = cldr_pairs(lang, annotations_dir, keywords=keywords, emoji="train")
        except ParallelDataError as e:
            log.info("skipping %s: %s", lang.tag, e)
            continue
        corpus, report = filter_leakage(corpus, eval_sets)
        if len(corpus) >= min_pairs:
            out.pairs[lang.tag], out.reports[lang.tag] = list(corpus.pairs), report.as_dict()
    return out


def sampled_pairs(data: LanguagePairs, n: int, *, balance: float, en_share: float, seed: int) -> list[tuple[str, str]]:
    """``n`` training items ``(english, student text)``: ``en_share`` of them English names as
    their own targets, the rest drawn from the languages ∝ ``pairs ** balance``, each language's
    share as whole passes over its pairs plus a seeded sample (no pair drawn twice before every
    pair was drawn once)."""
    import numpy as np

    if not data.pairs:
        raise ValueError("no language has training pairs (is Debian's unicode-cldr-core installed?)")
    if not 0 <= balance <= 1 or not 0 <= en_share < 1:
        raise ValueError(f"balance must be in [0, 1] and en_share in [0, 1), got {balance} and {en_share}")
    rng = np.random.default_rng(seed)
    tags = sorted(data.pairs)
    weight = np.array([len(data.pairs[t]) ** balance for t in tags], dtype=np.float64)
    n_other = n - round(en_share * n)
    share = np.floor(n_other * weight / weight.sum()).astype(int)
    share[np.argsort(-weight)[: n_other - share.sum()]] += 1  # the remainder to the heaviest languages
    items: list[tuple[str, str]] = []
    for tag, k in zip(tags, share):
        pairs = data.pairs[tag]
        whole, rest = divmod(int(k), len(pairs))
        items += pairs * whole + [pairs[i] for i in rng.permutation(len(pairs))[:rest]]
    english = data.english
    whole, rest = divmod(n - len(items), len(english))
    items += [(e, e) for e in english * whole + [english[i] for i in rng.permutation(len(english))[:rest]]]
    return items


def guard_sets():
    """Babel-ImageNet labels, Tux Paint texts and Babel-Emoji's evaluation half: all required."""
    from babelclip.train.recipe import evaluation_sets, find_tuxpaint

    sets, labelset = evaluation_sets(None, find_tuxpaint())
    have = {s.name for s in sets}
    missing = [n for n in ("tuxpaint", "babel-emoji") if n not in have] + ([] if labelset is not None else ["babel-imagenet labels"])
    if missing:
        raise FileNotFoundError(f"the leakage guard needs every evaluation set, missing: {', '.join(missing)} "
                                "(install babelclip[dev] and run scripts/setup.sh for the Debian packages)")
    return sets
